"""The whole hub on one machine: emulator + resources + gateway + dispatcher + demo seed.

Everything the hub holds outlives a restart, a kill included, under the state directory
(`.switchboard/` by default): the admin key, the demo connections' ids and credentials,
where the running hub listens, and the emulator's whole state (a snapshot plus a journal
of the webhooks acknowledged since, infra/local/persistence.py). `fresh=True`
(`switchboard dev --fresh`) forgets the emulator's state first.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infra import topology
from infra.local.emulator import Emulator, LocalNames, create_resources
from infra.local.lambdas import delivery_policy_from_environment, delivery_policy_value
from infra.local.persistence import Lanes, PersistentState
from infra.local.workers import WorkerFunctions
from switchboard_core.principals import KEY_PREFIX

if TYPE_CHECKING:
    from switchboard_core.routing.assignment import Responder, Team
    from switchboard_core.routing.rules import RuleSet
    from switchboard_core.routing.sensing import Taxonomy

MAX_KEY_CHARS = 200  # ApiKeyStore.authenticate refuses longer keys without a lookup

DEMO_TENANT = "demo"
LOCAL_STAGE = "local"
# The sample routing set-up the demo tenant starts with (docs/examples/README.md explains it).
EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "docs" / "examples"


@dataclass
class StateDir:
    path: Path

    @property
    def admin_key_file(self) -> Path:
        return self.path / "admin-key"

    @property
    def demo_file(self) -> Path:
        return self.path / "demo.json"

    @property
    def runtime_file(self) -> Path:
        return self.path / "runtime.json"

    def write_private(self, file: Path, text: str) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        file.touch(mode=0o600, exist_ok=True)
        file.write_text(text)

    def read_json(self, file: Path) -> dict[str, Any]:
        return json.loads(file.read_text()) if file.exists() else {}


class AdminKeyRefused(ValueError):
    """The admin key chosen for the local hub is one the authorizer would refuse."""


class InvalidExample(ValueError):
    """A file of the demo's sample routing set-up (docs/examples/) does not validate."""


# What the authorizer accepts (ApiKeyStore.authenticate), plus what an HTTP header can carry.
KEY_SHAPE = (
    f"must start with '{KEY_PREFIX}' and hold only letters, digits, '_' and '-', "
    f"at most {MAX_KEY_CHARS} characters (e.g. {KEY_PREFIX}local_dev_key_1)"
)


def admin_key_problem(key: str) -> str | None:
    """Why the authorizer would refuse `key` as an admin key, or None. Refused at start,
    so a chosen key never becomes a bare 403 on every call."""
    if not re.fullmatch(rf"{re.escape(KEY_PREFIX)}[A-Za-z0-9_-]+", key) or len(key) > MAX_KEY_CHARS:
        return f"is not a Switchboard API key: a key {KEY_SHAPE}"
    return None


def report_error(line: str) -> None:
    print(f"[switchboard] {line}", file=sys.stderr, flush=True)


def default_state_dir() -> Path:
    return Path(os.environ.get("SWITCHBOARD_STATE_DIR", ".switchboard"))


