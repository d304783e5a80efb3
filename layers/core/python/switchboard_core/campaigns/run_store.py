"""Campaign runs in DynamoDB (table `campaign_runs`).

Items (pk, sk):
* `run#<run id>`, `state`: the run (`run`: its JSON), its `sequence`, `status`, `campaign`,
  `version`, `tenant`, `contact_key` (`<tenant>#<contact id>`, the by_contact index),
  `started_at` (both indexes' sort key) and the `outbox`: what the state's change still has to
  do (actions, events, outcomes to apply), written with the state so a crash before it is done
  leaves it to the next delivery. Every write of a run is conditional on the `sequence` read.
* `run#<run id>`, `action#<idempotency key>`: an outbound action's claim (`pending` while it
  is sent, `done` with its result afterwards), so a redelivery never sends twice. A pending
  claim carries its holder's `claim_token` and `handed_off`, set just before the provider's
  request goes: a claim that outlived its lease without it never reached the provider.
* `msg#<provider>#<connection>#<provider message id>`, `ptr`: which run and action a provider's
  message or call is, for its later status and call reports (the connection in the key: some
  providers' ids are unique only within an account, a bot, a chat).
* `count#<campaign id>`, `<version 6 digits>#<step id>`: the per-step counters (ADD), moved in the
  same transaction as the state change that counts them, so a retry never counts twice.
* `reply#<tenant>#<contact id>#<event id>`, `run`: which run a customer's reply was given to, so a
  redelivery of the reply answers the same run and no other.
* `sends#<tenant>#<contact id>`, `sends`: the contact's recent sends across every campaign, a map
  idempotency key -> time (the frequency cap; the same send recorded twice counts once).

Runs and outboxes are stored as JSON text: DynamoDB would turn their numbers into Decimals.
"""

from __future__ import annotations

import json
from collections import Counter as Tally
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from switchboard_core.campaigns.runs import FINISHED, CounterMove, Run
from switchboard_core.dynamo import conditional_write

STATE_SK = "state"
SETTLING = "settling"
ACTION_SK_PREFIX = "action#"
POINTER_SK = "ptr"
SENDS_SK = "sends"
REPLY_SK = "run"
COUNTERS = ("entered", "sent", "replied", "failed", "converted")
# A finished run, its claims and pointers are kept this long, then DynamoDB's TTL removes them.
FINISHED_RETENTION = timedelta(days=180)
# Claims and pointers of runs in flight outlive the longest wait a flow can hold (365 days).
CLAIM_RETENTION = timedelta(days=400)
# Recent sends are kept a little longer than any frequency-cap window is likely to be.
SENDS_RETENTION = timedelta(days=30)
# DynamoDB refuses more than 100 items in one transaction: the state and 99 counter items.
MAX_COUNTER_ITEMS = 99
# Pages of a campaign's index (1 MB each) a stop reads in one admin request at most.
MAX_IN_FLIGHT_PAGES = 5
# Why a transaction was cancelled when the caller's view is stale.
STALE_REASONS = ("ConditionalCheckFailed", "TransactionConflict")


def run_pk(run_id: str) -> str:
    return f"run#{run_id}"


def indexed_status(run: Run, outbox: Sequence[dict[str, Any]]) -> str:
    """The item's `status`, which the in-flight listings filter on: a finished run whose last
    change still has work in its outbox (a crash came in between) stays listed as `settling`,
    so the next input that finds it through an index finishes that work."""
    return SETTLING if run.finished and outbox else run.status.value


def contact_key(tenant: str, contact_id: str) -> str:
    return f"{tenant}#{contact_id}"


def counts_pk(campaign_id: str) -> str:
    return f"count#{campaign_id}"


def counts_sk(version: int, step: str) -> str:
    return f"{version:06d}#{step}"


def pointer_pk(provider: str, connection: str, provider_message_id: str) -> str:
    return f"msg#{provider}#{connection}#{provider_message_id}"


def reply_pk(tenant: str, contact_id: str, event_id: str) -> str:
    return f"reply#{tenant}#{contact_id}#{event_id}"


def sends_pk(tenant: str, contact_id: str) -> str:
    return f"sends#{tenant}#{contact_id}"


