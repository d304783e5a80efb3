"""Running campaigns from the admin API: the trigger rule a published version puts on the bus,
runs started for a list of contacts, the runs listed, a campaign stopped.

The campaign function does the running (functions/campaigns); this side only hands it work on
its queue (switchboard_core.campaigns.work: a StartRequest per contact, a StopRequest per run in
flight) and reads what it wrote (the `campaign_runs` table, through RunStore).

A published version with a trigger is one EventBridge rule on the hub's bus, named
CAMPAIGN_RULE_PREFIX + campaign id, matching the trigger's pattern ANDed with the campaign's
tenant (and, unless the pattern names a source, with every source but the campaigns' own, so
a campaign's events never trigger campaigns by accident), one target: the campaigns queue,
through an input transformer that wraps the event as a TriggerMessage.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from aws_lambda_powertools import Logger
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from functions.admin.campaigns import CampaignDeps, Level, author, require, visible
from switchboard_core.campaigns.flow import Trigger
from switchboard_core.campaigns.models import Campaign
from switchboard_core.campaigns.run_store import RunStore
from switchboard_core.campaigns.runs import Run
from switchboard_core.campaigns.work import StartRequest, StopRequest
from switchboard_core.cursors import CursorCodec
from switchboard_core.errors import HubError, NotFound, invalid_request
from switchboard_core.event_rules import delete_queue_rule, put_queue_rule, wrapped_event_template
from switchboard_core.phones import delivered_e164
from switchboard_core.principals import Principal
from switchboard_core.routing.contacts import ContactRecord
from switchboard_core.subscriptions.patterns import InvalidPattern, check_pattern, scoped_to_tenant

CAMPAIGNS_SOURCE = "switchboard.campaigns"  # the source of the campaign function's own events
TARGET_ID = "campaign"
MAX_CONTACTS = 1000
SQS_BATCH = 10  # SendMessageBatch's limit; a StartRequest is far below its 256 KiB
CONTACT_ID_PREFIX = "ct_"
REQUEST_ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
DYNAMODB_BATCH_GET = 100
# StopRequests one stop sends within the admin request's time; the rest of the runs in flight
# stop on their next input (the campaign's `stopped_at`).
MAX_STOP_REQUESTS = 500

logger = Logger(child=True)


# --- requests ---------------------------------------------------------------------------------


def _contact_or_phone(value: str) -> str:
    if value.startswith("+"):
        if delivered_e164(value) != value:
            raise ValueError(f"{value!r} is not an E.164 phone number: + then the country code and number, no spaces")
        return value
    if not value.startswith(CONTACT_ID_PREFIX) or len(value) > 64:
        raise ValueError(f"{value!r} is neither a contact id (ct_...) nor an E.164 phone number (+14155550100)")
    return value


ContactRef = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_contact_or_phone)]


class StartRuns(BaseModel):
    model_config = ConfigDict(extra="forbid")

    contacts: list[ContactRef] = Field(
        min_length=1,
        max_length=MAX_CONTACTS,
        description=f"1 to {MAX_CONTACTS} contacts, each a contact id of the campaign's tenant (ct_...) or an "
        "E.164 phone (its contact is found, or made, when the run starts); one run each",
    )
    request: str | None = Field(
        default=None,
        pattern=REQUEST_ID_PATTERN,
        description="an id of your own for this request (default: a new one): sending the same request again, "
        "after a timeout or a 503, starts no second run for any of its contacts",
    )


# --- dependencies -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RunSettings:
    bus_name: str
    rule_prefix: str  # CAMPAIGN_RULE_PREFIX: the whole prefix, stage included
    queue_url: str
    queue_arn: str
    dead_letter_queue_arn: str

    def rule_name(self, campaign_id: str) -> str:
        return f"{self.rule_prefix}{campaign_id}"


@dataclass
class RunDeps:
    events: Any  # EventBridge client
    sqs: Any
    runs: RunStore
    find_contacts: Callable[[list[str]], dict[str, ContactRecord]]  # contact id -> its record (merges followed)
    settings: RunSettings
    new_request_id: Callable[[], str] = lambda: "req_" + uuid.uuid4().hex[:16]


# --- the trigger rule -------------------------------------------------------------------------


def names_a_source(pattern: dict[str, Any]) -> bool:
    """Whether the pattern says which sources it wants: at its top, or in every branch of a
    top-level `$or` (a branch naming none would match the campaigns' own events)."""
    branches = pattern.get("$or")
    return "source" in pattern or (
        isinstance(branches, list) and bool(branches) and all(isinstance(b, dict) and "source" in b for b in branches)
    )


def rule_pattern(trigger: Trigger, tenant: str) -> dict[str, Any]:
    """The pattern the rule matches: the trigger's, with the tenant ANDed in and, unless the
    trigger names its sources, the campaigns' own events left out (a campaign's message_sent
    must not start another campaign just because its pattern asks for message events). Checked
    again as a whole by the subscriptions' pattern checker (the version was checked when saved;
    the additions count toward EventBridge's size limit)."""
    scoped = scoped_to_tenant(trigger.event_pattern, tenant)
    if not names_a_source(trigger.event_pattern):
        scoped["source"] = [{"anything-but": CAMPAIGNS_SOURCE}]
    try:
        check_pattern(scoped, tenant)
    except InvalidPattern as invalid:
        problems = invalid.details["problems"]
        raise InvalidPattern([problem | {"field": f"trigger.{problem['field']}"} for problem in problems]) from None
    return scoped


def input_template(campaign_id: str) -> str:
    """The TriggerMessage the campaigns queue gets: `{"kind": "trigger", "campaign", "event"}`."""
    return wrapped_event_template({"kind": "trigger", "campaign": campaign_id})


def set_rule(campaign: Campaign, trigger: Trigger | None, deps: RunDeps) -> None:
    """The campaign's rule as `trigger` (of the version going live) wants it: put, or removed."""
    if trigger is None:
        delete_rule(campaign.id, deps)
    else:
        put_rule(campaign, trigger, deps)


def put_rule(campaign: Campaign, trigger: Trigger, deps: RunDeps) -> None:
    settings = deps.settings
    put_queue_rule(
        deps.events,
        bus_name=settings.bus_name,
        name=settings.rule_name(campaign.id),
        pattern=rule_pattern(trigger, campaign.tenant),
        description=f"Switchboard campaign {campaign.id} (tenant {campaign.tenant})",
        target_id=TARGET_ID,
        queue_arn=settings.queue_arn,
        input_template=input_template(campaign.id),
        dead_letter_queue_arn=settings.dead_letter_queue_arn,  # the campaigns DLQ (alarmed)
        quota_message=(
            "the event bus has reached its quota of rules (one per subscription and per published campaign with a "
            "trigger): stop unused campaigns, or ask the operator to raise the EventBridge 'Rules per event bus' quota"
        ),
        pattern_field="trigger.event_pattern",
    )


def delete_rule(campaign_id: str, deps: RunDeps) -> None:
    """Remove the rule and its target; a rule that is not there is fine (no trigger, a retried stop)."""
    settings = deps.settings
    delete_queue_rule(
        deps.events, bus_name=settings.bus_name, name=settings.rule_name(campaign_id), target_id=TARGET_ID
    )


# --- the campaigns queue ----------------------------------------------------------------------


def send_work(messages: list[StartRequest] | list[StopRequest], deps: RunDeps) -> None:
    """Each message on the campaigns queue, ten per SendMessageBatch. Any entry refused raises
    (503), so nothing the caller was told is accepted is silently missing: the ones sent before
    the failure are repeats the campaign function recognises (their runs' ids are derived)."""
    for chunk in _chunks([message.model_dump_json() for message in messages], SQS_BATCH):
        entries = [{"Id": str(index), "MessageBody": body} for index, body in enumerate(chunk)]
        answer = deps.sqs.send_message_batch(QueueUrl=deps.settings.queue_url, Entries=entries)
        failed = answer.get("Failed") or []
        if failed:
            logger.error("the campaigns queue refused messages", extra={"failed": failed})
            raise HubError(
                f"the campaigns queue refused {len(failed)} of {len(entries)} messages; try again",
                status=503,
                code="temporarily_unavailable",
            )


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --- contacts ---------------------------------------------------------------------------------


def checked_contacts(tenant: str, requested: list[str], deps: RunDeps) -> list[str]:
    """The contacts to start, in order: phones as given, contact ids as their live contact (a
    merged one's survivor); a 400 naming `contacts.<n>` for each id the tenant has no contact for
    and each contact given twice."""
    ids = [c for c in requested if not c.startswith("+")]
    found = deps.find_contacts(list(dict.fromkeys(ids))) if ids else {}
    problems: list[dict[str, str]] = []
    resolved: list[str] = []
    first_seen: dict[str, int] = {}
    for index, given in enumerate(requested):
        contact = given
        if not given.startswith("+"):
            record = found.get(given)
            if record is None or record.tenant != tenant:
                # Another tenant's contact answers as a missing one: ids do not leak.
                problems.append(_contact_problem(index, f"tenant {tenant!r} has no contact {given!r}"))
                continue
            contact = record.id
        if contact in first_seen:
            same = "" if contact == given else f" ({given} is now {contact})"
            problems.append(_contact_problem(index, f"repeats contacts.{first_seen[contact]}{same}: one run each"))
            continue
        first_seen[contact] = index
        resolved.append(contact)
    if problems:
        raise invalid_request(problems)
    return resolved


def _contact_problem(index: int, problem: str) -> dict[str, str]:
    return {"field": f"contacts.{index}", "in": "body", "problem": problem}


def contacts_finder(dynamodb: Any, table_name: str, get: Callable[[str], ContactRecord | None]) -> Any:
    """find_contacts over the contacts table: BatchGetItem, 100 ids a call (a thousand contacts
    in ten reads rather than a thousand), then `get` (ContactStore.get) for the few merged
    into another contact, to follow them to their survivor."""

    def find(contact_ids: list[str]) -> dict[str, ContactRecord]:
        found: dict[str, ContactRecord] = {}
        for chunk in _chunks(contact_ids, DYNAMODB_BATCH_GET):
            pending: dict[str, Any] = {
                table_name: {"Keys": [{"pk": f"CONTACT#{c}"} for c in chunk], "ConsistentRead": True}
            }
            while pending:  # DynamoDB may hand back some keys unprocessed: ask again for those
                answer = dynamodb.batch_get_item(RequestItems=pending)
                for item in answer.get("Responses", {}).get(table_name, []):
                    record = ContactRecord.model_validate(item)
                    followed = get(record.id) if record.merged_into else record
                    if followed is not None:
                        found[record.id] = followed
                pending = answer.get("UnprocessedKeys") or {}
        return found

    return find


# --- operations -------------------------------------------------------------------------------


def not_published(campaign: Campaign) -> HubError:
    return HubError(
        f"campaign {campaign.id!r} has no live version (drafts never run): publish one first "
        f"(POST /admin/campaigns/{campaign.id}/publish)",
        status=409,
        code="not_published",
        details={"latest_version": campaign.latest_version},
    )


def start_runs(
    principal: Principal, campaign_id: str, request: StartRuns, deps: CampaignDeps, run_deps: RunDeps
) -> dict[str, Any]:
    """One StartRequest per contact, for the live version: the campaign function starts the runs
    (a run's id comes from the campaign, the contact and this request's id, so sending the same
    request again starts none twice)."""
    campaign, level = visible(principal, campaign_id, deps)
    require(level, Level.EDITOR, campaign, "start runs of")
    if campaign.published_version is None:
        raise not_published(campaign)
    contacts = checked_contacts(campaign.tenant, request.contacts, run_deps)
    request_id = request.request or run_deps.new_request_id()
    messages = [
        StartRequest(
            tenant=campaign.tenant,
            campaign=campaign.id,
            version=campaign.published_version,
            contact=contact,
            request=request_id,
            requested_by=principal.key_id,
        )
        for contact in contacts
    ]
    try:
        send_work(messages, run_deps)
    except HubError as refused:
        refused.message += f' (send {{"request": "{request_id}"}} again with the same contacts: no run starts twice)'
        refused.details = {"request": request_id}
        raise
    return {
        "campaign": campaign.id,
        "version": campaign.published_version,
        "request": request_id,
        "accepted": len(messages),
    }


class RunPosition(BaseModel):
    """Where a listing of the runs' by_campaign index stopped."""

    model_config = ConfigDict(extra="forbid")

    pk: str
    sk: str
    campaign: str
    started_at: str


def run_view(run: Run) -> dict[str, Any]:
    return {
        "id": run.id,
        "contact": {"id": run.contact.id, "name": run.contact.name, "phone": run.contact.phone},
        "version": run.version,
        "state": run.status.value,
        "current_step": run.current_step,
        "waiting_for": run.waiting.kind if run.waiting else None,
        "wake_at": run.wake_at.isoformat() if run.wake_at else None,
        "steps_done": [
            {"step": record.step, "outcome": record.outcome, "at": record.at.isoformat(), "reason": record.reason}
            for record in run.steps_done
        ],
        "started_at": run.started_at.isoformat(),
        "ended_at": run.ended_at.isoformat() if run.ended_at else None,
        "end_reason": run.end_reason,
    }


def list_runs(
    principal: Principal,
    campaign_id: str,
    limit: int,
    cursor: str | None,
    deps: CampaignDeps,
    run_deps: RunDeps,
    codec: CursorCodec,
) -> dict[str, Any]:
    """The campaign's runs, newest first (every version's), for anyone who may read it."""
    campaign, _ = visible(principal, campaign_id, deps)
    scope = {"listing": "campaign_runs", "campaign": campaign.id}
    after = codec.open(cursor, scope, RunPosition) if cursor else None
    runs, last = run_deps.runs.list_for_campaign(campaign.id, limit, after)
    return {
        "campaign": campaign.id,
        "runs": [run_view(run) for run in runs],
        "next_cursor": codec.seal(scope, last) if last else None,
    }


def stop(
    principal: Principal, campaign_id: str, deps: CampaignDeps, run_deps: RunDeps, now: datetime
) -> dict[str, Any]:
    """No new runs (the rule goes, then the live version: both before the runs are listed, so no
    run starts after the listing but a request already on the queue), the stop's time kept on the
    campaign, and a StopRequest for each of the first MAX_STOP_REQUESTS runs in flight: the
    campaign function stops any other run started before the stop on its next input, before it
    sends anything (`more_in_flight`). Stopping again repeats the StopRequests, which finished
    runs ignore."""
    campaign, level = visible(principal, campaign_id, deps)
    require(level, Level.EDITOR, campaign, "stop")
    delete_rule(campaign.id, run_deps)
    if not deps.store.unpublish(campaign.id, now, stopped_by=author(principal)):
        raise NotFound(f"unknown campaign {campaign_id!r}", code="unknown_campaign")  # deleted meanwhile
    in_flight, more = run_deps.runs.first_in_flight_for_campaign(campaign.id, MAX_STOP_REQUESTS)
    reason = f"campaign stopped by {author(principal).name} (key {principal.key_id})"
    send_work([StopRequest(run=run, reason=reason) for run in in_flight], run_deps)
    return {"campaign": campaign.id, "stopping": len(in_flight), "more_in_flight": more}
