"""Conversations: every message-like event threaded into one cross-channel story.

An event joins a conversation by the provider's thread key first (a chat, ticket or
call id already seen), otherwise by its contact: the contact's active conversation,
if its last activity is within the inactivity window and it is not resolved. A DM,
then a call, then a ticket from one person within the window are one conversation.

Storage (one DynamoDB table, `pk` only):

    CONV#<id>                            the conversation
    THREAD#<tenant>#<conversation key>   which conversation a provider thread belongs to
    ACTIVE#<tenant>#<contact id>         the contact's current conversation
    OUTCOME#<event id>                   the events routing derived from an event (saved before publishing)
    EVENT#<event id>                     marks an event routed (written after publishing)

Pointers are claimed with conditional writes, so two events of one contact in the
same second open one conversation, not two; the `EVENT#` record, written when routing
of an event is complete, makes its redelivery a no-op.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from switchboard_core.dynamo import batch_get, conditional_answer, conditional_write, position_model
from switchboard_core.events import CanonicalEvent

if TYPE_CHECKING:
    from collections.abc import Collection

    from switchboard_core.routing.assignment import Assignment
    from switchboard_core.routing.rules import Decision
    from switchboard_core.routing.sensing import Sensed


DEFAULT_INACTIVITY_WINDOW = timedelta(hours=4)  # a new message after this long starts a new conversation
# The sentiment of the conversation's latest events, oldest first. Each routed event appends one;
# the list is cut back to the last SENTIMENT_TREND_KEPT once it holds SENTIMENT_TREND_KEPT more
# (one extra write per that many events), so a long conversation's item stays small: every read
# and write of it carries the list, and an item may not pass DynamoDB's 400 KB.
SENTIMENT_TREND_KEPT = 50


class Status(StrEnum):
    OPEN = "open"
    ASSIGNED = "assigned"
    WAITING = "waiting"
    RESOLVED = "resolved"


class Conversation(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    tenant: str
    contact_id: str | None = None
    status: Status = Status.OPEN
    assignee: str | None = None
    channels: list[str] = Field(default_factory=list)
    providers: list[str] = Field(default_factory=list)
    thread_keys: list[str] = Field(default_factory=list)
    event_count: int = 0
    topics: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    sentiment_trend: list[float] = Field(
        default_factory=list,
        description=f"the sentiment of the latest events, oldest first (the last {SENTIMENT_TREND_KEPT} at least)",
    )
    urgency: str | None = None
    queue: str | None = None
    priority: int | None = None
    sla_due_at: AwareDatetime | None = None
    first_response_at: AwareDatetime | None = None
    escalated_at: AwareDatetime | None = None
    last_decision: str | None = None
    connection: str | None = None

    @field_validator("channels", "providers", "thread_keys", "topics", "tags", mode="before")
    @classmethod
    def _sorted(cls, value: Any) -> Any:
        return sorted(value) if isinstance(value, (set, frozenset)) else value

    opened_at: AwareDatetime
    last_activity_at: AwareDatetime
    last_event_id: str | None = None


def list_index(status: str | None, assignee: str | None, topic: str | None = None) -> tuple[str, str | None]:
    """The index a tenant's conversation listing reads, and the composite attribute it is keyed on
    (None: the plain `tenant`): a topic's conversations (their topic memberships: a status or an
    assignee then filters what that index reads), an assignee's conversations of one status, all
    an assignee's, those of one status, or all."""
    if topic:
        return "by_tenant_topic", "tenant_topic"
    if assignee and status:
        return "by_tenant_assignee_status", "tenant_assignee_status"
    if assignee:
        return "by_tenant_assignee", "tenant_assignee"
    if status:
        return "by_tenant_status", "tenant_status"
    return "by_tenant", None


def list_position(status: str | None, assignee: str | None, topic: str | None = None) -> type[BaseModel]:
    """Where a listing of a tenant's conversations stopped (the LastEvaluatedKey of its index)."""
    attribute = list_index(status, assignee, topic)[1] or "tenant"
    return position_model("pk", attribute, "last_activity_at")


def index_keys(item: dict[str, Any]) -> dict[str, str]:
    """A conversation's composite index keys, from its tenant, status and assignee: the listing
    by status or by assignee then reads only the conversations it returns."""
    status = item.get("status", Status.OPEN.value)
    keys = {"tenant_status": f"{item['tenant']}#{status}"}
    if item.get("assignee"):
        keys["tenant_assignee"] = f"{item['tenant']}#{item['assignee']}"
        keys["tenant_assignee_status"] = f"{item['tenant']}#{item['assignee']}#{status}"
    return keys


