"""Tenant isolation over every route of the admin API's OpenAPI document (docs/openapi.json).

Tenant B ("globex") gets one object of every kind a route names by id: a connection (with
outbound credentials), a contact with a merge, a conversation with an answer, a subscription
(an admin's and a partner's) with a delivery, a campaign (published, shared, with a run), a
team, a responder, a rule set, a taxonomy and logged events. Then each route is called with
tenant A's ("acme") keys, admin, staff and partner, on B's ids, with a body that validates (so
the request reaches the lookup, not the validator):

- the answer is 404, or a 403 for a role the route refuses whatever the id: in both cases
  exactly what the same key gets for an id that never existed, so the answer tells nothing
  about B's object (never a 200, a 409 or a 5xx);
- afterwards every item, secret, rule and queued message of B's world is as it was.

Routes are read from the document, so a new route is covered or fails the test: a path
parameter, query parameter or body the tables below do not know is a failure naming it.
Routes without an id are tenant-scoped by construction (listed in TENANT_SCOPED): called
with A's keys they never answer with any of B's ids, and naming B as `?tenant=` (or in a
body's `tenant`) is refused exactly as naming a tenant that does not exist.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from switchboard_core import aws
from switchboard_core.event_log import EventLogStore
from switchboard_core.events import CanonicalEvent, Channel, Contact, EventDraft
from switchboard_core.routing.contacts import ContactStore, Identity
from switchboard_core.routing.conversations import ConversationStore
from tests.unit.admin.conftest import admin_event
from tests.unit.admin.test_campaign_runs_api import MENTIONS
from tests.unit.admin.test_campaigns_api import FLOW
from tests.unit.admin.test_subscriptions import HOOK, RECEIVED, put_attempt, put_delivery

DOCUMENT = json.loads((Path(__file__).resolve().parents[3] / "docs" / "openapi.json").read_text())
OPERATIONS = sorted(
    (path, method.upper())
    for path, operations in DOCUMENT["paths"].items()
    for method in operations
    if method in ("get", "put", "post", "patch", "delete")
)

A, B = "acme", "globex"
A_KEYS = {
    "admin": {"key_id": "ka1", "tenant": A, "name": "ops", "role": "admin"},
    "staff": {"key_id": "ka2", "tenant": A, "name": "agent", "role": "staff"},
    "partner": {"key_id": "ka3", "tenant": A, "name": "crm", "role": "partner"},
}
B_ADMIN = {"key_id": "kb1", "tenant": B, "name": "ops", "role": "admin"}
B_PARTNER = {"key_id": "kb3", "tenant": B, "name": "crm", "role": "partner"}
B_PHONE, B_OTHER_PHONE, BUSINESS = "+14155550161", "+14155550162", "+14155550100"
TWILIO_TOKEN = "b" * 32
OUTBOUND = {"account_sid": "AC" + "2" * 32, "auth_token": "o" * 32}

# Path parameters: which of B's objects each names. A parameter missing here fails the test.
PATH_IDS = {
    "connection_id": "connection",
    "contact_id": "contact",
    "merge_id": "merge",
    "conversation_id": "conversation",
    "message_id": "message",
    "subscription_id": "subscription",
    "event_id": "event",
    "campaign_id": "campaign",
    "name": "team",
    "responder_id": "responder",
}
# Query parameters that name an object (tenant is checked separately; the rest are filters).
QUERY_IDS = {"connection": "connection", "event_id": "event"}
FILTER_QUERIES = {
    "limit",
    "cursor",
    "provider",
    "type",
    "since",
    "status",
    "assignee",
    "topic",
    "version",
    "from",
    "to",
    "days",
}
REQUIRED_QUERIES = {("/admin/campaigns/{campaign_id}/diff", "GET"): {"from": "1", "to": "1"}}
# Teams and responders are named within their tenant: A's key naming B's team or responder
# names A's own (a PUT makes one of A's; a DELETE of a name A has not used is a 404).
NAMED_IN_OWN_TENANT = {"name", "responder_id"}

NOW = datetime.now(UTC).replace(microsecond=0)
RULES = {"rules": [{"name": "all", "then": {"kind": "assign", "team": "support"}}], "default_team": "support"}
# A body that validates for each route that takes one, so the request reaches the lookup.
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("/admin/connections", "POST"): {"provider": "twilio", "credentials": {"auth_token": "c" * 32}},
    ("/admin/connections/{connection_id}/rotate", "POST"): {"credentials": {"auth_token": "d" * 32}},
    ("/admin/connections/{connection_id}/outbound", "PUT"): {"credentials": OUTBOUND},
    ("/admin/responders/{responder_id}", "PUT"): {"name": "Robin", "teams": ["support"]},
    ("/admin/teams/{name}", "PUT"): {"description": "first line"},
    ("/admin/conversations/{conversation_id}/messages", "POST"): {"text": "hello from acme"},
    ("/admin/conversations/{conversation_id}/status", "POST"): {"status": "resolved"},
    ("/admin/subscriptions", "POST"): {"url": HOOK, "event_pattern": RECEIVED},
    ("/admin/subscriptions/{subscription_id}", "PATCH"): {"description": "taken over"},
    ("/admin/subscriptions/{subscription_id}/replay", "POST"): {
        "since": (NOW - timedelta(days=1)).isoformat(),
        "until": NOW.isoformat(),
    },
    ("/admin/campaigns", "POST"): {"name": "acme's", "flow": FLOW},
    ("/admin/campaigns/validate", "POST"): {"flow": FLOW},
    ("/admin/campaigns/{campaign_id}", "PUT"): {"flow": FLOW, "expected_version": 1},
    ("/admin/campaigns/{campaign_id}/fork", "POST"): {"version": 1},
    ("/admin/campaigns/{campaign_id}/publish", "POST"): {"version": 1},
    ("/admin/campaigns/{campaign_id}/runs", "POST"): {"contacts": [B_PHONE]},
    ("/admin/campaigns/{campaign_id}/shares", "POST"): {"principal": "ka2", "access": "editor"},
    ("/admin/routing/rules", "PUT"): {"rule_set": RULES},
    ("/admin/routing/simulate", "POST"): {"rule_set": RULES},
    ("/admin/routing/taxonomy", "PUT"): {"topics": []},
}
# Routes with no id in their path: what they act on is the key's own tenant (or the one named
# by ?tenant= or a body's tenant, which A's keys may name only as their own).
TENANT_SCOPED = {
    ("/admin/campaigns", "GET"),
    ("/admin/campaigns", "POST"),
    ("/admin/campaigns/validate", "POST"),
    ("/admin/connections", "GET"),
    ("/admin/connections", "POST"),
    ("/admin/conversations", "GET"),
    ("/admin/events", "GET"),
    ("/admin/openapi.json", "GET"),
    ("/admin/providers", "GET"),
    ("/admin/responders", "GET"),
    ("/admin/routing/rules", "GET"),
    ("/admin/routing/rules", "PUT"),
    ("/admin/routing/simulate", "POST"),
    ("/admin/routing/taxonomy", "GET"),
    ("/admin/routing/taxonomy", "PUT"),
    ("/admin/subscriptions", "GET"),
    ("/admin/subscriptions", "POST"),
    ("/admin/teams", "GET"),
    ("/admin/whoami", "GET"),
}
# Campaigns may be shared with a key of another tenant (docs/campaigns.md): listing tenant B's
# campaigns with A's key answers those shared with it (here none), as for a tenant never made.
SHARED_ACROSS_TENANTS = {("/admin/campaigns", "GET")}


def path_parameters(path: str) -> list[str]:
    return re.findall(r"\{(\w+)\}", path)


def query_parameters(path: str, method: str) -> list[str]:
    operation = DOCUMENT["paths"][path][method.lower()]
    return [p["name"] for p in operation.get("parameters", []) if p["in"] == "query"]


def takes_body(path: str, method: str) -> bool:
    return "requestBody" in DOCUMENT["paths"][path][method.lower()]


# --- the document is covered: a new route, parameter or body fails here ----------------------


def test_every_route_is_known_to_the_isolation_test():
    unknown = []
    for path, method in OPERATIONS:
        ids = path_parameters(path)
        if not ids and (path, method) not in TENANT_SCOPED:
            unknown.append(f"{method} {path}: no id in its path; list it in TENANT_SCOPED if it is tenant-scoped")
        unknown += [f"{method} {path}: path parameter {{{p}}} not in PATH_IDS" for p in ids if p not in PATH_IDS]
        unknown += [
            f"{method} {path}: query parameter {q!r} is neither an id, a filter nor tenant"
            for q in query_parameters(path, method)
            if q not in QUERY_IDS and q not in FILTER_QUERIES and q != "tenant"
        ]
        if takes_body(path, method) and (path, method) not in BODIES:
            unknown.append(f"{method} {path}: takes a body, none in BODIES")
    assert not unknown, "\n".join(unknown)
    assert not TENANT_SCOPED - set(OPERATIONS), TENANT_SCOPED - set(OPERATIONS)
    assert not set(BODIES) - set(OPERATIONS), set(BODIES) - set(OPERATIONS)


# --- tenant B's world --------------------------------------------------------------------------


@dataclass
class World:
    ids: dict[str, str] = field(default_factory=dict)


def call(admin, method: str, path: str, principal: dict, body: Any = None, query: dict | None = None):
    text = json.dumps(body) if body is not None else None
    return admin(admin_event(method, path, body=text, query=query, principal=principal))


def made(answer, status: int) -> dict[str, Any]:
    got, _, body = answer
    assert got == status, body
    return body or {}


def customer_sms(tenant: str, connection: str, phone: str, text: str, at: datetime) -> CanonicalEvent:
    sid = f"SM{abs(hash((phone, text))):032x}"[:34]
    return CanonicalEvent.from_draft(
        EventDraft(
            type="message.received",
            provider_event_id=sid,
            occurred_at=at,
            contact=Contact(phone=phone),
            text=text,
            attributes={"From": phone, "To": BUSINESS, "MessageSid": sid, "Body": text},
        ),
        provider="twilio",
        connection=connection,
        tenant=tenant,
        channel=Channel.TELEPHONY,
        received_at=at,
        raw_ref=None,
    )


def tenant_b(admin, aws_world) -> World:
    """One of every kind of object, all tenant B's, made as B's keys and B's functions make them."""
    world = World()
    names = aws_world.names
    dynamodb = aws.resource("dynamodb")
    connection = made(
        call(
            admin,
            "POST",
            "/admin/connections",
            B_ADMIN,
            {"provider": "twilio", "credentials": {"auth_token": TWILIO_TOKEN}},
        ),
        201,
    )["id"]
    made(call(admin, "PUT", f"/admin/connections/{connection}/outbound", B_ADMIN, {"credentials": OUTBOUND}), 200)
    world.ids["connection"] = connection

    # What routing makes of two customers' messages: contacts, a conversation, the event log.
    contacts = ContactStore(dynamodb.Table(names.table("contacts")))
    conversations = ConversationStore(dynamodb.Table(names.table("conversations")))
    event_log = EventLogStore(dynamodb.Table(names.table("event_log")), ttl=timedelta(days=30))
    first = customer_sms(B, connection, B_PHONE, "my order is late", NOW - timedelta(minutes=5))
    second = customer_sms(B, connection, B_OTHER_PHONE, "me too", NOW - timedelta(minutes=4))
    contact = contacts.resolve(B, [Identity(kind="phone", value=B_PHONE)], reason=first.id, now=first.received_at)
    other = contacts.resolve(B, [Identity(kind="phone", value=B_OTHER_PHONE)], reason=second.id, now=NOW)
    assert contact is not None and other is not None
    threaded = conversations.thread(first, contact.id, first.received_at)
    contacts.add_to_timeline(
        contact.id,
        {
            "type": first.type,
            "provider": first.provider,
            "channel": first.channel.value,
            "occurred_at": first.received_at.isoformat(),
            "conversation": threaded.conversation.id,
            "text": first.text,
        },
        first.id,
        first.received_at,
    )
    for event in (first, second):
        event_log.put(event)
    merge = contacts.merge(B, survivor=contact.id, merged=other.id, reason="same person", now=NOW)
    world.ids |= {
        "contact": contact.id,
        "merge": merge.id,
        "conversation": threaded.conversation.id,
        "event": first.id,
    }
    world.ids["message"] = made(
        call(admin, "POST", f"/admin/conversations/{threaded.conversation.id}/messages", B_ADMIN, {"text": "on it"}),
        202,
    )["message_id"]

    subscription = made(
        call(admin, "POST", "/admin/subscriptions", B_ADMIN, {"url": HOOK, "event_pattern": RECEIVED}), 201
    )
    partners = made(
        call(admin, "POST", "/admin/subscriptions", B_PARTNER, {"url": HOOK, "event_pattern": RECEIVED}), 201
    )
    for sub in (subscription["id"], partners["id"]):
        put_delivery(aws_world, sub, first, "failed")
        put_attempt(aws_world, sub, first.id, NOW - timedelta(minutes=3), 1)
    world.ids["subscription"] = subscription["id"]
    world.ids["partner_subscription"] = partners["id"]

    campaign = made(
        call(admin, "POST", "/admin/campaigns", B_ADMIN, {"name": "globex's", "flow": FLOW, "trigger": MENTIONS}), 201
    )["id"]
    made(call(admin, "POST", f"/admin/campaigns/{campaign}/publish", B_ADMIN, {"version": 1}), 200)
    made(
        call(admin, "POST", f"/admin/campaigns/{campaign}/shares", B_ADMIN, {"principal": "kb2", "access": "viewer"}),
        200,
    )
    made(call(admin, "POST", f"/admin/campaigns/{campaign}/runs", B_ADMIN, {"contacts": [contact.id]}), 202)
    world.ids["campaign"] = campaign

    made(call(admin, "PUT", "/admin/teams/support", B_ADMIN, {"description": "globex's support"}), 200)
    made(call(admin, "PUT", "/admin/responders/robin", B_ADMIN, {"name": "Robin B", "teams": ["support"]}), 200)
    world.ids |= {"team": "support", "responder": "robin"}
    made(call(admin, "PUT", "/admin/routing/rules", B_ADMIN, {"rule_set": RULES}), 200)
    made(call(admin, "PUT", "/admin/routing/taxonomy", B_ADMIN, {"topics": []}), 200)
    return world


