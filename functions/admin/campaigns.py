"""Campaign definitions: who may see and change which, the checks a campaign passes when it is
saved, and its versions, publication, forks, shares and diffs.

Access, highest first: a tenant's admins (and operator keys) and the campaign's owner (the key
that created it) manage it (save, publish, share); a share gives one key (`principal`, its key
id, of any tenant) or one team of the campaign's tenant (the keys named after a responder of
that team) `editor` (save, publish) or `viewer` (read, diff, fork) access. Anyone else, partner
keys always, gets 404 exactly as for a missing id, so ids do not leak; a viewer who tries to save
gets 403 naming the access needed.

Every save writes a new immutable version; publishing one makes it live (and its trigger a rule
on the bus: campaign_runs.py, which also starts, lists and stops runs).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from typing import Any

from aws_lambda_powertools import Logger
from pydantic import BaseModel, ConfigDict, Field, model_validator

from functions.admin.routing_config import fits_one_item, tenant_for
from switchboard_core.campaigns.diff import diff_versions
from switchboard_core.campaigns.flow import Flow, Problems, Trigger, Webhook, check_flow, check_trigger
from switchboard_core.campaigns.models import (
    CAMPAIGN_ID_PREFIX,
    Access,
    Author,
    Campaign,
    CampaignVersion,
    ForkedFrom,
    Share,
)
from switchboard_core.campaigns.store import CampaignStore
from switchboard_core.cursors import CursorCodec
from switchboard_core.endpoints import EndpointRefused, Resolver, check_endpoint
from switchboard_core.errors import HubError, NotFound, invalid_request
from switchboard_core.principals import ALL_TENANTS, Principal, Role
from switchboard_core.routing.config_store import RoutingConfigStore

NAME_PATTERN = r"^[A-Za-z0-9_.-]+$"
KEY_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"

logger = Logger(child=True)


# --- requests ---------------------------------------------------------------------------------

FLOW_DESCRIPTION = (
    'the flow: {"start": "<step id>", "steps": {"<step id>": {"type", "next", ...}}}; '
    "its format and checks are in docs/campaigns.md (the response's `flow` shows the schema)"
)
TRIGGER_DESCRIPTION = '{"event_pattern": {...}} (EventBridge syntax, the tenant ANDed in); absent: started by runs'


class CheckCampaign(BaseModel):
    model_config = ConfigDict(extra="forbid")

    flow: dict[str, Any] = Field(description=FLOW_DESCRIPTION)
    trigger: dict[str, Any] | None = Field(default=None, description=TRIGGER_DESCRIPTION)
    tenant: str | None = Field(default=None, min_length=1, max_length=64, pattern=NAME_PATTERN)


class CreateCampaign(CheckCampaign):
    name: str = Field(min_length=1, max_length=200)


class SaveCampaign(BaseModel):
    model_config = ConfigDict(extra="forbid")

    flow: dict[str, Any] = Field(description=FLOW_DESCRIPTION)
    trigger: dict[str, Any] | None = Field(
        default=None, description=TRIGGER_DESCRIPTION + "; each version holds its own, so leaving it out removes it"
    )
    expected_version: int = Field(ge=1, description="the version this edit started from (the latest, else 409)")


class PublishCampaign(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1, description="the version to make live")


class ForkCampaign(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200, description="default: '<name> (fork)'")
    tenant: str | None = Field(
        default=None, min_length=1, max_length=64, pattern=NAME_PATTERN, description="default: the key's own"
    )
    version: int | None = Field(default=None, ge=1, description="the version to fork; default: the latest")


class ShareCampaign(BaseModel):
    model_config = ConfigDict(extra="forbid")

    principal: str | None = Field(
        default=None, pattern=KEY_ID_PATTERN, description="a key id (as `switchboard keys list` shows it)"
    )
    team: str | None = Field(
        default=None, min_length=1, max_length=64, pattern=NAME_PATTERN, description="a team of the campaign's tenant"
    )
    access: Access

    @model_validator(mode="after")
    def _one_grantee(self) -> ShareCampaign:
        if (self.principal is None) == (self.team is None):
            raise ValueError("give exactly one of principal, team")
        return self


# --- dependencies -----------------------------------------------------------------------------


@dataclass
class CampaignDeps:
    store: CampaignStore
    routing: RoutingConfigStore  # teams, and which responder (so which teams) a key is
    local: bool  # the local runtime: webhooks to loopback only
    resolve: Resolver
    new_id: Callable[[], str] = lambda: CAMPAIGN_ID_PREFIX + uuid.uuid4().hex[:16]


# --- who may do what --------------------------------------------------------------------------


class Level(IntEnum):
    VIEWER = 1
    EDITOR = 2
    MANAGER = 3


SHARED = {Access.VIEWER: Level.VIEWER, Access.EDITOR: Level.EDITOR}


def author(principal: Principal) -> Author:
    return Author(key_id=principal.key_id, name=principal.name)


def level_of(
    principal: Principal, campaign: Campaign, deps: CampaignDeps, teams: dict[str, set[str]] | None = None
) -> Level | None:
    """The caller's access to `campaign` (None: it may not know the campaign exists). `teams`
    remembers the caller's teams per tenant across the campaigns of one listing."""
    if principal.role is Role.PARTNER:
        return None
    if principal.can_manage_tenant(campaign.tenant) or principal.key_id == campaign.owner.key_id:
        return Level.MANAGER
    levels = [SHARED[share.access] for share in campaign.shares if share.principal == principal.key_id]
    team_shares = [share for share in campaign.shares if share.team is not None]
    if team_shares and principal.tenant == campaign.tenant:
        known = teams if teams is not None else {}
        if campaign.tenant not in known:
            known[campaign.tenant] = teams_of(principal, campaign.tenant, deps)
        levels.extend(SHARED[share.access] for share in team_shares if share.team in known[campaign.tenant])
    return max(levels, default=None)