def topic_membership(conversation_id: str, tenant: str, topic: str, last_activity_at: str) -> dict[str, str]:
    """The item that puts a conversation in its tenant's listing by `topic`: a conversation carries
    a set of topics, and an index keys one value per item, so each topic gets an item of its own
    (`by_tenant_topic`), whose sort key follows the conversation's last activity."""
    return {
        "pk": f"TOPIC#{conversation_id}#{topic}",
        "conversation_id": conversation_id,
        "tenant_topic": f"{tenant}#{topic}",
        "last_activity_at": last_activity_at,
    }


@dataclass(frozen=True)
class SavedOutcome:
    conversation_id: str
    events: list[CanonicalEvent]


@dataclass(frozen=True)
class RoutingProgress:
    routed_into: str | None  # the conversation, once the event is marked routed
    saved_outcome: SavedOutcome | None  # the derived events of routing that stopped before that mark


@dataclass(frozen=True)
class Threaded:
    conversation: Conversation
    opened: bool  # this event opened the conversation
    duplicate: bool  # this event had been threaded before (a redelivery)


class ConversationStore:
    def __init__(self, table: Any, inactivity_window: timedelta = DEFAULT_INACTIVITY_WINDOW) -> None:
        """`inactivity_window` matters only when threading (the routing function); readers of
        conversations (admin, escalation) keep the default."""
        self._table = table
        self._window = inactivity_window

    def get(self, conversation_id: str) -> Conversation | None:
        item = self._get(f"CONV#{conversation_id}")
        return Conversation.model_validate(item) if item else None

    def thread(
        self, event: CanonicalEvent, contact_id: str | None, now: datetime, progress: RoutingProgress | None = None
    ) -> Threaded:
        """Put `event` into its conversation, opening one if none fits. `progress`: the event's
        routing progress as the caller has just read it (else it is read here)."""
        routed_into = (progress or self.progress(event.id)).routed_into
        if routed_into:
            conversation = self.get(routed_into)
            assert conversation is not None
            return Threaded(conversation, opened=False, duplicate=True)

        at = event.occurred_at
        thread_pk = f"THREAD#{event.tenant}#{event.conversation_key}" if event.conversation_key else None
        active_pk = f"ACTIVE#{event.tenant}#{contact_id}" if contact_id else None
        by_thread = self._by_thread(thread_pk)
        conversation_id = by_thread or self._active(active_pk, at)
        if conversation_id is None:
            opened = self._open(event, contact_id, thread_pk, active_pk, at)  # claims the thread
            if isinstance(opened, Conversation):  # written with the event counted in, pointers claimed
                return Threaded(opened, opened=True, duplicate=False)
            conversation_id = opened  # a concurrent event opened it first
        elif thread_pk and by_thread is None:  # found through the contact: the thread leads there from now on
            self._claim(thread_pk, conversation_id)
        conversation = self._attach(conversation_id, event, at)
        if active_pk:
            self._touch_active(active_pk, conversation_id, conversation.last_activity_at)
        return Threaded(conversation, opened=False, duplicate=False)

    def save_outcome(self, event_id: str, conversation_id: str, events: list[CanonicalEvent]) -> None:
        self._table.put_item(
            Item={
                "pk": f"OUTCOME#{event_id}",
                "conversation_id": conversation_id,
                "events": "[" + ",".join(e.model_dump_json() for e in events) + "]",
            }
        )

    def progress(self, event_id: str) -> RoutingProgress:
        """How far routing `event_id` got: its routed mark and its saved outcome, in one
        consistent read of both."""
        keys = [{"pk": f"EVENT#{event_id}"}, {"pk": f"OUTCOME#{event_id}"}]
        found = {item["pk"]: item for item in batch_get(self._table, keys, consistent=True)}
        routed, outcome = found.get(f"EVENT#{event_id}"), found.get(f"OUTCOME#{event_id}")
        saved = None
        if outcome is not None and routed is None:
            from pydantic import TypeAdapter

            events = TypeAdapter(list[CanonicalEvent]).validate_json(outcome["events"])
            saved = SavedOutcome(conversation_id=outcome["conversation_id"], events=events)
        return RoutingProgress(routed_into=routed["conversation_id"] if routed else None, saved_outcome=saved)

    def mark_routed(self, event_id: str, conversation_id: str, now: datetime) -> None:
        """The last step of routing an event: from now on its redelivery is a no-op."""
        self._table.put_item(
            Item={"pk": f"EVENT#{event_id}", "conversation_id": conversation_id, "routed_at": now.isoformat()}
        )

    def record_routing(
        self,
        conversation_id: str,
        *,
        tenant: str,
        sensed: Sensed,
        decision: Decision | None,
        assignment: Assignment | None,
        sla_due_at: datetime | None,
        touched_topics: Collection[str] = (),
    ) -> None:
        """Write what sensing and routing found onto the conversation. `touched_topics`: the
        topics whose listing threading has just moved to the conversation's last activity (the
        conversation's, as `thread` answered it), not written again."""
        sets = [
            "sentiment_trend = list_append(if_not_exists(sentiment_trend, :empty), :sentiment)",
            "urgency = :urgency",
        ]
        values: dict[str, Any] = {
            ":empty": [],
            ":sentiment": [Decimal(str(sensed.sentiment))],
            ":urgency": sensed.urgency_level,
        }
        names: dict[str, str] = {}
        adds = []
        if sensed.topics:
            adds.append("topics :topics")
            values[":topics"] = set(sensed.topics)
        if decision is not None:
            sets.append("last_decision = :decision")
            values[":decision"] = decision.reason
            if decision.tags:
                adds.append("tags :tags")
                values[":tags"] = set(decision.tags)
        if assignment is not None:
            sets += ["queue = :queue", "priority = :priority"]
            values |= {":queue": assignment.team, ":priority": assignment.priority}
            if assignment.responder_id:
                keys = index_keys(
                    {"tenant": tenant, "status": Status.ASSIGNED.value, "assignee": assignment.responder_id}
                )
                sets += ["assignee = :assignee", "#status = :assigned", *(f"{name} = :{name}" for name in keys)]
                values |= {":assignee": assignment.responder_id, ":assigned": Status.ASSIGNED.value}
                values |= {f":{name}": value for name, value in keys.items()}
                names["#status"] = "status"
        expression = "SET " + ", ".join(sets) + (" ADD " + ", ".join(adds) if adds else "")
        kwargs: dict[str, Any] = {"ExpressionAttributeValues": values, "ReturnValues": "ALL_NEW"}
        if names:
            kwargs["ExpressionAttributeNames"] = names
        updated = self._table.update_item(Key={"pk": f"CONV#{conversation_id}"}, UpdateExpression=expression, **kwargs)
        for topic in sensed.topics:
            if topic not in touched_topics:
                self._touch_topic(conversation_id, tenant, topic, updated["Attributes"]["last_activity_at"])
        # The SLA starts once: its conditional write is skipped where the answer shows it started
        # or was met already (the condition would not hold).
        started = "sla_due_at" in updated["Attributes"] or "first_response_at" in updated["Attributes"]
        if sla_due_at is not None and not started:
            self._start_sla(conversation_id, sla_due_at)
        trend = len(updated["Attributes"].get("sentiment_trend", []))
        if trend >= 2 * SENTIMENT_TREND_KEPT:
            self._trim_trend(conversation_id, trend)

    def _trim_trend(self, conversation_id: str, length: int) -> None:
        """Drop the oldest values down to the last SENTIMENT_TREND_KEPT, if the list is still
        `length` long (a concurrent append or trim wins; a later event trims again)."""
        oldest = ", ".join(f"sentiment_trend[{index}]" for index in range(length - SENTIMENT_TREND_KEPT))
        conditional_write(
            self._table.update_item,
            Key={"pk": f"CONV#{conversation_id}"},
            UpdateExpression=f"REMOVE {oldest}",
            ConditionExpression="size(sentiment_trend) = :length",
            ExpressionAttributeValues={":length": length},
        )

    # --- SLA -----------------------------------------------------------------------------

    def _start_sla(self, conversation_id: str, due: datetime) -> None:
        """The first routed event sets the SLA; `sla_open` puts the conversation in the
        `by_sla` index (sparse) until someone answers, it is resolved or escalated."""
        self._conditional(
            conversation_id,
            "SET sla_due_at = :due, sla_open = :open",
            "attribute_not_exists(sla_due_at) AND attribute_not_exists(first_response_at)",
            {":due": due.isoformat(), ":open": "open"},
        )

    def record_response(self, conversation_id: str, at: datetime) -> None:
        """The business answered: the SLA is met and leaves the index."""
        self._table.update_item(
            Key={"pk": f"CONV#{conversation_id}"},
            UpdateExpression="SET first_response_at = if_not_exists(first_response_at, :at) REMOVE sla_open",
            ExpressionAttributeValues={":at": at.isoformat()},
        )

    def due_for_escalation(self, now: datetime, limit: int = 100) -> list[Conversation]:
        from boto3.dynamodb.conditions import Key

        page = self._table.query(
            IndexName="by_sla",
            Limit=limit,
            KeyConditionExpression=Key("sla_open").eq("open") & Key("sla_due_at").lte(now.isoformat()),
        )
        return [Conversation.model_validate(item) for item in page.get("Items", [])]

    def claim_escalation(self, conversation_id: str, now: datetime) -> bool:
        """Once per conversation: False if it was answered, resolved or claimed meanwhile. The
        conversation stays due (in `by_sla`) until `finish_escalation`, so a run whose publish
        failed leaves it for the next run instead of losing it."""
        return self._conditional(
            conversation_id,
            "SET escalated_at = :now",
            "attribute_exists(sla_open) AND attribute_not_exists(escalated_at)",
            {":now": now.isoformat()},
        )

    def finish_escalation(self, conversation_id: str, escalated_at: datetime) -> bool:
        """Its routing.escalated is on the bus: the conversation leaves the due index."""
        return self._conditional(
            conversation_id,
            "REMOVE sla_open",
            "escalated_at = :at",
            {":at": escalated_at.isoformat()},
        )

    def _conditional(self, conversation_id: str, expression: str, condition: str, values: dict[str, Any]) -> bool:
        return conditional_write(
            self._table.update_item,
            Key={"pk": f"CONV#{conversation_id}"},
            UpdateExpression=expression,
            ConditionExpression=condition,
            ExpressionAttributeValues=values,
        )

    def find(self, event: CanonicalEvent, contact_id: str | None) -> str | None:
        """The conversation an event belongs to, without opening one (for the business's replies)."""
        thread_pk = f"THREAD#{event.tenant}#{event.conversation_key}" if event.conversation_key else None
        active_pk = f"ACTIVE#{event.tenant}#{contact_id}" if contact_id else None
        return self._by_thread(thread_pk) or self._active(active_pk, event.occurred_at)

    def threaded_into(self, tenant: str, conversation_key: str) -> str | None:
        """The conversation a thread key (an event's `conversation_key`) was threaded into, if any yet."""
        return self._by_thread(f"THREAD#{tenant}#{conversation_key}")

    def for_tenant(
        self,
        tenant: str,
        *,
        status: str | None = None,
        assignee: str | None = None,
        topic: str | None = None,
        limit: int = 25,
        cursor: dict[str, str] | None = None,
    ) -> tuple[list[Conversation], dict[str, str] | None]:
        """A tenant's conversations, most recently active first, filtered. A topic, an assignee or a
        status is an index of its own (`list_index`), so those listings read only what they return;
        a status or an assignee asked for with a topic filters the topic's conversations."""
        from boto3.dynamodb.conditions import Key

        if topic:
            return self._for_topic(tenant, topic, status, assignee, limit, cursor)
        index, attribute = list_index(status, assignee)
        partition = "#".join(part for part in (tenant, assignee, status) if part)
        kwargs: dict[str, Any] = {
            "IndexName": index,
            "ScanIndexForward": False,
            "KeyConditionExpression": Key(attribute or "tenant").eq(partition),
            "Limit": limit,
        }
        if cursor:
            kwargs["ExclusiveStartKey"] = cursor
        found: list[Conversation] = []
        while True:  # every item matches: ask for what is still missing, not a 1 MB page
            kwargs["Limit"] = limit - len(found)
            page = self._table.query(**kwargs)
            for item in page.get("Items", []):
                found.append(Conversation.model_validate(item))
                if len(found) == limit:
                    key = attribute or "tenant"
                    return found, {"pk": item["pk"], key: item[key], "last_activity_at": item["last_activity_at"]}
            if "LastEvaluatedKey" not in page:
                return found, None
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _for_topic(
        self,
        tenant: str,
        topic: str,
        status: str | None,
        assignee: str | None,
        limit: int,
        cursor: dict[str, str] | None,
    ) -> tuple[list[Conversation], dict[str, str] | None]:
        """The topic's memberships newest first, each conversation read in one batch per page."""
        from boto3.dynamodb.conditions import Key

        kwargs: dict[str, Any] = {
            "IndexName": "by_tenant_topic",
            "ScanIndexForward": False,
            "KeyConditionExpression": Key("tenant_topic").eq(f"{tenant}#{topic}"),
        }
        if cursor:
            kwargs["ExclusiveStartKey"] = cursor
        found: list[Conversation] = []
        while True:
            # Without other filters every membership is one answer: read only what is missing.
            kwargs["Limit"] = limit - len(found) if not (status or assignee) else max(limit, 25)
            page = self._table.query(**kwargs)
            memberships = page.get("Items", [])
            conversations = self._batch_get([m["conversation_id"] for m in memberships])
            for membership in memberships:
                conversation = conversations.get(membership["conversation_id"])
                if conversation is None or conversation.tenant != tenant:
                    continue
                if (status and conversation.status.value != status) or (assignee and conversation.assignee != assignee):
                    continue
                found.append(conversation)
                if len(found) == limit:
                    return found, {key: membership[key] for key in ("pk", "tenant_topic", "last_activity_at")}
            if "LastEvaluatedKey" not in page:
                return found, None
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _batch_get(self, conversation_ids: list[str]) -> dict[str, Conversation]:
        keys = [{"pk": f"CONV#{id_}"} for id_ in dict.fromkeys(conversation_ids)]
        return {item["id"]: Conversation.model_validate(item) for item in batch_get(self._table, keys)}

    def set_status(self, conversation: Conversation, status: Status, assignee: str | None = None) -> None:
        """Move `conversation` to `status`, and to `assignee` when one is given (else it keeps its own)."""
        keys = index_keys(
            {"tenant": conversation.tenant, "status": status.value, "assignee": assignee or conversation.assignee}
        )
        values: dict[str, Any] = {":status": status.value} | {f":{name}": value for name, value in keys.items()}
        expression = "SET #status = :status, " + ", ".join(f"{name} = :{name}" for name in keys)
        if assignee is not None:
            expression += ", assignee = :assignee"
            values[":assignee"] = assignee
        if status is Status.RESOLVED:
            expression += " REMOVE sla_open"  # a resolved conversation cannot breach its SLA
        self._table.update_item(
            Key={"pk": f"CONV#{conversation.id}"},
            UpdateExpression=expression,
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=values,
        )

    # --- internals ---------------------------------------------------------------------

    def _get(self, pk: str) -> dict[str, Any] | None:
        return self._table.get_item(Key={"pk": pk}, ConsistentRead=True).get("Item")

    def _by_thread(self, thread_pk: str | None) -> str | None:
        item = self._get(thread_pk) if thread_pk else None
        return item["conversation_id"] if item else None

    def _active(self, active_pk: str | None, at: datetime) -> str | None:
        item = self._get(active_pk) if active_pk else None
        if not item or datetime.fromisoformat(item["last_activity_at"]) < at - self._window:
            return None
        conversation = self.get(item["conversation_id"])
        return conversation.id if conversation and conversation.status is not Status.RESOLVED else None

    def _open(
        self, event: CanonicalEvent, contact_id: str | None, thread_pk: str | None, active_pk: str | None, at: datetime
    ) -> Conversation | str:
        """Write a new conversation with `event` counted in, then claim the pointers that lead
        to it: the conversation when they are ours. Losing a claim to a concurrent event means
        that event's conversation is ours too: the draft is deleted and the winner's id is
        returned, for the event to be attached to it."""
        draft = Conversation(
            id="cv_" + secrets.token_hex(8),
            tenant=event.tenant,
            contact_id=contact_id,
            opened_at=at,
            last_activity_at=at,
            connection=event.connection,
            channels=[event.channel.value],
            providers=[event.provider],
            thread_keys=[event.conversation_key] if event.conversation_key else [],
            event_count=1,
            last_event_id=event.id,
        )
        # String sets, as `_attach` ADDs to them; those still empty are left out (DynamoDB has
        # no empty sets: ADD creates them).
        sets = {"channels", "providers", "thread_keys", "topics", "tags"}
        item = draft.model_dump(mode="json", exclude_none=True, exclude=sets | {"sentiment_trend"})
        item |= {name: set(values) for name in sets if (values := getattr(draft, name))}
        self._table.put_item(Item=item | index_keys(item) | {"pk": f"CONV#{draft.id}"})
        winner = draft.id
        if thread_pk:
            winner = self._claim(thread_pk, draft.id)
        if active_pk and winner == draft.id:
            winner = self._claim_active(active_pk, draft.id, at)
        if winner != draft.id:
            self._table.delete_item(Key={"pk": f"CONV#{draft.id}"})
            return winner
        return draft

    def _claim(self, pk: str, conversation_id: str) -> str:
        """Point `pk` at the conversation unless it already points somewhere; return the target."""
        if conditional_write(
            self._table.put_item,
            Item={"pk": pk, "conversation_id": conversation_id},
            ConditionExpression="attribute_not_exists(pk)",
        ):
            return conversation_id
        item = self._get(pk)
        assert item is not None
        return item["conversation_id"]

    def _claim_active(self, active_pk: str, conversation_id: str, at: datetime) -> str:
        """Become the contact's active conversation unless a live one exists already."""
        if conditional_write(
            self._table.put_item,
            Item={"pk": active_pk, "conversation_id": conversation_id, "last_activity_at": at.isoformat()},
            ConditionExpression="attribute_not_exists(pk) OR last_activity_at < :stale",
            ExpressionAttributeValues={":stale": (at - self._window).isoformat()},
        ):
            return conversation_id
        live = self._active(active_pk, at)
        if live is None:  # the live pointer leads to a resolved conversation: replace it
            self._table.put_item(
                Item={"pk": active_pk, "conversation_id": conversation_id, "last_activity_at": at.isoformat()}
            )
            return conversation_id
        return live

    def _attach(self, conversation_id: str, event: CanonicalEvent, at: datetime) -> Conversation:
        """Count the event in; channels, providers and thread keys are string sets, so
        concurrent attaches union atomically (ADD) instead of overwriting each other. One write
        in the usual case, the event being the latest, and it answers with the conversation."""
        additions = {":channel": {event.channel.value}, ":provider": {event.provider}}
        expression = "ADD event_count :one, channels :channel, providers :provider"
        if event.conversation_key:
            additions[":key"] = {event.conversation_key}
            expression += ", thread_keys :key"
        values = {":one": 1, ":event": event.id, **additions}
        key = {"pk": f"CONV#{conversation_id}"}
        answer = conditional_answer(
            self._table.update_item,
            Key=key,
            UpdateExpression=expression + " SET last_event_id = :event, last_activity_at = :at",
            ConditionExpression="last_activity_at <= :at",  # a tie too: the later routed is the last
            ExpressionAttributeValues={**values, ":at": at.isoformat()},
            ReturnValues="ALL_NEW",
        )
        if answer is None:  # events arrive out of order: an earlier one does not move last activity back
            answer = self._table.update_item(
                Key=key,
                UpdateExpression=expression + " SET last_event_id = :event",
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        item = answer["Attributes"]
        conversation = Conversation.model_validate(item)
        for topic in conversation.topics:  # the listing by topic follows the last activity too
            self._touch_topic(conversation_id, conversation.tenant, topic, conversation.last_activity_at.isoformat())
        return conversation

    def _touch_topic(self, conversation_id: str, tenant: str, topic: str, last_activity_at: str) -> None:
        """Create or move forward the conversation's membership of `topic` (never back: events
        arrive out of order)."""
        membership = topic_membership(conversation_id, tenant, topic, last_activity_at)
        conditional_write(
            self._table.put_item,
            Item=membership,
            ConditionExpression="attribute_not_exists(pk) OR last_activity_at < :at",
            ExpressionAttributeValues={":at": last_activity_at},
        )

    def _touch_active(self, active_pk: str, conversation_id: str, last_activity: datetime) -> None:
        conditional_write(
            self._table.update_item,
            Key={"pk": active_pk},
            UpdateExpression="SET last_activity_at = :last",
            ConditionExpression="conversation_id = :conversation AND last_activity_at < :last",
            ExpressionAttributeValues={":last": last_activity.isoformat(), ":conversation": conversation_id},
        )