def never_made(kind: str, real: str) -> str:
    """An id of the same shape as `real` that names nothing."""
    if kind in ("team", "responder"):
        return real + "-none"
    prefix, _, rest = real.partition("_")
    return f"{prefix}_{'0' * len(rest)}" if rest else "0" * len(real)


# --- what B's world holds, to show it unchanged -----------------------------------------------


def snapshot(aws_world) -> dict[str, Any]:
    """Every DynamoDB item, secret value, bus rule and queue depth."""
    dynamodb, client = aws.resource("dynamodb"), aws.client("dynamodb")
    items = {}
    for table in client.list_tables()["TableNames"]:
        scanned = dynamodb.Table(table).scan()
        items[table] = sorted(json.dumps(item, sort_keys=True, default=str) for item in scanned["Items"])
    secrets_client = aws.client("secretsmanager")
    secrets = {
        s["Name"]: secrets_client.get_secret_value(SecretId=s["ARN"])["SecretString"]
        for s in secrets_client.list_secrets()["SecretList"]
    }
    events = aws.client("events")
    rules = {
        rule["Name"]: (rule.get("EventPattern"), rule.get("State"))
        for rule in events.list_rules(EventBusName=aws_world.names.bus)["Rules"]
    }
    sqs = aws.client("sqs")
    depths = {
        url: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"][
            "ApproximateNumberOfMessages"
        ]
        for url in sqs.list_queues().get("QueueUrls", [])
    }
    return {"items": items, "secrets": secrets, "rules": rules, "queues": depths}


