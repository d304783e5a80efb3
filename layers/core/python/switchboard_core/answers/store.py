"""The messages table: each staff answer, its state, and the provider ids that thread statuses onto it.

    pk MSG#<message id>                       the answer (`MessageRecord`); `conversation` and
                                              `sort_key` (created_at#id) feed the by_conversation index
    pk PROVIDER#<provider>#<provider msg id>  which answer a provider's message id belongs to (the pointer)

The pointer is written after the provider took the answer and before the move to `sent`. When
its write fails, the move to `sent` is recorded all the same (what the provider returned is
never lost) and carries `unpointed` (<provider>#<provider msg id>), which the sparse
by_unpointed index finds: a status report that finds no pointer looks there, and whoever finds
the answer that way (the report, or the queue's redelivery of the send) writes the pointer and
removes the mark.

States move forward only: queued -> sending (one attempt holds the send) -> sent ->
delivered -> read; `failed` from any state before `delivered` (a carrier's "undelivered"
after "sent" is a failure). A failed answer may be queued again (`requeue`), which starts a
new attempt. Every change is a conditional write, so two deliveries of one queue message, or
two status webhooks racing, move an answer once.

`sending` has two durable marks: the claim (`claim_token`, `claimed_at`: "this delivery may
send it") and, written just before the provider call, the hand-off (`handed_off`: "it may
have gone"). A claim that aged without its hand-off belongs to a delivery that stopped before
calling the provider: a redelivery takes it over and sends. Only a claim with its hand-off
(the provider may have taken it) is never sent again blindly.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from switchboard_core.dynamo import conditional_write

State = Literal["queued", "sending", "sent", "delivered", "read", "failed"]
RANK: dict[str, int] = {"queued": 0, "sending": 1, "sent": 2, "delivered": 3, "read": 4}
# A failure report is taken until the message is known to have arrived.
FAILABLE = ("queued", "sending", "sent")


class Author(BaseModel):
    """The calling principal who wrote the answer."""

    model_config = ConfigDict(extra="forbid")

    key_id: str
    name: str
    role: str


class StoredAttachment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str
    content_type: str | None = None


class Transition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    state: State
    at: AwareDatetime
    reason: str | None = None
    attempt: int = 1


class MessageRecord(BaseModel):
    model_config = ConfigDict(extra="ignore")

    message_id: str
    tenant: str
    conversation: str
    contact_id: str | None = None
    contact: dict[str, Any] = Field(default_factory=dict, description="the canonical contact of the answered event")
    author: Author
    channel: str
    provider: str
    connection: str
    event_channel: str = Field(description="the canonical Channel of the answered event (social, telephony...)")
    address: dict[str, str]
    to: str
    visibility: Literal["public", "private"] | None = None
    text: str
    attachments: list[StoredAttachment] = Field(default_factory=list)
    template: dict[str, Any] | None = None
    in_reply_to: str = Field(description="the customer's event this answers")
    state: State = "queued"
    attempt: int = 1
    provider_message_id: str | None = None
    reason: str | None = None
    claimed_at: AwareDatetime | None = None
    claim_token: str | None = None
    # False from the claim until just before the provider call (then True): None on a claim
    # written before the mark existed, which counts as handed off.
    handed_off: bool | None = None
    created_at: AwareDatetime
    updated_at: AwareDatetime
    history: list[Transition] = Field(default_factory=list)
    # The last message.status_updated published for it (JSON): a redelivery republishes it.
    last_event: str | None = None
    # Set only while the pointer of `provider_message_id` is missing (its write failed after the
    # send): "<provider>#<provider message id>", the sparse by_unpointed index's key.
    unpointed: str | None = None
    # The platform's echoes of it (the business's own tweet, a message echo, the ticket comment):
    # event ids the conversation listing leaves out, so the answer is not shown twice.
    echo_events: list[str] = Field(default_factory=list)

    def view(self) -> dict[str, Any]:
        """What the API shows of it."""
        return self.model_dump(
            mode="json",
            exclude={
                "claimed_at",
                "claim_token",
                "handed_off",
                "last_event",
                "unpointed",
                "address",
                "contact",
                "echo_events",
            },
        )


class MessageStore:
    def __init__(self, table: Any) -> None:
        self._table = table

    def create(self, record: MessageRecord) -> None:
        item = self._item(record)
        self._table.put_item(Item=item, ConditionExpression="attribute_not_exists(pk)")

    def get(self, message_id: str) -> MessageRecord | None:
        item = self._table.get_item(Key={"pk": f"MSG#{message_id}"}, ConsistentRead=True).get("Item")
        return MessageRecord.model_validate(_plain(item)) if item else None

    def for_conversation(self, conversation: str, limit: int = 200) -> list[MessageRecord]:
        """Oldest first."""
        from boto3.dynamodb.conditions import Key

        records: list[MessageRecord] = []
        kwargs: dict[str, Any] = {
            "IndexName": "by_conversation",
            "KeyConditionExpression": Key("conversation").eq(conversation),
        }
        while len(records) < limit:
            page = self._table.query(**kwargs)
            for item in page.get("Items", []):
                full = self.get(item["pk"].removeprefix("MSG#"))  # the index may project keys only
                if full is not None:
                    records.append(full)
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return records[:limit]

    def by_provider_id(self, provider: str, provider_message_id: str) -> str | None:
        item = self._table.get_item(Key={"pk": pointer_key(provider, provider_message_id)}, ConsistentRead=True).get(
            "Item"
        )
        return item["message_id"] if item else None

    def by_unpointed(self, provider: str, provider_message_id: str) -> str | None:
        """The answer recorded `sent` with this provider id whose pointer is still missing (the
        index is eventually consistent: a mark written a moment ago may not show yet)."""
        from boto3.dynamodb.conditions import Key

        page = self._table.query(
            IndexName="by_unpointed",
            KeyConditionExpression=Key("unpointed").eq(unpointed_key(provider, provider_message_id)),
            Limit=1,
        )
        items = page.get("Items", [])
        return str(items[0]["pk"]).removeprefix("MSG#") if items else None

    # --- the pointer that threads a provider's reports --------------------------------------

    def point(self, record: MessageRecord, provider_message_id: str) -> None:
        """Write the pointer from the provider's message id to the answer. The same item every
        time, so repeating it (botocore's retry, a redelivery, a report repairing it) is harmless."""
        self._table.put_item(
            Item={
                "pk": pointer_key(record.provider, provider_message_id),
                "message_id": record.message_id,
                "tenant": record.tenant,
            }
        )

    def repoint(self, record: MessageRecord) -> None:
        """The pointer of a `sent` answer recorded without one, written now; then its mark removed
        (only that mark: a later attempt's answer carries its own)."""
        if not record.unpointed:
            return
        self.point(record, record.unpointed.split("#", 1)[1])
        conditional_write(
            self._table.update_item,
            Key={"pk": f"MSG#{record.message_id}"},
            UpdateExpression="REMOVE unpointed",
            ConditionExpression="unpointed = :mark",
            ExpressionAttributeValues={":mark": record.unpointed},
        )

    # --- transitions --------------------------------------------------------------------

    def claim(self, message_id: str, attempt: int, now: datetime) -> str | None:
        """queued -> sending for this attempt: the claim's token when this delivery may send it,
        None when another delivery holds it.

        The claim carries a token of its own: when AWS applied the write but its answer was lost
        (a timeout), botocore's retry fails the condition on our own claim, and the token read
        back tells it apart from another delivery's (which would leave the answer unsent)."""
        return self._take(
            message_id,
            "#state = :queued AND attempt = :attempt",
            {":queued": "queued", ":attempt": attempt},
            now,
        )

    def take_over(self, message_id: str, attempt: int, token: str | None, now: datetime) -> str | None:
        """A `sending` claim (`token`) whose delivery stopped before handing the answer to the
        provider, claimed afresh by this one: its new token, or None when the old claim has
        moved meanwhile (handed off, settled, taken over by another delivery)."""
        if token is None:
            return None
        return self._take(
            message_id,
            "#state = :sending AND attempt = :attempt AND claim_token = :old AND handed_off = :no",
            {":sending": "sending", ":attempt": attempt, ":old": token, ":no": False},
            now,
        )

    def _take(self, message_id: str, condition: str, values: dict[str, Any], now: datetime) -> str | None:
        import uuid

        token = uuid.uuid4().hex
        if conditional_write(
            self._table.update_item,
            Key={"pk": f"MSG#{message_id}"},
            UpdateExpression="SET #state = :sending, claimed_at = :now, updated_at = :now, "
            "claim_token = :token, handed_off = :no",
            ConditionExpression=condition,
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={
                **values,
                ":sending": "sending",
                ":now": now.isoformat(),
                ":token": token,
                ":no": False,
            },
        ):
            return token
        item = self._table.get_item(Key={"pk": f"MSG#{message_id}"}, ConsistentRead=True).get("Item") or {}
        return token if item.get("state") == "sending" and item.get("claim_token") == token else None

    def hand_off(self, message_id: str, attempt: int, token: str, now: datetime) -> bool:
        """The mark "it may have gone", written just before the provider call: False when this
        delivery's claim is no longer its own (then it must not send). Repeating it (botocore's
        retry of a write AWS applied) holds the same condition, so it is idempotent."""
        return conditional_write(
            self._table.update_item,
            Key={"pk": f"MSG#{message_id}"},
            UpdateExpression="SET handed_off = :yes, handed_off_at = :now, updated_at = :now",
            ConditionExpression="#state = :sending AND attempt = :attempt AND claim_token = :token",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={
                ":sending": "sending",
                ":attempt": attempt,
                ":token": token,
                ":yes": True,
                ":now": now.isoformat(),
            },
        )

    def release(self, message_id: str, attempt: int, now: datetime, token: str | None = None) -> None:
        """sending -> queued: the provider certainly did not take it (a 429, a 5xx), or the hand-off
        mark could not be written; the queue's retry claims it again. With `token`, only this
        delivery's own claim is let go."""
        condition = "#state = :sending AND attempt = :attempt"
        values: dict[str, Any] = {
            ":sending": "sending",
            ":queued": "queued",
            ":attempt": attempt,
            ":now": now.isoformat(),
        }
        if token is not None:
            condition += " AND claim_token = :token"
            values[":token"] = token
        conditional_write(
            self._table.update_item,
            Key={"pk": f"MSG#{message_id}"},
            UpdateExpression="SET #state = :queued, updated_at = :now "
            "REMOVE claimed_at, claim_token, handed_off, handed_off_at",
            ConditionExpression=condition,
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues=values,
        )

    def record_sent(
        self, record: MessageRecord, provider_message_id: str, now: datetime, event_json: str, *, pointed: bool
    ) -> bool:
        """sending -> sent with the provider's id (the pointer is written first, by `point`); when
        it could not be (`pointed` False), with the `unpointed` mark that finds it without one."""
        extra_set = {"provider_message_id": provider_message_id}
        if not pointed:
            extra_set["unpointed"] = unpointed_key(record.provider, provider_message_id)
        return self._move(
            record.message_id,
            "sent",
            now,
            event_json,
            condition="#state = :sending AND attempt = :attempt",
            values={":sending": "sending", ":attempt": record.attempt},
            extra_set=extra_set,
            attempt=record.attempt,
        )

    def record_failed(
        self,
        message_id: str,
        attempt: int,
        reason: str,
        now: datetime,
        event_json: str,
        *,
        from_states: tuple[str, ...],
    ) -> bool:
        names = {f":from{i}": state for i, state in enumerate(from_states)}
        return self._move(
            message_id,
            "failed",
            now,
            event_json,
            condition=f"#state IN ({', '.join(names)}) AND attempt = :attempt",
            values={**names, ":attempt": attempt},
            extra_set={"reason": reason},
            attempt=attempt,
            reason=reason,
        )

    def advance(self, message_id: str, state: str, now: datetime, event_json: str, attempt: int) -> bool:
        """A delivery report: to `state` only if that is forward (a late `delivered` after `read` is not)."""
        lower = [s for s, rank in RANK.items() if rank < RANK[state] and s != "queued"]
        names = {f":from{i}": s for i, s in enumerate(lower)}
        if not names:  # a provider's own "queued": nothing the answer has not passed already
            return False
        return self._move(
            message_id,
            state,
            now,
            event_json,
            condition=f"#state IN ({', '.join(names)}) AND attempt = :attempt",
            values={**names, ":attempt": attempt},
            attempt=attempt,
        )

    def add_echo(self, message_id: str, event_id: str) -> None:
        """Remember a platform event that echoes this answer (once, however often it is redelivered)."""
        conditional_write(
            self._table.update_item,
            Key={"pk": f"MSG#{message_id}"},
            UpdateExpression="SET echo_events = list_append(if_not_exists(echo_events, :empty), :echo)",
            ConditionExpression="attribute_exists(pk) AND NOT contains(echo_events, :id)",
            ExpressionAttributeValues={":empty": [], ":echo": [event_id], ":id": event_id},
        )

    def requeue(self, message_id: str, attempt: int, now: datetime, stale_before: datetime | None = None) -> bool:
        """failed -> queued as attempt + 1 (staff asked to retry), or a `sending` claimed before
        `stale_before` (an attempt that died: its outcome is unknown); False otherwise."""
        transition = Transition(state="queued", at=now, attempt=attempt + 1).model_dump(mode="json")
        condition = "(#state = :failed"
        values: dict[str, Any] = {
            ":queued": "queued",
            ":failed": "failed",
            ":attempt": attempt,
            ":next": attempt + 1,
            ":now": now.isoformat(),
            ":transition": [transition],
        }
        if stale_before is not None:
            condition += " OR (#state = :sending AND claimed_at <= :stale)"
            values |= {":sending": "sending", ":stale": stale_before.isoformat()}
        return conditional_write(
            self._table.update_item,
            Key={"pk": f"MSG#{message_id}"},
            UpdateExpression="SET #state = :queued, attempt = :next, updated_at = :now, "
            "history = list_append(history, :transition) "
            "REMOVE reason, claimed_at, claim_token, handed_off, handed_off_at, last_event",
            ConditionExpression=condition + ") AND attempt = :attempt",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues=values,
        )

    def _move(
        self,
        message_id: str,
        state: str,
        now: datetime,
        event_json: str,
        *,
        condition: str,
        values: dict[str, Any],
        attempt: int,
        extra_set: dict[str, str] | None = None,
        reason: str | None = None,
    ) -> bool:
        transition = Transition(state=state, at=now, reason=reason, attempt=attempt).model_dump(mode="json")
        sets = ["#state = :state", "updated_at = :now", "last_event = :event", "history = list_append(history, :t)"]
        extra_values: dict[str, Any] = {}
        for i, (name, value) in enumerate((extra_set or {}).items()):
            sets.append(f"{name} = :x{i}")
            extra_values[f":x{i}"] = value
        return conditional_write(
            self._table.update_item,
            Key={"pk": f"MSG#{message_id}"},
            UpdateExpression="SET " + ", ".join(sets),
            ConditionExpression=condition,
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={
                ":state": state,
                ":now": now.isoformat(),
                ":event": event_json,
                ":t": [transition],
                **values,
                **extra_values,
            },
        )

    @staticmethod
    def _item(record: MessageRecord) -> dict[str, Any]:
        item = record.model_dump(mode="json", exclude_none=True)
        item["pk"] = f"MSG#{record.message_id}"
        item["sort_key"] = f"{record.created_at.isoformat()}#{record.message_id}"
        return item


def pointer_key(provider: str, provider_message_id: str) -> str:
    return f"PROVIDER#{provider}#{provider_message_id}"


def unpointed_key(provider: str, provider_message_id: str) -> str:
    return f"{provider}#{provider_message_id}"


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    """DynamoDB numbers come back as Decimal; the model wants ints."""
    from decimal import Decimal

    def convert(value: Any) -> Any:
        if isinstance(value, Decimal):
            return int(value) if value == value.to_integral_value() else float(value)
        if isinstance(value, dict):
            return {k: convert(v) for k, v in value.items()}
        if isinstance(value, list):
            return [convert(v) for v in value]
        return value

    return convert(item)