@dataclass
class LocalRuntime:
    state_dir: Path = field(default_factory=default_state_dir)
    port: int = 8080
    host: str = "127.0.0.1"
    log: Any = None
    admin_key: str = ""
    base_url: str = ""
    demo: dict[str, Any] = field(default_factory=dict)
    # The demo tenant's sample routing set-up (docs/examples/); benchmarks that measure
    # routing without rules, or with their own, turn it off.
    demo_routing: bool = True
    # Keys of topology.delivery_policy() to replace (a faster retry schedule for demos and
    # tests); None: SWITCHBOARD_DELIVERY_POLICY if set, else the real schedule.
    delivery_policy: dict[str, Any] | None = None
    # Forget the emulator's state kept from earlier runs (the admin key and demo ids stay).
    fresh: bool = False
    # Seconds ingest keeps a connection and its credentials; None: as deployed (60 s), so a deleted
    # connection is refused within a minute. Tests that delete connections shorten it.
    ingest_cache_seconds: int | None = None
    # Seconds between snapshots of the emulator's state (taken only when something changed).
    snapshot_seconds: float = 5.0

    def start(self) -> LocalRuntime:
        from werkzeug.serving import make_server

        from infra.local.dispatcher import Dispatcher, InProcessQueues
        from infra.local.gateway import Gateway, GatewayRequestHandler
        from infra.local.provider_apis import ProviderApis, serve
        from infra.local.scheduler import OneTimeSchedules, Scheduler
        from switchboard_core import aws
        from switchboard_core.outbound import API_OVERRIDE_ENV

        self.state = StateDir(self.state_dir)
        # Checked before anything starts: a bad policy stops the hub with its reason (InvalidDeliveryPolicy).
        delivery_policy = (
            self.delivery_policy if self.delivery_policy is not None else delivery_policy_from_environment()
        )
        if delivery_policy is not None:
            delivery_policy_value(delivery_policy)
        if self.fresh:
            PersistentState.discard(self.state_dir)
        # The functions that answer a caller (a provider waiting for its 2xx, a person at the admin
        # API) go first in the emulator; the consumers' requests wait their turn meanwhile.
        answering = frozenset({route.function for route in topology.ROUTES} | {topology.AUTHORIZER_FUNCTION})
        self.persistence = PersistentState(
            self.state_dir,
            interval_seconds=self.snapshot_seconds,
            log=self.log or report_error,
            lanes=Lanes(answering),
        )
        self.emulator = Emulator(wrap=self.persistence.wrap)
        endpoint = self.emulator.start()
        self.restored = self.persistence.restore()
        self.names = LocalNames(LOCAL_STAGE)
        queues = create_resources(self.names)
        if self.restored:
            release_in_progress(aws.client("dynamodb"), self.names.table("idempotency"))
        # The providers' send APIs on loopback: auto-replies land there, never on the internet.
        self.provider_apis = ProviderApis()
        self._provider_apis_server, self.provider_apis_url = serve(self.provider_apis, self.host)
        self.functions = WorkerFunctions(
            self.names.mapping(),
            LOCAL_STAGE,
            extra_env={API_OVERRIDE_ENV: self.provider_apis_url},
            delivery_policy=delivery_policy,
            ingest_cache_seconds=self.ingest_cache_seconds,
        )
        self.admin_key = self.seed_admin_key()
        self.demo = self.seed_demo_connections()
        if self.demo_routing:
            self.seed_demo_routing()
        # Webhooks acknowledged after the last snapshot, through ingest again (duplicates: no-ops).
        self.replayed, refused = self.persistence.replay(self.ingest_again)
        if refused:
            report_error(f"{refused} of {self.replayed} journalled webhook(s) were refused again; kept for next start")
        assert self.persistence.journal is not None
        gateway = Gateway(
            self.functions.invoke,
            log=self.log,
            journal=self.persistence.journal.append,
            after_admin_change=self.persistence.snapshot,
        )
        self.server = make_server(self.host, self.port, gateway, threaded=True, request_handler=GatewayRequestHandler)
        self.port = self.server.server_port
        self.base_url = f"http://{self.host}:{self.port}"
        self.functions.set_public_base_url(self.base_url)
        # Every function's first sandbox boots now, in parallel: the first requests wait for
        # those instead of each paying a cold start of its own.
        self.functions.start()
        self._serve = threading.Thread(target=self.server.serve_forever, name="gateway", daemon=True)
        self._serve.start()
        self.provider_apis.status_webhook = self.post_status_webhook
        self.provider_apis.call_webhook = self.post_call_callbacks
        # Consumer failures are always reported, even when request logging is off.
        self.dispatcher = Dispatcher(
            InProcessQueues(self.persistence.app), queues, self.functions.invoke, log=self.log or report_error
        )
        self.dispatcher.start()
        self.scheduler = Scheduler(self.functions.invoke, log=self.log or report_error)
        self.scheduler.start()
        # The campaign runs' waits: their one-time schedules, sent to the campaigns queue when due.
        self.timers = OneTimeSchedules(
            aws.client("scheduler"), aws.client("sqs"), self.names.campaign_schedule_group, log=self.log or report_error
        )
        self.timers.start()
        self.persistence.start()
        self.state.write_private(
            self.state.runtime_file,
            json.dumps(
                {
                    "base_url": self.base_url,
                    "aws_endpoint": endpoint,
                    "stage": LOCAL_STAGE,
                    "provider_apis": self.provider_apis_url,
                    "tables": {k: v for k, v in self.names.mapping().items() if k.startswith("table:")},
                    "pid": os.getpid(),
                },
                indent=2,
            ),
        )
        return self

    def stop(self) -> None:
        self.timers.stop()
        self.scheduler.stop()
        self.dispatcher.stop()
        self.server.shutdown()
        self.functions.stop()
        self._provider_apis_server.shutdown()
        self.persistence.stop()
        self.emulator.stop()
        self.state.runtime_file.unlink(missing_ok=True)

    def seed_admin_key(self) -> str:
        from switchboard_core import aws
        from switchboard_core.principals import ApiKeyStore, Role

        key = os.environ.get("SWITCHBOARD_ADMIN_KEY", "").strip()
        chosen = bool(key)
        if not key and self.state.admin_key_file.exists():
            key = self.state.admin_key_file.read_text().strip()
        if key and (problem := admin_key_problem(key)):
            if chosen:
                raise AdminKeyRefused(f"SWITCHBOARD_ADMIN_KEY {problem}; unset it to have one generated")
            raise AdminKeyRefused(f"{self.state.admin_key_file} {problem}; delete the file to have one generated")
        store = ApiKeyStore(aws.resource("dynamodb").Table(self.names.table("api_keys")))
        key, _ = store.create(
            tenant=DEMO_TENANT, name="local-admin", role=Role.ADMIN, now=datetime.now(UTC), key=key or None
        )
        if store.authenticate(key) is None:  # whatever the authorizer checks, checked here at start
            raise AdminKeyRefused(f"the admin key {KEY_SHAPE}; the authorizer refuses this one")
        if not os.environ.get("SWITCHBOARD_ADMIN_KEY"):
            self.state.write_private(self.state.admin_key_file, key + "\n")
        return key

    def ingest_again(self, event: dict[str, Any]) -> int:
        """A journalled webhook's API event through ingest, as the gateway sent it; its status."""
        from infra.local.gateway import INGEST_FUNCTION

        try:
            result = self.functions.invoke(INGEST_FUNCTION, event)
        except Exception as exc:  # noqa: BLE001 - reported; the journal keeps the webhook
            report_error(f"replaying {event.get('rawPath')}: {type(exc).__name__}: {exc}")
            return 500
        return int(result.get("statusCode", 500)) if isinstance(result, dict) else 200

    def post_status_webhook(self, sent: Any, state: str, reason: str | None) -> int:
        """The provider's signed status webhook for a message its sandbox accepted, posted to
        the demo connection of that provider, as the provider would call the hub back; the
        hub's HTTP status. ValueError when the provider sends no status webhooks."""
        import urllib.error
        import urllib.request

        from infra.local.samples import build_status

        entry = self.demo["connections"][sent.provider]
        url = f"{self.base_url}/webhooks/{sent.provider}/{entry['id']}"
        signed = build_status(sent.provider, entry["credentials"], url, vars(sent), state, reason)
        request = urllib.request.Request(  # noqa: S310 - loopback: the hub's own gateway
            signed.url, data=signed.body or None, headers=signed.headers, method=signed.method
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
                return int(answer.status)
        except urllib.error.HTTPError as error:
            return int(error.code)

    def post_call_callbacks(self, placed: Any, outcome: str, digits: str | None) -> list[int]:
        """The provider's signed callbacks for a call its sandbox placed (a Gather / input result,
        then the final status), posted to the hub in order, signed with the inbound credentials of
        the connection the call's callback URL names; the hub's HTTP status of each. ValueError
        when the call has no callback on this hub."""
        from urllib.parse import urlsplit

        from infra import topology
        from infra.local.samples import build_call_callbacks
        from switchboard_core import aws
        from switchboard_core.connections import CredentialStore

        url = placed.callback_url or ""
        parts = urlsplit(url).path.strip("/").split("/")
        if not url.startswith(self.base_url) or len(parts) != 3 or parts[:2] != ["webhooks", placed.provider]:
            raise ValueError(f"call {placed.call_id} has no callback URL on this hub ({self.base_url})")
        store = CredentialStore(aws.client("secretsmanager"), topology.secrets_prefix(LOCAL_STAGE), max_age_seconds=0)
        credentials = store.get(parts[2]).current
        return [
            self._post(signed)
            for signed in build_call_callbacks(placed.provider, credentials, vars(placed), outcome, digits)
        ]

    @staticmethod
    def _post(signed: Any) -> int:
        import urllib.error
        import urllib.request

        request = urllib.request.Request(  # noqa: S310 - loopback: the hub's own gateway
            signed.url, data=signed.body or None, headers=signed.headers, method=signed.method
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
                return int(answer.status)
        except urllib.error.HTTPError as error:
            return int(error.code)

    def seed_demo_connections(self) -> dict[str, Any]:
        """One connection per provider for the demo tenant, with the same ids and
        credentials on every start (kept in demo.json), so `switchboard send` works at once.
        Providers that can be answered also get outbound credentials, which the provider
        sandbox accepts, so auto-replies work at once too."""
        from infra import topology
        from infra.local.provider_apis import demo_outbound_credentials
        from infra.local.samples import demo_credentials
        from switchboard_core import aws
        from switchboard_core.connections import Connection, ConnectionStore, CredentialStore, new_connection_id
        from switchboard_core.outbound import SENDERS
        from switchboard_core.providers import PROVIDER_NAMES

        demo = self.state.read_json(self.state.demo_file) or {"tenant": DEMO_TENANT, "connections": {}}
        connections = ConnectionStore(aws.resource("dynamodb").Table(self.names.table("connections")))
        credentials = CredentialStore(aws.client("secretsmanager"), topology.secrets_prefix(LOCAL_STAGE))
        outbound = CredentialStore(aws.client("secretsmanager"), topology.outbound_secrets_prefix(LOCAL_STAGE))
        now = datetime.now(UTC)
        for provider in PROVIDER_NAMES:
            entry = demo["connections"].get(provider) or {
                "id": new_connection_id(),
                "credentials": demo_credentials(provider),
            }
            demo["connections"][provider] = entry
            credentials.replace(entry["id"], entry["credentials"], demo["tenant"])
            if provider in SENDERS:
                # Settings added since the state was written (a sender number) join the kept credentials.
                entry["outbound"] = demo_outbound_credentials(provider) | (entry.get("outbound") or {})
                outbound.replace(entry["id"], entry["outbound"], demo["tenant"])
                self.provider_apis.accept(provider, entry["outbound"])
            connections.put(
                Connection(
                    id=entry["id"],
                    provider=provider,
                    tenant=demo["tenant"],
                    name=f"demo {provider}",
                    created_at=now,
                    outbound_configured_at=now if provider in SENDERS else None,
                )
            )
        self.state.write_private(self.state.demo_file, json.dumps(demo, indent=2))
        return demo

    def seed_demo_routing(self) -> None:
        """The demo tenant's rule set, taxonomy, teams and responders from docs/examples/,
        so the first `switchboard send` is routed, assigned and answered. Only what the
        tenant does not have yet is written: a rule set saved meanwhile is never replaced."""
        from switchboard_core import aws
        from switchboard_core.routing.config_store import RoutingConfigStore

        example = load_routing_example(EXAMPLES_DIR, self.demo["tenant"])
        store = RoutingConfigStore(aws.resource("dynamodb").Table(self.names.table("routing")))
        now = datetime.now(UTC)
        if store.rules(example.tenant) is None:
            store.put_rules(example.tenant, example.rule_set, None, now)
        if store.taxonomy(example.tenant)[1] == 0:
            store.put_taxonomy(example.tenant, example.taxonomy, now)
        known_teams = {team.name for team in store.teams(example.tenant)}
        for team in example.teams:
            if team.name not in known_teams:
                store.put_team(example.tenant, team)
        for responder in example.responders:
            if store.responder(example.tenant, responder.id) is None:
                store.put_responder(responder)


def release_in_progress(dynamodb: Any, table: str) -> int:
    """Delete the idempotency records still marked in progress: no invocation outlives a restart
    (on AWS such a record expires with its function's timeout), and a webhook whose ingest was cut
    short must be accepted when the provider retries it or the journal replays it. The number."""
    released = 0
    for page in dynamodb.get_paginator("scan").paginate(
        TableName=table,
        FilterExpression="#s = :in_progress",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":in_progress": {"S": "INPROGRESS"}},
        ProjectionExpression="id",
    ):
        for item in page.get("Items", []):
            dynamodb.delete_item(TableName=table, Key={"id": item["id"]})
            released += 1
    return released


@dataclass
class RoutingExample:
    tenant: str
    rule_set: RuleSet
    taxonomy: Taxonomy
    teams: list[Team]
    responders: list[Responder]


def load_routing_example(directory: Path, tenant: str) -> RoutingExample:
    """rules.json, taxonomy.json, teams.json and responders.json from `directory`, each
    validated by the model the admin API validates it with (InvalidExample names the file
    and the fields)."""
    from pydantic import TypeAdapter, ValidationError

    from switchboard_core.errors import field_problems
    from switchboard_core.routing.assignment import Responder, Team
    from switchboard_core.routing.rules import RuleSet
    from switchboard_core.routing.sensing import Taxonomy

    def read(name: str, model: Any, extra: dict[str, Any] | None = None) -> Any:
        path = directory / name
        try:
            raw = json.loads(path.read_text())
            if extra is not None:
                raw = [{**item, **extra} for item in raw]
            return TypeAdapter(model).validate_python(raw)
        except (OSError, ValueError) as exc:
            problems = (
                ", ".join(f"{p['field']}: {p['problem']}" for p in field_problems(exc))
                if isinstance(exc, ValidationError)
                else str(exc)
            )
            raise InvalidExample(f"{path}: {problems}") from None

    return RoutingExample(
        tenant=tenant,
        rule_set=read("rules.json", RuleSet),
        taxonomy=read("taxonomy.json", Taxonomy),
        teams=read("teams.json", list[Team]),
        responders=read("responders.json", list[Responder], {"tenant": tenant}),
    )