def teams_of(principal: Principal, tenant: str, deps: CampaignDeps) -> set[str]:
    """The teams of the responder the key is named after (a key names its person: docs/campaigns.md)."""
    responder = deps.routing.responder(tenant, principal.name)
    return set(responder.teams) if responder else set()


def visible(principal: Principal, campaign_id: str, deps: CampaignDeps) -> tuple[Campaign, Level]:
    found = deps.store.get(campaign_id) if campaign_id.startswith(CAMPAIGN_ID_PREFIX) else None
    level = level_of(principal, found, deps) if found else None
    if found is None or level is None:
        # The same answer for a missing id and one the key may not see: ids do not leak.
        raise NotFound(f"unknown campaign {campaign_id!r}", code="unknown_campaign")
    return found, level


def require(level: Level, needed: Level, campaign: Campaign, action: str) -> None:
    if level < needed:
        have = level.name.lower()
        want = "editor" if needed is Level.EDITOR else "owner or tenant admin"
        raise HubError(
            f"this key has {have} access to campaign {campaign.id!r} and may not {action} it: "
            f"that needs {want} access (its owner or an admin of tenant {campaign.tenant!r} can share it)",
            status=403,
            code="forbidden",
            details={"campaign": campaign.id, "access": have, "needed": want},
        )


def require_create(principal: Principal, tenant: str) -> None:
    """Campaigns are built by a tenant's staff and admins (and operator keys); never by partners."""
    if principal.role in (Role.ADMIN, Role.STAFF) and principal.tenant in (ALL_TENANTS, tenant):
        return
    if principal.tenant in (ALL_TENANTS, tenant):
        message = f"this {principal.role.value} key may not create campaigns in tenant {tenant!r}"
    else:
        message = f"this key belongs to tenant {principal.tenant!r} and may not create campaigns in tenant {tenant!r}"
    raise HubError(
        message + ": that needs a key of that tenant with role admin or staff",
        status=403,
        code="forbidden",
        details={"tenant": tenant, "roles": ["admin", "staff"]},
    )


def target_tenant(principal: Principal, requested: str | None, fallback: str | None = None) -> str:
    tenant = requested or (principal.tenant if principal.tenant != ALL_TENANTS else fallback)
    if not tenant:
        raise invalid_request([{"field": "tenant", "in": "body", "problem": "required for an operator key ('*')"}])
    return tenant


# --- checks when saving -----------------------------------------------------------------------