def changes_to(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """What of `before` (all of it B's) is gone or changed; what was added that names B."""
    found = []
    for table, items in before["items"].items():
        kept = set(after["items"].get(table, []))
        found += [f"{table}: changed or removed {item}" for item in items if item not in kept]
        added = set(after["items"].get(table, [])) - set(items)
        found += [f"{table}: added {item}" for item in added if B in item]
    for kind in ("secrets", "rules", "queues"):
        found += [
            f"{kind}: {name} changed or removed"
            for name, value in before[kind].items()
            if after[kind].get(name) != value
        ]
    found += [f"secrets: added {name}" for name in set(after["secrets"]) - set(before["secrets"]) if B in name]
    return found


# --- every route with an id, every kind of A's key ----------------------------------------------


def route_path(path: str, ids: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: quote(ids[m.group(1)], safe=""), path)


def answer_shape(answer) -> tuple[int, str | None]:
    status, _, body = answer
    return status, (body or {}).get("error", {}).get("code")


def test_a_key_of_tenant_a_gets_404_for_every_object_of_tenant_b(admin, aws_world):
    world = tenant_b(admin, aws_world)
    before = snapshot(aws_world)
    failures, answered = [], {}
    for path, method in OPERATIONS:
        parameters = path_parameters(path)
        if not parameters:
            continue
        for role, key in A_KEYS.items():
            subscription = "partner_subscription" if role == "partner" else "subscription"
            for_b = {p: world.ids[subscription if PATH_IDS[p] == "subscription" else PATH_IDS[p]] for p in parameters}
            for_nothing = {p: never_made(PATH_IDS[p], value) for p, value in for_b.items()}
            body = BODIES.get((path, method))
            query = REQUIRED_QUERIES.get((path, method))
            got = call(admin, method, route_path(path, for_b), key, body, query)
            baseline = call(admin, method, route_path(path, for_nothing), key, body, query)
            where = f"{role} {method} {route_path(path, for_b)}"
            answered[(role, method, path)] = answer_shape(got)
            named_here = set(parameters) <= NAMED_IN_OWN_TENANT
            if named_here and method == "PUT":
                # Makes (or replaces) A's own team or responder of that name.
                if answer_shape(got)[0] not in (200, 403):
                    failures.append(f"{where}: {got[0]} {got[2]}")
                continue
            if answer_shape(got) != answer_shape(baseline):
                failures.append(
                    f"{where}: {answer_shape(got)} but {answer_shape(baseline)} for an id that never existed"
                )
            if got[0] not in (403, 404) or (role == "admin" and got[0] != 404):
                failures.append(f"{where}: {got[0]} {got[2]}")
            elif got[0] == 403 and any(value in json.dumps(got[2]) for value in for_b.values()):
                failures.append(f"{where}: a refusal naming B's object {got[2]}")
    assert not failures, "\n".join(failures)
    id_routes = [(p, m) for p, m in OPERATIONS if path_parameters(p)]
    assert len(answered) == 3 * len(id_routes) and len(id_routes) >= 30, answered
    assert not changes_to(before, snapshot(aws_world)), "\n".join(changes_to(before, snapshot(aws_world)))


def test_query_ids_of_tenant_b_answer_as_ids_that_never_existed(admin, aws_world):
    world = tenant_b(admin, aws_world)
    failures = []
    for path, method in OPERATIONS:
        for name in query_parameters(path, method):
            if name not in QUERY_IDS:
                continue
            for role, key in A_KEYS.items():
                ids = {p: world.ids[PATH_IDS[p]] for p in path_parameters(path)}
                real = world.ids[QUERY_IDS[name]]
                got = call(admin, method, route_path(path, ids), key, query={name: real})
                baseline = call(admin, method, route_path(path, ids), key, query={name: never_made(name, real)})
                if answer_shape(got) != answer_shape(baseline) or got[0] in (200, 409) or got[0] >= 500:
                    failures.append(f"{role} {method} {path}?{name}=B's: {got[0]} {got[2]} vs {baseline[0]}")
    assert not failures, "\n".join(failures)


def test_tenant_scoped_routes_never_answer_with_tenant_bs_objects(admin, aws_world):
    world = tenant_b(admin, aws_world)
    before = snapshot(aws_world)
    b_ids = {v for k, v in world.ids.items() if k not in ("team", "responder")}
    failures = []
    for path, method in sorted(TENANT_SCOPED):
        body = BODIES.get((path, method))
        for role, key in A_KEYS.items():
            where = f"{role} {method} {path}"
            status, _, answer = call(admin, method, path, key, body)
            text = json.dumps(answer)
            if status >= 500 or any(value in text for value in b_ids) or "globex" in text:
                failures.append(f"{where}: {status} {text[:300]}")
            if "tenant" in query_parameters(path, method):
                named_b = call(admin, method, path, key, body, {"tenant": B})
                named_none = call(admin, method, path, key, body, {"tenant": "nobody-at-all"})
                if not refused_alike(named_b, named_none, (path, method)):
                    failures.append(f"{where}?tenant={B}: {named_b[0]} {named_b[2]} vs {named_none[0]} {named_none[2]}")
            if body is not None and "tenant" in body_properties(path, method):
                named_b = call(admin, method, path, key, body | {"tenant": B})
                named_none = call(admin, method, path, key, body | {"tenant": "nobody-at-all"})
                if not refused_alike(named_b, named_none, (path, method)):
                    failures.append(
                        f"{where} body tenant {B}: {named_b[0]} {named_b[2]} vs {named_none[0]} {named_none[2]}"
                    )
    assert not failures, "\n".join(failures)
    # A's writes made A's rule set, taxonomy, connection, subscription and campaign; none of B's moved.
    assert not changes_to(before, snapshot(aws_world)), "\n".join(changes_to(before, snapshot(aws_world)))


def body_properties(path: str, method: str) -> dict[str, Any]:
    content = DOCUMENT["paths"][path][method.lower()]["requestBody"]["content"]
    reference = next(iter(content.values()))["schema"].get("$ref", "")
    return DOCUMENT["components"]["schemas"][reference.rsplit("/", 1)[-1]].get("properties", {})


def refused_alike(named_b, named_none, route: tuple[str, str]) -> bool:
    """Naming B is refused (403) as naming a tenant that does not exist is; or, for a listing of
    what is shared across tenants, answered exactly as for a tenant that does not exist."""
    if route in SHARED_ACROSS_TENANTS and named_b[0] == 200:
        return named_b[2] == named_none[2]
    return named_b[0] == 403 and answer_shape(named_b) == answer_shape(named_none)
