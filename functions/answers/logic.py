"""Sending staff answers, and threading the providers' delivery reports onto them.

Two kinds of event reach this function:

1. `message.sent` / `message.retry_requested` from the admin API (provider `answers`): send
   the answer. The record is claimed for this attempt (queued -> sending, a conditional
   write), so a redelivered event never sends twice. Checked again at send time: the
   contact's opt-out, the connection and its outbound credentials. The provider's answer
   -> the pointer that threads its statuses, then `sent` with its message id: recorded even
   when the pointer's write failed (marked `unpointed`; the queue's retry writes the pointer,
   and a report that comes first finds the answer by the mark); a refusal ->
   `failed` with the provider's reason; a 429/5xx/network failure releases the claim and
   raises, so the queue retries it (after the provider's Retry-After when it gave one),
   and on the queue's last attempt becomes `failed`. An attempt that died between claiming
   and recording (a crash, a timeout) is not sent again blindly: the provider may have
   taken it, so it becomes `failed` (`outcome_unknown`) and staff decide whether to retry.
2. A provider's own event about something it sent (a status webhook, the platform's echo):
   its sender reads it as (provider message id, state); the answer moves forward to that
   state. A report that arrives before the send is recorded is retried for a minute; one
   for a message the hub did not send is ignored. A report for an answer recorded `sent`
   whose pointer is missing finds it by its `unpointed` mark, and writes the pointer.

Every move publishes `message.status_updated` (provider `answers`); the event is stored with
the move, so a redelivery after a failed publish republishes the same event.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from switchboard_core.answers import (
    ANSWERS_PROVIDER,
    RETRY_REQUESTED,
    SENT,
    STATUS_UPDATED,
    answer_event,
    opted_out_of,
)
from switchboard_core.answers.store import MessageRecord, MessageStore
from switchboard_core.connections import ConnectionStore, CredentialStore
from switchboard_core.errors import NotFound
from switchboard_core.events import CanonicalEvent
from switchboard_core.outbound import (
    Attachment,
    OutboundMessage,
    OutcomeUnknown,
    PermanentFailure,
    ReplyAddress,
    TransientFailure,
    Transport,
    delivery_status,
    send,
)
from switchboard_core.routing.contacts import ContactStore

# Longer than the function's timeout and shorter than the queue's visibility timeout: a
# claim this old belongs to an attempt that is over.
ATTEMPT_OVER_AFTER = timedelta(seconds=60)
# A delivery report for an id not yet recorded is retried while it is this young, and at most
# this many times: most such reports are about messages the hub did not send as an answer
# (auto-replies, notifications), which must not fill the queue or reach the DLQ.
REPORT_WAITS_FOR_SEND = timedelta(seconds=60)
REPORT_RECEIVES = 3
# A failed pointer write is retried soon: a report that comes meanwhile finds the answer by its
# mark, but the pointer is the cheap way.
POINTER_RETRY_SECONDS = 2
# The writes that settle what a send came to, tried this many times (each is conditional, so a
# try AWS applied whose answer was lost is harmless to repeat): the move to `sent` after the
# provider took it, and the release of a claim the provider certainly did not act on. Either
# one failing leaves a claim with its hand-off mark, which ends `outcome_unknown`.
WRITE_TRIES = 3


class PointerNotWritten(TransientFailure):
    """The answer is recorded `sent`, its pointer is not written yet: the queue's retry writes it.
    `outcomes` (its status events) are published all the same; on the queue's last attempt the
    message is let go, the mark left for the reports (never the DLQ for a settled answer)."""

    def __init__(self, outcomes: list[CanonicalEvent], detail: str) -> None:
        super().__init__("pointer_not_written", detail, retry_after=POINTER_RETRY_SECONDS)
        self.outcomes = outcomes


class NotYetRecorded(TransientFailure):
    """A status report for a provider id the hub has not recorded yet (the provider called back
    before the send's answer was stored): retried shortly."""

    def __init__(self, detail: str) -> None:
        super().__init__("not_yet_recorded", detail, retry_after=5)


@dataclass
class AnswerDeps:
    messages: MessageStore
    contacts: ContactStore
    connections: ConnectionStore
    credentials: CredentialStore  # under the outbound prefix
    transport: Transport
    webhook_url: Any  # (provider, connection id) -> the hub's webhook URL for it, or None


def handle(
    event: CanonicalEvent, deps: AnswerDeps, now: datetime, last_attempt: bool = False, receive_count: int = 1
) -> list[CanonicalEvent]:
    """The message.status_updated events one bus event leads to (none when it is not ours)."""
    if event.provider == ANSWERS_PROVIDER:
        if event.type in (SENT, RETRY_REQUESTED):
            message_id = event.attributes.get("message_id")
            attempt = event.attributes.get("attempt", 1)
            if isinstance(message_id, str) and isinstance(attempt, int):
                return send_answer(message_id, attempt, deps, now, last_attempt)
        return []
    return thread_report(event, deps, now, waiting=receive_count < REPORT_RECEIVES and not last_attempt)


def send_answer(
    message_id: str, attempt: int, deps: AnswerDeps, now: datetime, last_attempt: bool
) -> list[CanonicalEvent]:
    record = deps.messages.get(message_id)
    if record is None or record.attempt != attempt:
        return []  # unknown, or a later attempt has started: this request is over
    if record.state not in ("queued", "sending"):
        return settled(record, deps)
    if record.state == "sending":
        if record.claimed_at is None or now - record.claimed_at < ATTEMPT_OVER_AFTER:
            # Another delivery holds it right now: its outcome is published by it.
            raise TransientFailure(
                "in_progress", f"message {message_id} is being sent by another attempt", retry_after=30
            )
        if record.handed_off is not False:  # handed to the provider (or claimed before the mark existed)
            return fail(
                record,
                "outcome_unknown",
                f"an earlier attempt stopped after handing it to {record.provider}: it may have been sent. "
                "Retry only if the customer did not get it",
                deps,
                now,
                from_states=("sending",),
            )
    if record.state == "queued":
        # Checked before the claim, so a failure here never leaves a claim behind: what forbids the
        # send now (an opt-out since, the connection gone), then the credentials (a read failure
        # raises and is retried with nothing claimed).
        problem = precheck(record, deps)
        if problem is not None:
            return fail(record, *problem, deps, now, from_states=("queued",))
        credentials = deps.credentials.get(record.connection).current
        token = deps.messages.claim(message_id, attempt, now)
    else:
        # The attempt that claimed it stopped before the provider call: it never went, so this
        # delivery takes the claim over and sends it (checked first, as a fresh claim would be).
        token = deps.messages.take_over(message_id, attempt, record.claim_token, now)
        if token is not None:
            try:
                problem = precheck(record, deps)
                if problem is not None:
                    return fail(record, *problem, deps, now, from_states=("sending",))
                credentials = deps.credentials.get(record.connection).current
            except Exception:
                release(message_id, attempt, token, deps, now)
                raise
    if token is None or not hand_off(record, token, deps, now):
        # Another delivery claimed it (or took it over) between the read and the write.
        raise TransientFailure("in_progress", f"message {message_id} is being sent by another attempt", retry_after=30)
    record = record.model_copy(update={"state": "sending"})
    outgoing = OutboundMessage(
        text=record.text,
        message_id=record.message_id,
        attachments=tuple(Attachment(a.url, a.content_type) for a in record.attachments),
        template=record.template,
        status_callback=deps.webhook_url(record.provider, record.connection),
    )
    address = ReplyAddress(provider=record.provider, connection=record.connection, fields=record.address)
    try:
        provider_message_id = send(address, outgoing, credentials, deps.transport)
    except PermanentFailure as failure:
        return fail(record, failure.code, failure.detail, deps, now, from_states=("sending",))
    except OutcomeUnknown as unknown:  # it may have reached the customer: never sent again blindly
        detail = f"{unknown.detail}: {record.provider} may have sent it. Retry only if the customer did not get it"
        return fail(record, unknown.code, detail, deps, now, from_states=("sending",))
    except TransientFailure as failure:
        if not last_attempt:
            release(record.message_id, record.attempt, token, deps, now)
            raise
        detail = f"gave up after the queue's last attempt: {failure.detail}"
        return fail(record, failure.code, detail, deps, now, from_states=("sending",))
    return record_sent(record, provider_message_id, deps, now)


def record_sent(
    record: MessageRecord, provider_message_id: str, deps: AnswerDeps, now: datetime
) -> list[CanonicalEvent]:
    """The provider took it: the pointer first (a report that comes before the move to `sent`
    finds the answer and waits for it), then `sent` with the provider's id, recorded whether or
    not the pointer's write succeeded. Without the pointer the answer carries the `unpointed`
    mark, and the queue's retry writes it (no send: the answer is settled)."""
    sent = record.model_copy(update={"provider_message_id": provider_message_id})
    outcome = answer_event(sent, STATUS_UPDATED, now, state="sent")
    pointer_error: Exception | None = None
    try:
        deps.messages.point(sent, provider_message_id)
    except aws_errors() as error:  # throttled, 5xx, timed out after botocore's retries
        pointer_error = error
    tries = 1
    while True:
        try:
            moved = deps.messages.record_sent(
                sent, provider_message_id, now, outcome.model_dump_json(), pointed=pointer_error is None
            )
            break
        except aws_errors():
            # The write is conditional on `sending` and this attempt: when a try AWS applied lost
            # its answer, the next one finds `sent` and the stored event is republished.
            if tries == WRITE_TRIES:
                raise
            tries += 1
    outcomes = [outcome] if moved else republished(deps.messages.get(record.message_id))
    if pointer_error is not None:
        raise PointerNotWritten(outcomes, f"{record.message_id}: {pointer_error}") from pointer_error
    return outcomes


def settled(record: MessageRecord, deps: AnswerDeps) -> list[CanonicalEvent]:
    """A redelivery for an answer past `sending`: its last status event again, and the pointer
    its first delivery could not write."""
    outcomes = republished(record)
    if record.unpointed:
        try:
            deps.messages.repoint(record)
        except aws_errors() as error:
            raise PointerNotWritten(outcomes, f"{record.message_id}: {error}") from error
    return outcomes


def hand_off(record: MessageRecord, token: str, deps: AnswerDeps, now: datetime) -> bool:
    """Mark "it may have gone" just before the provider call (False: the claim is no longer this
    delivery's). When the mark cannot be written, the claim is let go and the error raised: the
    provider was not called, so the queue's retry sends it."""
    try:
        return deps.messages.hand_off(record.message_id, record.attempt, token, now)
    except Exception:
        release(record.message_id, record.attempt, token, deps, now)
        raise


def release(message_id: str, attempt: int, token: str, deps: AnswerDeps, now: datetime) -> None:
    """This delivery's claim let go (sending -> queued): the provider was not called, or said it
    did not take the answer. Conditional on the claim's token, so repeating it is harmless."""
    tries = 1
    while True:
        try:
            deps.messages.release(message_id, attempt, now, token)
            return
        except aws_errors():
            if tries == WRITE_TRIES:
                raise
            tries += 1


def precheck(record: MessageRecord, deps: AnswerDeps) -> tuple[str, str] | None:
    """What forbids the send now (the contact opted out since, the connection went), as (code, detail)."""
    if record.contact_id:
        contact = deps.contacts.get(record.contact_id)
        if contact is not None and opted_out_of(contact.consent, record.event_channel):
            return "opted_out", f"the contact opted out ({contact.consent.channel}, {contact.consent.at})"
    try:
        connection = deps.connections.get(record.connection)
    except NotFound:
        connection = None
    if connection is None or connection.tenant != record.tenant or connection.provider != record.provider:
        return "connection_gone", f"connection {record.connection} no longer exists"
    if connection.outbound_configured_at is None:
        return "not_configured", f"connection {connection.id} has no outbound credentials"
    return None


def fail(
    record: MessageRecord, code: str, detail: str, deps: AnswerDeps, now: datetime, *, from_states: tuple[str, ...]
) -> list[CanonicalEvent]:
    reason = f"{code}: {detail}"[:600]
    outcome = answer_event(
        record.model_copy(update={"reason": reason}), STATUS_UPDATED, now, state="failed", reason=reason
    )
    if deps.messages.record_failed(
        record.message_id, record.attempt, reason, now, outcome.model_dump_json(), from_states=from_states
    ):
        return [outcome]
    return republished(deps.messages.get(record.message_id))


def republished(record: MessageRecord | None) -> list[CanonicalEvent]:
    """The last status event of a settled answer, published again (same id: subscribers see it once)."""
    if record is None or not record.last_event:
        return []
    return [CanonicalEvent.model_validate_json(record.last_event)]


def thread_report(event: CanonicalEvent, deps: AnswerDeps, now: datetime, waiting: bool = True) -> list[CanonicalEvent]:
    report = delivery_status(event)
    if report is None:
        return []
    message_id = deps.messages.by_provider_id(event.provider, report.provider_message_id)
    unpointed = message_id is None
    if unpointed:
        # An answer recorded `sent` whose pointer's write failed is found by its mark.
        message_id = deps.messages.by_unpointed(event.provider, report.provider_message_id)
    if message_id is None:
        if waiting and now - event.received_at < REPORT_WAITS_FOR_SEND:
            raise NotYetRecorded(f"{event.provider} message {report.provider_message_id} is not recorded (yet)")
        return []  # not one of the hub's answers (an auto-reply, a message sent elsewhere)
    record = deps.messages.get(message_id)
    if record is None or record.tenant != event.tenant:
        return []
    if record.state in ("queued", "sending"):  # the pointer is written just before the move to sent
        if waiting:
            raise NotYetRecorded(f"{record.message_id} is not recorded as sent yet")
        return []
    if record.provider_message_id != report.provider_message_id:
        return []  # about an earlier attempt's message: this attempt has its own
    if event.type != STATUS_UPDATED:  # the platform's echo of the published answer
        deps.messages.add_echo(message_id, event.id)
    reason = report.reason if report.state == "failed" else None
    outcome = answer_event(
        record.model_copy(update={"reason": reason}),
        STATUS_UPDATED,
        event.occurred_at,
        state=report.state,
        reason=reason,
    )
    if report.state == "failed":
        moved = deps.messages.record_failed(
            message_id,
            record.attempt,
            reason or "failed",
            now,
            outcome.model_dump_json(),
            from_states=("sent",),
        )
    else:
        moved = deps.messages.advance(message_id, report.state, now, outcome.model_dump_json(), record.attempt)
    if unpointed:
        # After the move: a failure here retries the report, which finds the move made.
        deps.messages.repoint(record)
    if moved or record.state == report.state:
        # Moved now, or by an earlier delivery of this report whose publish failed: (re)published,
        # with the same id, so subscribers see it once.
        return [outcome]
    return []


def aws_errors() -> tuple[type[Exception], ...]:
    """What a failed AWS call raises (a throttle, a 5xx, a timeout); imported only when one
    happens (an `except` clause is evaluated then)."""
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError)


def webhook_urls(base_url: str | None) -> Any:
    """(provider, connection) -> the hub's webhook URL, for APIs that take a per-message status callback."""

    def url(provider: str, connection: str) -> str | None:
        return f"{base_url.rstrip('/')}/webhooks/{provider}/{connection}" if base_url else None

    return url


def queue_delay(failure: TransientFailure, receive_count: int) -> int:
    """Seconds before the queue retries: the provider's Retry-After when it gave one, else a
    growing backoff (10 s, 20 s, 40 s... at most 5 minutes)."""
    if failure.retry_after is not None:
        return max(1, min(int(failure.retry_after + 0.999), 12 * 3600))
    return min(10 * 2 ** max(receive_count - 1, 0), 300)