def checked(flow: Any, trigger: Any, tenant: str, deps: CampaignDeps) -> tuple[Flow, Trigger | None]:
    """The flow and trigger once every check passed, else one 400 naming every problem: the
    steps' fields, the graph, the trigger's pattern, and each webhook's URL (the partner
    subscriptions' SSRF rules, resolved now: it is checked again before each call)."""
    fits_one_item("flow", json.dumps(flow) + json.dumps(trigger))
    checked_flow, problems = check_flow(flow)
    checked_trigger, trigger_problems = check_trigger(trigger, tenant) if trigger is not None else (None, [])
    problems = problems + trigger_problems
    if checked_flow is not None:
        problems.extend(webhook_problems(checked_flow, deps))
    if problems or checked_flow is None:
        raise invalid_request(problems, "campaign")
    return checked_flow, checked_trigger


def webhook_problems(flow: Flow, deps: CampaignDeps) -> Problems:
    problems: Problems = []
    for step_id, step in flow.steps.items():
        if isinstance(step, Webhook):
            try:
                check_endpoint(step.url, local=deps.local, resolve=deps.resolve)
            except EndpointRefused as refused:
                for problem in refused.details["problems"]:
                    problems.append({"field": f"flow.steps.{step_id}.url", "in": "body", "problem": problem["problem"]})
    return problems


# --- views ------------------------------------------------------------------------------------


def head_view(campaign: Campaign, level: Level) -> dict[str, Any]:
    return campaign.model_dump(mode="json") | {"access": level.name.lower()}


def detail_view(campaign: Campaign, level: Level, version: CampaignVersion) -> dict[str, Any]:
    return head_view(campaign, level) | {
        "version": version.version,
        "flow": version.flow.model_dump(mode="json"),
        "trigger": version.trigger.model_dump(mode="json") if version.trigger else None,
        "saved_at": version.saved_at.isoformat(),
        "saved_by": version.saved_by.model_dump(mode="json"),
        "live": version.version == campaign.published_version,
    }


def version_of(campaign: Campaign, number: int, deps: CampaignDeps) -> CampaignVersion:
    found = deps.store.version(campaign.id, number)
    if found is None:
        raise NotFound(
            f"campaign {campaign.id!r} has versions 1 to {campaign.latest_version}, not {number}",
            code="unknown_version",
        )
    return found


# --- operations -------------------------------------------------------------------------------


def validate(principal: Principal, request: CheckCampaign, deps: CampaignDeps) -> dict[str, Any]:
    """The checks a save makes, saving nothing."""
    tenant = target_tenant(principal, request.tenant)
    require_create(principal, tenant)
    flow, trigger = checked(request.flow, request.trigger, tenant, deps)
    return {"valid": True, "tenant": tenant, "steps": len(flow.steps), "trigger": trigger is not None}


def create(principal: Principal, request: CreateCampaign, deps: CampaignDeps, now: datetime) -> dict[str, Any]:
    tenant = target_tenant(principal, request.tenant)
    require_create(principal, tenant)
    flow, trigger = checked(request.flow, request.trigger, tenant, deps)
    return _create(principal, tenant, request.name, flow, trigger, None, deps, now)


def _create(
    principal: Principal,
    tenant: str,
    name: str,
    flow: Flow,
    trigger: Trigger | None,
    forked_from: ForkedFrom | None,
    deps: CampaignDeps,
    now: datetime,
) -> dict[str, Any]:
    campaign = Campaign(
        id=deps.new_id(),
        tenant=tenant,
        name=name,
        owner=author(principal),
        created_at=now,
        updated_at=now,
        latest_version=1,
        forked_from=forked_from,
    )
    first = CampaignVersion(
        campaign=campaign.id, version=1, flow=flow, trigger=trigger, saved_at=now, saved_by=author(principal)
    )
    deps.store.create(campaign, first)
    return detail_view(campaign, Level.MANAGER, first)


def get(principal: Principal, campaign_id: str, version: int | None, deps: CampaignDeps) -> dict[str, Any]:
    campaign, level = visible(principal, campaign_id, deps)
    return detail_view(campaign, level, version_of(campaign, version or campaign.latest_version, deps))


