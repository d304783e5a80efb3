"""Campaigns: /admin/campaigns[/validate|/{id}[/versions|/diff|/publish|/fork|/shares|/runs|/stop]]."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Query

from functions.admin import campaign_runs, campaigns
from functions.admin.dependencies import campaign_deps, cursors, now, principal, run_deps
from functions.admin.models import (
    CampaignCheck,
    CampaignDetail,
    CampaignDiff,
    CampaignRunsPage,
    CampaignsPage,
    CampaignVersions,
    CampaignView,
    RunsAccepted,
    StopAccepted,
)
from functions.admin.routes.params import Cursor, Limit, TenantQuery, answers, path_id

router = Router()
logger = Logger(child=True)
TAGS = ["campaigns"]
CampaignId = Annotated[str, path_id("a campaign id (cmp_...)")]
Version = Annotated[int | None, Query(description="this version instead of the latest", ge=1)]


@router.post(
    "/admin/campaigns",
    status_code=201,
    tags=TAGS,
    responses=answers(413, 415, ok=201, description="created as version 1, a draft (publish it to make it live)"),
    summary="Create a campaign (the flow and trigger are checked; 400 names each problem's step and field)",
)
def create_campaign(request: Annotated[campaigns.CreateCampaign, Body()]) -> CampaignDetail:
    created = campaigns.create(principal(router.current_event), request, campaign_deps(), now())
    logger.info("campaign created", extra={"campaign": created["id"], "tenant": created["tenant"]})
    return CampaignDetail.model_validate(created)


@router.post(
    "/admin/campaigns/validate",
    tags=TAGS,
    responses=answers(413, 415),
    summary="Check a flow and trigger as a save would, saving nothing",
)
def validate_campaign(request: Annotated[campaigns.CheckCampaign, Body()]) -> CampaignCheck:
    return CampaignCheck.model_validate(campaigns.validate(principal(router.current_event), request, campaign_deps()))


@router.get(
    "/admin/campaigns", tags=TAGS, responses=answers(), summary="A tenant's campaigns the key may see, oldest first"
)
def list_campaigns(tenant: TenantQuery = None, limit: Limit = 50, cursor: Cursor = None) -> CampaignsPage:
    return CampaignsPage.model_validate(
        campaigns.list_campaigns(principal(router.current_event), tenant, limit, cursor, campaign_deps(), cursors())
    )


@router.get(
    "/admin/campaigns/<campaign_id>",
    tags=TAGS,
    responses=answers(404),
    summary="One campaign with its latest version (or ?version=)",
)
def get_campaign(campaign_id: CampaignId, version: Version = None) -> CampaignDetail:
    return CampaignDetail.model_validate(
        campaigns.get(principal(router.current_event), campaign_id, version, campaign_deps())
    )


@router.put(
    "/admin/campaigns/<campaign_id>",
    tags=TAGS,
    responses=answers(404, 409, 413, 415),
    summary="Save a new immutable version (409 unless expected_version is the latest)",
)
def save_campaign(campaign_id: CampaignId, request: Annotated[campaigns.SaveCampaign, Body()]) -> CampaignDetail:
    saved = campaigns.save(principal(router.current_event), campaign_id, request, campaign_deps(), now())
    logger.info("campaign saved", extra={"campaign": campaign_id, "version": saved["version"]})
    return CampaignDetail.model_validate(saved)


@router.get(
    "/admin/campaigns/<campaign_id>/versions",
    tags=TAGS,
    responses=answers(404),
    summary="Every version, oldest first, with who saved it, which is live, and its runs' per-step counts",
)
def list_versions(campaign_id: CampaignId) -> CampaignVersions:
    return CampaignVersions.model_validate(
        campaigns.versions(principal(router.current_event), campaign_id, campaign_deps(), run_deps().runs.counts)
    )


@router.get(
    "/admin/campaigns/<campaign_id>/diff",
    tags=TAGS,
    responses=answers(404),
    summary="What changed between two versions: steps added, removed and changed (with their fields), trigger",
)
def diff_versions(
    campaign_id: CampaignId,
    from_version: Annotated[int, Query(alias="from", description="the earlier version", ge=1)],
    to_version: Annotated[int, Query(alias="to", description="the later version", ge=1)],
) -> CampaignDiff:
    return CampaignDiff.model_validate(
        campaigns.diff(principal(router.current_event), campaign_id, from_version, to_version, campaign_deps())
    )


@router.post(
    "/admin/campaigns/<campaign_id>/publish",
    tags=TAGS,
    responses=answers(404, 415),
    summary="Make a version live (drafts never run); its trigger becomes the campaign's rule on the bus",
)
def publish_campaign(campaign_id: CampaignId, request: Annotated[campaigns.PublishCampaign, Body()]) -> CampaignView:
    rules = run_deps()
    published = campaigns.publish(
        principal(router.current_event),
        campaign_id,
        request,
        campaign_deps(),
        now(),
        lambda campaign, trigger: campaign_runs.set_rule(campaign, trigger, rules),
    )
    logger.info("campaign published", extra={"campaign": campaign_id, "version": request.version})
    return CampaignView.model_validate(published)


@router.post(
    "/admin/campaigns/<campaign_id>/fork",
    status_code=201,
    tags=TAGS,
    responses=answers(404, 415, ok=201, description="a new campaign owned by the key, forked_from naming its origin"),
    summary="Copy a version into a new campaign of the key's own (in this tenant or another)",
)
def fork_campaign(campaign_id: CampaignId, request: Annotated[campaigns.ForkCampaign, Body()]) -> CampaignDetail:
    forked = campaigns.fork(principal(router.current_event), campaign_id, request, campaign_deps(), now())
    logger.info("campaign forked", extra={"campaign": campaign_id, "fork": forked["id"]})
    return CampaignDetail.model_validate(forked)


@router.post(
    "/admin/campaigns/<campaign_id>/shares",
    tags=TAGS,
    responses=answers(404, 415),
    summary="Give a key or a team viewer or editor access (owner and tenant admins only)",
)
def share_campaign(campaign_id: CampaignId, request: Annotated[campaigns.ShareCampaign, Body()]) -> CampaignView:
    shared = campaigns.share(principal(router.current_event), campaign_id, request, campaign_deps(), now())
    logger.info("campaign shared", extra={"campaign": campaign_id, "access": request.access.value})
    return CampaignView.model_validate(shared)


@router.post(
    "/admin/campaigns/<campaign_id>/runs",
    status_code=202,
    tags=TAGS,
    responses=answers(404, 409, 415, ok=202, description="one run per contact asked of the campaign function"),
    summary="Start the live version for contacts (ids or E.164 phones; 409 not_published when none is live)",
)
def start_runs(campaign_id: CampaignId, request: Annotated[campaign_runs.StartRuns, Body()]) -> RunsAccepted:
    accepted = campaign_runs.start_runs(
        principal(router.current_event), campaign_id, request, campaign_deps(), run_deps()
    )
    logger.info(
        "campaign runs requested",
        extra={"campaign": campaign_id, "request": accepted["request"], "accepted": accepted["accepted"]},
    )
    return RunsAccepted.model_validate(accepted)


@router.get(
    "/admin/campaigns/<campaign_id>/runs",
    tags=TAGS,
    responses=answers(404),
    summary="The campaign's runs, newest first: contact, version, state, current step, steps done",
)
def list_runs(campaign_id: CampaignId, limit: Limit = 50, cursor: Cursor = None) -> CampaignRunsPage:
    return CampaignRunsPage.model_validate(
        campaign_runs.list_runs(
            principal(router.current_event), campaign_id, limit, cursor, campaign_deps(), run_deps(), cursors()
        )
    )


@router.post(
    "/admin/campaigns/<campaign_id>/stop",
    status_code=202,
    tags=TAGS,
    responses=answers(404, ok=202, description="unpublished (no new runs), and each run in flight asked to stop"),
    summary="Stop a campaign: its rule removed, no version live, every run in flight stopped",
)
def stop_campaign(campaign_id: CampaignId) -> StopAccepted:
    stopped = campaign_runs.stop(principal(router.current_event), campaign_id, campaign_deps(), run_deps(), now())
    logger.info("campaign stopped", extra={"campaign": campaign_id, "stopping": stopped["stopping"]})
    return StopAccepted.model_validate(stopped)
