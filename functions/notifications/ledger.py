"""The notifications table: what was sent, the rate windows and the digests waiting.

    pk SENT#<trigger event>#<recipient>#<channel>   one send of one trigger to one recipient on one
                                                     channel: the conditional write that makes it once
    pk RATE#<tenant>#<recipient>#<window start>      the triggers that reached a recipient in a window
                                                     (a string set: a redelivered trigger counts once)
    pk DIGEST#<tenant>#<recipient>#<window start>    what went over the limit in that window; `pending`
                                                     and `due_at` put it in the sparse `by_due` index
                                                     until the scheduled run sends it

Every item has `expires_at` (TTL). Windows are fixed (epoch seconds // window length), so
the limit is per window, not sliding: at most `limit` notifications plus one digest per
recipient and window."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from switchboard_core.dynamo import conditional_write

PENDING = "pending"
# Longer than the queue's visibility timeout: a claim older than this belongs to an attempt
# that is surely over (the function crashed mid-send), so a retry may take it back.
CLAIM_STALE_AFTER = timedelta(minutes=5)


@dataclass(frozen=True)
class Digest:
    key: str
    tenant: str
    recipient: dict[str, Any]
    due_at: datetime
    triggers: list[str]
    lines: list[str]
    attempts: int


class NotificationLedger:
    def __init__(self, table: Any, ttl: timedelta = timedelta(days=8)) -> None:
        self._table = table
        self._ttl = ttl

    def _expires(self, now: datetime) -> int:
        return int((now + self._ttl).timestamp())

    # --- once per (trigger, recipient, channel) ------------------------------------------

    def claim(self, trigger: str, recipient: str, channel: str, now: datetime) -> bool:
        """True when this attempt may send; False when it was sent (or is being sent) already.

        The claim carries a token of its own: when AWS applied the write but its answer was lost
        (a timeout), botocore's retry fails the condition on this very claim, and the token read
        back tells it apart from another attempt's (which would leave the notification unsent)."""
        import uuid

        key = f"SENT#{trigger}#{recipient}#{channel}"
        token = uuid.uuid4().hex
        if conditional_write(
            self._table.put_item,
            Item={
                "pk": key,
                "state": "sending",
                "claimed_at": now.isoformat(),
                "claim_token": token,
                "expires_at": self._expires(now),
            },
            ConditionExpression="attribute_not_exists(pk) OR (#state = :sending AND claimed_at <= :stale)",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={":sending": "sending", ":stale": (now - CLAIM_STALE_AFTER).isoformat()},
        ):
            return True
        item = self._table.get_item(Key={"pk": key}, ConsistentRead=True).get("Item") or {}
        return item.get("state") == "sending" and item.get("claim_token") == token

    def in_progress(self, trigger: str, recipient: str, channel: str) -> bool:
        """Claimed and not settled: an attempt is sending it, or died before recording how it went."""
        item = self._table.get_item(Key={"pk": f"SENT#{trigger}#{recipient}#{channel}"}, ConsistentRead=True)
        return (item.get("Item") or {}).get("state") == "sending"

    def settle(
        self, trigger: str, recipient: str, channel: str, outcome: str, now: datetime, event: str | None = None
    ) -> None:
        """Record how it ended, with the outcome event (JSON) when there is one: a redelivery
        that finds it publishes that event again instead of sending again (a crash between
        the send and the publish loses no notification.* event)."""
        values: dict[str, Any] = {":outcome": outcome, ":now": now.isoformat()}
        update = "SET #state = :outcome, settled_at = :now"
        if event is not None:
            update += ", outcome_event = :event"
            values[":event"] = event
        self._table.update_item(
            Key={"pk": f"SENT#{trigger}#{recipient}#{channel}"},
            UpdateExpression=update,
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues=values,
        )

    def settled_event(self, trigger: str, recipient: str, channel: str) -> str | None:
        item = self._table.get_item(Key={"pk": f"SENT#{trigger}#{recipient}#{channel}"}, ConsistentRead=True)
        return (item.get("Item") or {}).get("outcome_event")

    def is_digested(self, trigger: str, recipient: str) -> bool:
        """Whether `trigger` already went into a digest for `recipient` (a redelivery in a later window)."""
        item = self._table.get_item(Key={"pk": f"SENT#{trigger}#{recipient}#digest"}, ConsistentRead=True)
        return "Item" in item

    def release(self, trigger: str, recipient: str, channel: str) -> None:
        """A transient failure: the queue's retry may claim it again."""
        self._table.delete_item(Key={"pk": f"SENT#{trigger}#{recipient}#{channel}"})

    # --- rate windows ---------------------------------------------------------------------

    @staticmethod
    def window_start(now: datetime, window_seconds: int) -> int:
        return int(now.timestamp()) // window_seconds * window_seconds

    def admit(self, tenant: str, recipient: str, trigger: str, limit: int, window_seconds: int, now: datetime) -> bool:
        """True when `trigger` is among the first `limit` triggers for `recipient` in this window."""
        start = self.window_start(now, window_seconds)
        return conditional_write(
            self._table.update_item,
            Key={"pk": f"RATE#{tenant}#{recipient}#{start}"},
            UpdateExpression="ADD triggers :trigger SET expires_at = :expires",
            ConditionExpression="attribute_not_exists(triggers) OR size(triggers) < :limit OR contains(triggers, :id)",
            ExpressionAttributeValues={
                ":trigger": {trigger},
                ":id": trigger,
                ":limit": limit,
                ":expires": self._expires(now),
            },
        )

    # --- digests --------------------------------------------------------------------------

    def add_to_digest(
        self,
        tenant: str,
        recipient: dict[str, Any],
        trigger: str,
        line: str,
        window_seconds: int,
        now: datetime,
    ) -> None:
        start = self.window_start(now, window_seconds)
        due = datetime.fromtimestamp(start + window_seconds, UTC)
        import json

        self._table.update_item(
            Key={"pk": f"DIGEST#{tenant}#{recipient['key']}#{start}"},
            UpdateExpression="ADD triggers :trigger, #lines :line SET tenant = :tenant, recipient = :recipient, "
            "due_at = :due, expires_at = :expires, pending = if_not_exists(pending, :pending), "
            "attempts = if_not_exists(attempts, :zero)",
            ExpressionAttributeNames={"#lines": "lines"},
            ExpressionAttributeValues={
                ":trigger": {trigger},
                # A sortable line (time first); a set, so a redelivered trigger adds nothing.
                ":line": {f"{now.isoformat()}|{trigger}|{line}"},
                ":tenant": tenant,
                ":recipient": json.dumps(recipient, separators=(",", ":")),
                ":due": due.isoformat(),
                ":expires": self._expires(now),
                ":pending": PENDING,
                ":zero": 0,
            },
        )

    def due_digests(self, now: datetime) -> list[Digest]:
        import json

        from boto3.dynamodb.conditions import Key

        kwargs: dict[str, Any] = {
            "IndexName": "by_due",
            "KeyConditionExpression": Key("pending").eq(PENDING) & Key("due_at").lte(now.isoformat()),
        }
        found: list[Digest] = []
        while True:
            page = self._table.query(**kwargs)
            for item in page.get("Items", []):
                lines = sorted(item.get("lines") or [])
                found.append(
                    Digest(
                        key=item["pk"],
                        tenant=item["tenant"],
                        recipient=json.loads(item["recipient"]),
                        due_at=datetime.fromisoformat(item["due_at"]),
                        triggers=sorted(item.get("triggers") or []),
                        lines=[line.split("|", 2)[2] for line in lines],
                        attempts=int(item.get("attempts", 0)),
                    )
                )
            if "LastEvaluatedKey" not in page:
                return found
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def take_digest(self, digest: Digest) -> bool:
        """Take a due digest out of the index before sending it: two overlapping runs never both send."""
        return conditional_write(
            self._table.update_item,
            Key={"pk": digest.key},
            UpdateExpression="REMOVE pending SET attempts = attempts + :one",
            ConditionExpression="pending = :pending AND attempts = :attempts",
            ExpressionAttributeValues={":pending": PENDING, ":attempts": digest.attempts, ":one": 1},
        )

    def return_digest(self, digest: Digest) -> None:
        """A transient failure: back in the index for the next scheduled run."""
        self._table.update_item(
            Key={"pk": digest.key},
            UpdateExpression="SET pending = :pending",
            ExpressionAttributeValues={":pending": PENDING},
        )