def save(
    principal: Principal, campaign_id: str, request: SaveCampaign, deps: CampaignDeps, now: datetime
) -> dict[str, Any]:
    campaign, level = visible(principal, campaign_id, deps)
    require(level, Level.EDITOR, campaign, "save")
    if request.expected_version != campaign.latest_version:
        raise stale(campaign, request.expected_version, campaign.latest_version)
    flow, trigger = checked(request.flow, request.trigger, campaign.tenant, deps)
    version = CampaignVersion(
        campaign=campaign.id,
        version=request.expected_version + 1,
        flow=flow,
        trigger=trigger,
        saved_at=now,
        saved_by=author(principal),
    )
    if not deps.store.save_version(version, request.expected_version):
        current = deps.store.get(campaign.id)
        raise stale(campaign, request.expected_version, current.latest_version if current else None)
    saved = campaign.model_copy(update={"latest_version": version.version, "updated_at": now})
    return detail_view(saved, level, version)


def stale(campaign: Campaign, expected: int, latest: int | None) -> HubError:
    return HubError(
        f"campaign {campaign.id!r} is at version {latest}; you edited version {expected}: "
        "read the latest (or fork it) and save again",
        status=409,
        code="version_conflict",
        details={"current_version": latest},
    )


RuleSetter = Callable[[Campaign, Trigger | None], None]


def restore_rule(campaign: Campaign, live: CampaignVersion | None, set_rule: RuleSetter) -> None:
    try:
        set_rule(campaign, live.trigger if live else None)
    except Exception:  # the original failure is what the caller gets; a retried publish repairs the rule
        logger.exception("restoring a campaign's trigger rule failed", extra={"campaign": campaign.id})


def publish(
    principal: Principal,
    campaign_id: str,
    request: PublishCampaign,
    deps: CampaignDeps,
    now: datetime,
    set_rule: RuleSetter,
) -> dict[str, Any]:
    """Make a version live, and its trigger (or none) the campaign's rule on the bus
    (`set_rule`: campaign_runs.set_rule)."""
    campaign, level = visible(principal, campaign_id, deps)
    require(level, Level.EDITOR, campaign, "publish")
    if request.version > campaign.latest_version:
        raise invalid_request(
            [
                {
                    "field": "version",
                    "in": "body",
                    "problem": f"campaign {campaign.id!r} has versions 1 to {campaign.latest_version}",
                }
            ]
        )
    going_live = version_of(campaign, request.version, deps)
    live = version_of(campaign, campaign.published_version, deps) if campaign.published_version else None
    # The rule first: a campaign is never live on a version whose trigger is not on the bus. If
    # the rule is half made or the store refuses, the rule goes back to what the live version wants.
    try:
        set_rule(campaign, going_live.trigger)
        published_now = deps.store.publish(campaign.id, request.version, author(principal), now)
    except Exception:
        restore_rule(campaign, live, set_rule)
        raise
    if not published_now:
        restore_rule(campaign, live, set_rule)
        raise NotFound(f"unknown campaign {campaign_id!r}", code="unknown_campaign")  # deleted meanwhile
    published = campaign.model_copy(
        update={"published_version": request.version, "published_at": now, "published_by": author(principal)}
    )
    return head_view(published, level)


def fork(
    principal: Principal, campaign_id: str, request: ForkCampaign, deps: CampaignDeps, now: datetime
) -> dict[str, Any]:
    """A new campaign, owned by the caller, starting from a version of one it may read (in its own
    tenant or another), checked again for the tenant it lands in."""
    source, _ = visible(principal, campaign_id, deps)
    tenant = target_tenant(principal, request.tenant, fallback=source.tenant)
    require_create(principal, tenant)
    origin = version_of(source, request.version or source.latest_version, deps)
    flow, trigger = checked(
        origin.flow.model_dump(mode="json"),
        origin.trigger.model_dump(mode="json") if origin.trigger else None,
        tenant,
        deps,
    )
    forked_from = ForkedFrom(campaign=source.id, version=origin.version)
    return _create(principal, tenant, request.name or f"{source.name} (fork)", flow, trigger, forked_from, deps, now)