class StoredRun(BaseModel):
    """A run as read for a change: its state, the `sequence` to write on, and its outbox (plain
    JSON entries; the campaign function gives them their meaning)."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    run: Run
    outbox: list[dict[str, Any]] = Field(default_factory=list)

    @property
    def sequence(self) -> int:
        return self.run.sequence


class ClaimResult(BaseModel):
    """What came of a claimed action, kept on its claim: a redelivery reads it back instead of
    acting again."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    result: Literal["sent", "failed"]
    reason: str | None = None
    provider: str | None = None
    provider_message_id: str | None = None
    connection: str | None = None


class Claim(BaseModel):
    """`claimed`: this caller acts now (holding `token`; a claim whose holder stopped before
    handing the action to the provider is taken over this way once its lease ended). `done`: it
    was done (`result`). `busy`: another delivery claimed it moments ago and may still be acting.
    `abandoned`: a delivery claimed it long ago, handed it to the provider and never finished:
    it may or may not have gone, so it is never done again blindly."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    status: Literal["claimed", "done", "busy", "abandoned"]
    result: ClaimResult | None = None
    token: str | None = None


class RecentSends(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)

    count: int = 0
    oldest: datetime | None = None


def _tally(counters: Iterable[CounterMove]) -> dict[str, Tally[str]]:
    per_step: dict[str, Tally[str]] = {}
    for move in counters:
        per_step.setdefault(move.step, Tally())[move.counter] += 1
    return per_step


def _ttl(moment: datetime) -> int:
    return int(moment.timestamp())


class RunStore:
    def __init__(self, table: Any) -> None:
        self._table = table

    # --- runs -----------------------------------------------------------------------------------

    def _state_item(self, run: Run, outbox: Sequence[dict[str, Any]]) -> dict[str, Any]:
        item: dict[str, Any] = {
            "pk": run_pk(run.id),
            "sk": STATE_SK,
            "run": run.model_dump_json(),
            "sequence": run.sequence,
            "status": indexed_status(run, outbox),
            "campaign": run.campaign,
            "version": run.version,
            "tenant": run.tenant,
            "contact_key": contact_key(run.tenant, run.contact.id),
            "started_at": run.started_at.isoformat(),
            "updated_at": run.updated_at.isoformat(),
            "outbox": json.dumps(list(outbox), separators=(",", ":")),
        }
        if run.finished and run.ended_at is not None:
            item["expires_at"] = _ttl(run.ended_at + FINISHED_RETENTION)
        return item

    def _counter_updates(self, run: Run, counters: Sequence[CounterMove]) -> list[dict[str, Any]]:
        updates = []
        for step, tally in _tally(counters).items():
            names = {f"#c{index}": name for index, name in enumerate(sorted(tally))}
            values = {f":c{index}": tally[name] for index, name in enumerate(sorted(tally))}
            updates.append(
                {
                    "Update": {
                        "TableName": self._table.name,
                        "Key": {"pk": counts_pk(run.campaign), "sk": counts_sk(run.version, step)},
                        "UpdateExpression": "ADD " + ", ".join(f"#c{i} :c{i}" for i in range(len(tally))),
                        "ExpressionAttributeNames": names,
                        "ExpressionAttributeValues": values,
                    }
                }
            )
        if len(updates) > MAX_COUNTER_ITEMS:  # one call runs at most 50 steps: cannot happen
            raise ValueError(f"{len(updates)} counter items exceed one transaction")
        return updates

    def _write(self, put: dict[str, Any], run: Run, counters: Sequence[CounterMove]) -> bool:
        """The state put and its counters, all or nothing; False when the put's condition failed."""
        from botocore.exceptions import ClientError

        updates = self._counter_updates(run, counters)
        if not updates:
            return conditional_write(self._table.put_item, **put)
        put = {**put, "TableName": self._table.name}
        try:
            self._table.meta.client.transact_write_items(TransactItems=[{"Put": put}, *updates])
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            reasons = [reason.get("Code") for reason in exc.response.get("CancellationReasons", [])]
            if not reasons or any(code in STALE_REASONS for code in reasons):
                return False
            raise
        return True

    def create(self, run: Run, outbox: Sequence[dict[str, Any]] = (), counters: Sequence[CounterMove] = ()) -> bool:
        """A new run (with its outbox and the counts its first steps move); False when a run with
        that id exists already (its trigger was delivered before), and nothing is written."""
        return self._write(
            {"Item": self._state_item(run, outbox), "ConditionExpression": "attribute_not_exists(pk)"},
            run,
            counters,
        )

    def save(
        self,
        run: Run,
        outbox: Sequence[dict[str, Any]],
        expected_sequence: int,
        counters: Sequence[CounterMove] = (),
    ) -> bool:
        """Replace the run's state (and outbox) if its stored sequence is still `expected_sequence`,
        moving `counters` with it; False (nothing written) when another change came first."""
        return self._write(
            {
                "Item": self._state_item(run, outbox),
                "ConditionExpression": "#sequence = :expected",
                "ExpressionAttributeNames": {"#sequence": "sequence"},
                "ExpressionAttributeValues": {":expected": expected_sequence},
            },
            run,
            counters,
        )

    def set_outbox(self, run: Run, outbox: Sequence[dict[str, Any]]) -> bool:
        """Keep only what is still to do of `run`'s change, if the run is still at its sequence."""
        return conditional_write(
            self._table.update_item,
            Key={"pk": run_pk(run.id), "sk": STATE_SK},
            UpdateExpression="SET outbox = :outbox, #status = :status",
            ConditionExpression="#sequence = :expected",
            ExpressionAttributeNames={"#sequence": "sequence", "#status": "status"},
            ExpressionAttributeValues={
                ":outbox": json.dumps(list(outbox), separators=(",", ":")),
                ":status": indexed_status(run, outbox),
                ":expected": run.sequence,
            },
        )

    def read(self, run_id: str) -> StoredRun | None:
        """The run and its outbox, read consistently (the basis of a conditional write)."""
        item = self._table.get_item(Key={"pk": run_pk(run_id), "sk": STATE_SK}, ConsistentRead=True).get("Item")
        if item is None:
            return None
        return StoredRun(run=Run.model_validate_json(item["run"]), outbox=json.loads(item.get("outbox") or "[]"))

    def get(self, run_id: str) -> Run | None:
        stored = self.read(run_id)
        return stored.run if stored else None

    def list_for_campaign(
        self, campaign_id: str, limit: int = 50, cursor: dict[str, Any] | None = None
    ) -> tuple[list[Run], dict[str, Any] | None]:
        """The campaign's runs, newest first, a page at a time (`cursor`: the previous page's
        next key)."""
        request: dict[str, Any] = {
            "IndexName": "by_campaign",
            "KeyConditionExpression": "campaign = :campaign",
            "ExpressionAttributeValues": {":campaign": campaign_id},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if cursor:
            request["ExclusiveStartKey"] = cursor
        page = self._table.query(**request)
        runs = [Run.model_validate_json(item["run"]) for item in page.get("Items", [])]
        return runs, page.get("LastEvaluatedKey")

    def _in_flight(self, index: str, key: str, value: str) -> Iterable[dict[str, Any]]:
        request: dict[str, Any] = {
            "IndexName": index,
            "KeyConditionExpression": f"{key} = :value",
            "FilterExpression": "NOT #status IN (:done, :stopped)",
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": {
                ":value": value,
                ":done": FINISHED[0].value,
                ":stopped": FINISHED[1].value,
            },
        }
        while True:
            page = self._table.query(**request)
            yield from page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def in_flight_for_campaign(self, campaign_id: str) -> list[str]:
        """Ids of the campaign's runs not finished (as the index saw them a moment ago; a finished
        run whose last change is still being settled is among them)."""
        return [item["pk"].removeprefix("run#") for item in self._in_flight("by_campaign", "campaign", campaign_id)]

    def first_in_flight_for_campaign(
        self, campaign_id: str, limit: int, max_pages: int = MAX_IN_FLIGHT_PAGES
    ) -> tuple[list[str], bool]:
        """Ids of at most `limit` of the campaign's runs in flight, oldest first, reading at most
        `max_pages` pages of its index; and whether there may be more (a bounded stop)."""
        request: dict[str, Any] = {
            "IndexName": "by_campaign",
            "KeyConditionExpression": "campaign = :value",
            "FilterExpression": "NOT #status IN (:done, :stopped)",
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": {
                ":value": campaign_id,
                ":done": FINISHED[0].value,
                ":stopped": FINISHED[1].value,
            },
        }
        found: list[str] = []
        for _ in range(max_pages):
            page = self._table.query(**request)
            found += [item["pk"].removeprefix("run#") for item in page.get("Items", [])]
            if len(found) > limit:
                return found[:limit], True
            if "LastEvaluatedKey" not in page:
                return found, False
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return found[:limit], True

    def for_contact(self, tenant: str, contact_id: str) -> list[Run]:
        """The contact's runs in flight, across every campaign of the tenant, oldest first (with any
        finished one whose last change is still being settled: `finished` tells them apart)."""
        items = self._in_flight("by_contact", "contact_key", contact_key(tenant, contact_id))
        return [Run.model_validate_json(item["run"]) for item in items]

    # --- counters ---------------------------------------------------------------------------------

    def counts(self, campaign_id: str) -> dict[int, dict[str, dict[str, int]]]:
        """version -> step -> counter -> count (every counter present, zero when never moved)."""
        found: dict[int, dict[str, dict[str, int]]] = {}
        request: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": counts_pk(campaign_id)},
        }
        while True:
            page = self._table.query(**request)
            for item in page.get("Items", []):
                version, _, step = item["sk"].partition("#")
                found.setdefault(int(version), {})[step] = {name: int(item.get(name, 0)) for name in COUNTERS}
            if "LastEvaluatedKey" not in page:
                return found
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # --- action claims ----------------------------------------------------------------------------

    def claim(self, run_id: str, key: str, now: datetime, lease: timedelta) -> Claim:
        """Claim one outbound action before acting on it. A claim left `pending` longer than
        `lease` (longer than one invocation can last) belongs to a delivery that crashed: taken
        over when its holder never handed the action to the provider, else `abandoned`.

        The claim carries a token: when AWS applied the write but its answer was lost, botocore's
        retry fails the condition on our own claim, and the token read back tells it apart."""
        import uuid

        item_key = {"pk": run_pk(run_id), "sk": ACTION_SK_PREFIX + key}
        token = uuid.uuid4().hex
        claimed = conditional_write(
            self._table.put_item,
            Item={
                **item_key,
                "state": "pending",
                "claimed_at": now.isoformat(),
                "claim_token": token,
                "handed_off": False,
                "expires_at": _ttl(now + CLAIM_RETENTION),
            },
            ConditionExpression="attribute_not_exists(pk)",
        )
        if claimed:
            return Claim(status="claimed", token=token)
        item = self._table.get_item(Key=item_key, ConsistentRead=True).get("Item")
        if item is None:  # released between the put and the read: try once more next delivery
            return Claim(status="busy")
        if item["state"] == "done":
            return Claim(status="done", result=ClaimResult.model_validate_json(item["result"]))
        if item.get("claim_token") == token:
            return Claim(status="claimed", token=token)
        if datetime.fromisoformat(item["claimed_at"]) + lease > now:
            return Claim(status="busy")
        if item.get("handed_off") is not False or "claim_token" not in item:
            return Claim(status="abandoned")  # handed off (or claimed before the mark existed)
        return self._take_over(item_key, str(item["claim_token"]), now)

    def _take_over(self, item_key: dict[str, str], old_token: str, now: datetime) -> Claim:
        """A pending claim whose holder stopped before the provider's request, claimed afresh:
        of two deliveries doing this, one wins; the old holder can no longer hand it off."""
        import uuid

        token = uuid.uuid4().hex
        if conditional_write(
            self._table.update_item,
            Key=item_key,
            UpdateExpression="SET claimed_at = :now, claim_token = :token",
            ConditionExpression="#state = :pending AND claim_token = :old AND handed_off = :no",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={
                ":now": now.isoformat(),
                ":token": token,
                ":pending": "pending",
                ":old": old_token,
                ":no": False,
            },
        ):
            return Claim(status="claimed", token=token)
        item = self._table.get_item(Key=item_key, ConsistentRead=True).get("Item") or {}
        if item.get("state") == "pending" and item.get("claim_token") == token:
            return Claim(status="claimed", token=token)
        return Claim(status="busy")  # another delivery took it over, or it moved: read again later

    def hand_off(self, run_id: str, key: str, token: str, now: datetime) -> bool:
        """Mark the claim "it may have gone", just before the provider's request: False when the
        claim is no longer this caller's (it must not act). Idempotent for its holder."""
        return conditional_write(
            self._table.update_item,
            Key={"pk": run_pk(run_id), "sk": ACTION_SK_PREFIX + key},
            UpdateExpression="SET handed_off = :yes, handed_off_at = :now",
            ConditionExpression="#state = :pending AND claim_token = :token",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={":yes": True, ":now": now.isoformat(), ":pending": "pending", ":token": token},
        )

    def finish_claim(self, run_id: str, key: str, result: ClaimResult, now: datetime) -> None:
        self._table.put_item(
            Item={
                "pk": run_pk(run_id),
                "sk": ACTION_SK_PREFIX + key,
                "state": "done",
                "result": result.model_dump_json(exclude_none=True),
                "done_at": now.isoformat(),
                "expires_at": _ttl(now + CLAIM_RETENTION),
            }
        )

    def release_claim(self, run_id: str, key: str, token: str | None = None) -> None:
        """Give up a claim whose action certainly did not happen (the provider refused it for now,
        or nothing was handed to it), so the next delivery tries again. With `token`, only the
        caller's own claim is let go (a no-op once another delivery took it over)."""
        request: dict[str, Any] = {
            "Key": {"pk": run_pk(run_id), "sk": ACTION_SK_PREFIX + key},
            "ConditionExpression": "#state = :pending",
            "ExpressionAttributeNames": {"#state": "state"},
            "ExpressionAttributeValues": {":pending": "pending"},
        }
        if token is None:
            self._table.delete_item(**request)
            return
        request["ConditionExpression"] += " AND claim_token = :token"
        request["ExpressionAttributeValues"][":token"] = token
        conditional_write(self._table.delete_item, **request)

    # --- provider message pointers ----------------------------------------------------------------

    def put_pointer(
        self, provider: str, connection: str, provider_message_id: str, run_id: str, key: str, now: datetime
    ) -> None:
        self._table.put_item(
            Item={
                "pk": pointer_pk(provider, connection, provider_message_id),
                "sk": POINTER_SK,
                "run": run_id,
                "key": key,
                "expires_at": _ttl(now + CLAIM_RETENTION),
            }
        )

    def pointer(self, provider: str, connection: str, provider_message_id: str) -> tuple[str, str] | None:
        """(run id, idempotency key) of a message or call a campaign sent through `connection`;
        None for any other."""
        key = {"pk": pointer_pk(provider, connection, provider_message_id), "sk": POINTER_SK}
        item = self._table.get_item(Key=key).get("Item")
        return (item["run"], item["key"]) if item else None

    # --- replies --------------------------------------------------------------------------------

    def assign_reply(self, tenant: str, contact_id: str, event_id: str, run_id: str, now: datetime) -> str:
        """Give the contact's reply `event_id` to `run_id` unless an earlier delivery of it gave it
        to a run already: the run that has it either way (a redelivery answers no second run)."""
        key = {"pk": reply_pk(tenant, contact_id, event_id), "sk": REPLY_SK}
        given = conditional_write(
            self._table.put_item,
            Item={**key, "run": run_id, "expires_at": _ttl(now + CLAIM_RETENTION)},
            ConditionExpression="attribute_not_exists(pk)",
        )
        if given:
            return run_id
        item = self._table.get_item(Key=key, ConsistentRead=True).get("Item")
        return str(item["run"]) if item else run_id

    # --- recent sends (frequency cap) -------------------------------------------------------------

    def record_send(self, tenant: str, contact_id: str, key: str, at: datetime, window: timedelta) -> None:
        """Count one send or call to the contact (once per idempotency key), forgetting the ones
        that left `window`."""
        key_item = {"pk": sends_pk(tenant, contact_id), "sk": SENDS_SK}
        item = self._table.get_item(Key=key_item, ConsistentRead=True).get("Item")
        if item is None:
            created = conditional_write(
                self._table.put_item,
                Item={**key_item, "sends": {key: at.isoformat()}, "expires_at": _ttl(at + SENDS_RETENTION)},
                ConditionExpression="attribute_not_exists(pk)",
            )
            if created:
                return
            item = self._table.get_item(Key=key_item, ConsistentRead=True)["Item"]
        expired = [name for name, sent in item["sends"].items() if datetime.fromisoformat(sent) + window <= at]
        names = {"#sends": "sends", "#key": key} | {f"#old{i}": name for i, name in enumerate(expired) if name != key}
        update = "SET #sends.#key = :at, expires_at = :ttl"
        removed = [f"#sends.#old{i}" for i, name in enumerate(expired) if name != key]
        if removed:
            update += " REMOVE " + ", ".join(removed)
        self._table.update_item(
            Key=key_item,
            UpdateExpression=update,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={":at": at.isoformat(), ":ttl": _ttl(at + SENDS_RETENTION)},
        )

    def recent_sends(self, tenant: str, contact_id: str, window: timedelta, now: datetime) -> RecentSends:
        item = self._table.get_item(Key={"pk": sends_pk(tenant, contact_id), "sk": SENDS_SK}).get("Item")
        if item is None:
            return RecentSends()
        within = sorted(
            sent for sent in (datetime.fromisoformat(value) for value in item["sends"].values()) if sent + window > now
        )
        return RecentSends(count=len(within), oldest=within[0] if within else None)