def share(
    principal: Principal, campaign_id: str, request: ShareCampaign, deps: CampaignDeps, now: datetime
) -> dict[str, Any]:
    campaign, level = visible(principal, campaign_id, deps)
    require(level, Level.MANAGER, campaign, "share")
    if request.team is not None and request.team not in {team.name for team in deps.routing.teams(campaign.tenant)}:
        raise invalid_request(
            [{"field": "team", "in": "body", "problem": f"tenant {campaign.tenant!r} has no team {request.team!r}"}]
        )
    granted = Share(
        principal=request.principal,
        team=request.team,
        access=request.access,
        shared_by=author(principal),
        shared_at=now,
    )
    if not deps.store.share(campaign.id, granted):
        raise NotFound(f"unknown campaign {campaign_id!r}", code="unknown_campaign")
    shares = [s for s in campaign.shares if s.grantee != granted.grantee] + [granted]
    return head_view(campaign.model_copy(update={"shares": shares, "updated_at": now}), level)


COUNTERS = ("entered", "sent", "replied", "failed", "converted")
CountsOf = Callable[[str], dict[int, dict[str, dict[str, int]]]]


def step_counts(flow: Flow, counted: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """Every step of the version's flow with every counter (zero until a run moves it)."""
    zero = dict.fromkeys(COUNTERS, 0)
    return {step: zero | counted.get(step, {}) for step in flow.steps} | {
        step: zero | numbers for step, numbers in counted.items() if step not in flow.steps
    }


def versions(principal: Principal, campaign_id: str, deps: CampaignDeps, counts_of: CountsOf) -> dict[str, Any]:
    """Every version, with its runs' per-step counts (`counts_of`: RunStore.counts)."""
    campaign, _ = visible(principal, campaign_id, deps)
    counts = counts_of(campaign.id)
    return {
        "campaign": campaign.id,
        "latest_version": campaign.latest_version,
        "published_version": campaign.published_version,
        "versions": [
            {
                "version": v.version,
                "saved_at": v.saved_at.isoformat(),
                "saved_by": v.saved_by.model_dump(mode="json"),
                "published_at": v.published_at.isoformat() if v.published_at else None,
                "live": v.version == campaign.published_version,
                "steps": len(v.flow.steps),
                "trigger": v.trigger is not None,
                "counts": step_counts(v.flow, counts.get(v.version, {})),
            }
            for v in deps.store.versions(campaign.id)
        ],
    }


def diff(principal: Principal, campaign_id: str, before: int, after: int, deps: CampaignDeps) -> dict[str, Any]:
    campaign, _ = visible(principal, campaign_id, deps)
    return {"campaign": campaign.id} | diff_versions(
        version_of(campaign, before, deps), version_of(campaign, after, deps)
    )


class CampaignPosition(BaseModel):
    """Where a listing of the campaigns' by_tenant index stopped."""

    model_config = ConfigDict(extra="forbid")

    pk: str
    sk: str
    tenant: str
    created_at: str


def list_campaigns(
    principal: Principal,
    tenant: str | None,
    limit: int,
    cursor: str | None,
    deps: CampaignDeps,
    codec: CursorCodec,
) -> dict[str, Any]:
    """A tenant's campaigns the caller may see, oldest first (another tenant's key: those shared with it)."""
    if principal.role is Role.PARTNER:
        raise HubError(
            "partner keys have no access to campaigns: that needs a key with role admin or staff",
            status=403,
            code="forbidden",
            details={"roles": ["admin", "staff"]},
        )
    chosen = tenant_for(principal, tenant)
    scope = {"listing": "campaigns", "tenant": chosen, "key": principal.key_id}
    after = codec.open(cursor, scope, CampaignPosition) if cursor else None
    levels: dict[str, Level | None] = {}
    teams: dict[str, set[str]] = {}

    def keep(campaign: Campaign) -> bool:
        levels[campaign.id] = level_of(principal, campaign, deps, teams)
        return levels[campaign.id] is not None

    found, last = deps.store.list_for_tenant(chosen, keep, limit=limit, start_key=after)
    return {
        "campaigns": [head_view(c, levels[c.id] or Level.VIEWER) for c in found],
        "next_cursor": codec.seal(scope, last) if last else None,
    }
