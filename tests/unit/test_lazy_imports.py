"""What the notifications and campaigns handlers leave out of a cold start, and that what they
import later still works when a record needs it (docs/benchmarks.md, Cold start)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from infra.local.lambdas import LocalFunctions
from switchboard_core import aws

REPOSITORY = Path(__file__).resolve().parents[2]

# What serves only some records, by handler: loaded on first use, never at import.
DEFERRED = {
    "functions.notifications.handler": [
        "jinja2",  # rendering: a trigger that notifies nobody renders nothing
        "switchboard_core.subscriptions.sender",  # the webhook channel
        "switchboard_core.subscriptions.signing",
    ],
    "functions.campaigns.handler": [
        "switchboard_core.subscriptions.sender",  # webhook steps
        "switchboard_core.subscriptions.signing",
        "switchboard_core.notification_signing",
        "switchboard_core.routing.config_store",  # connect_call's responders and teams
        "switchboard_core.envelopes",  # bus events, not the function's own work
        # what starts or advances a run: most bus events concern none
        "switchboard_core.campaigns.engine",
        "switchboard_core.campaigns.flow",
        "switchboard_core.campaigns.models",
        "switchboard_core.campaigns.store",
        "switchboard_core.routing.contacts",
        "switchboard_core.routing.conversations",
    ],
}


def loaded_after_importing(module: str) -> set[str]:
    path = os.pathsep.join([str(REPOSITORY / "layers" / "core" / "python"), str(REPOSITORY)])
    done = subprocess.run(
        [sys.executable, "-c", f"import json, sys\nimport {module}\nprint(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        env={**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "PYTHONPATH": path},
        cwd=REPOSITORY,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("module", sorted(DEFERRED))
def test_a_cold_import_leaves_out_what_only_some_records_need(module):
    loaded = loaded_after_importing(module)
    assert module in loaded
    assert [name for name in DEFERRED[module] if name in loaded] == []


@pytest.fixture
def function_env(aws_world, monkeypatch):
    """The function's environment, set before its handler is imported: Powertools' Logger and
    Metrics read theirs when the module is first imported, and later tests share the module."""

    def using(name: str) -> None:
        for key, value in LocalFunctions(aws_world.names.mapping(), "test").environment(name).items():
            monkeypatch.setenv(key, value)

    return using


@pytest.fixture
def campaigns(function_env):
    function_env("campaigns")
    from functions.campaigns import handler

    handler.settings.cache_clear()
    handler.dependencies.cache_clear()
    yield handler
    handler.settings.cache_clear()
    handler.dependencies.cache_clear()


def test_campaigns_reads_a_tenants_signing_keys_at_its_first_webhook_step(campaigns):
    from switchboard_core.subscriptions.signing import SigningSecrets, new_secret

    deps = campaigns.dependencies()
    secrets = SigningSecrets(current=new_secret())
    aws.client("secretsmanager").create_secret(
        Name=campaigns.settings().signing_secrets_prefix + "acme", SecretString=secrets.model_dump_json()
    )
    assert deps.webhook_keys("acme") == secrets.signing_keys(datetime.now(UTC))
    with pytest.raises(LookupError):  # read only: a tenant without a secret is not given one
        deps.webhook_keys("globex")


def test_campaigns_reads_responders_through_the_routing_store_made_on_first_use(campaigns):
    from switchboard_core.routing.assignment import Responder
    from switchboard_core.routing.config_store import RoutingConfigStore

    config = campaigns.dependencies().config
    assert config.responder("acme", "r-1") is None
    assert isinstance(config.store, RoutingConfigStore)
    responder = Responder.model_validate({"id": "r-1", "tenant": "acme", "name": "Ann"})
    config.store.put_responder(responder)
    assert config.responder("acme", "r-1") == responder
    assert [r.id for r in config.responders("acme")] == ["r-1"]


def test_campaigns_reads_campaigns_contacts_and_conversations_through_stores_made_on_first_use(campaigns):
    from switchboard_core.campaigns.store import CampaignStore
    from switchboard_core.routing.contacts import ContactStore
    from switchboard_core.routing.conversations import ConversationStore

    deps = campaigns.dependencies()
    assert deps.campaigns.get("cmp_missing") is None
    assert deps.contacts.get("ct_missing") is None
    assert deps.conversations.get("cv_missing") is None
    made: Any = deps
    assert isinstance(made.campaigns.store, CampaignStore)
    assert made.campaigns.store._versions_cached == campaigns.VERSIONS_CACHED  # versions kept per sandbox
    assert isinstance(made.contacts.store, ContactStore)
    assert isinstance(made.conversations.store, ConversationStore)
    assert made.campaigns.store is made.campaigns.store  # made once, its caches kept


@pytest.mark.parametrize("function", ["campaigns", "notifications"])
def test_the_webhook_sender_is_the_subscriptions_sender(function, function_env, monkeypatch):
    from switchboard_core.subscriptions import sender

    function_env(function)
    handler: Any = __import__(f"functions.{function}.handler", fromlist=["handler"])
    sent: list[tuple[Any, ...]] = []

    def recording_post(*args: Any) -> str:
        sent.append(args)
        return "result"

    monkeypatch.setattr(sender, "post", recording_post)
    assert handler.post_webhook("endpoint", b"{}", {"a": "b"}, 10) == "result"
    assert sent == [("endpoint", b"{}", {"a": "b"}, 10)]


def test_a_store_whose_making_fails_raises_its_own_error(campaigns):
    def broken() -> Any:
        raise AttributeError("the table has no such index")

    proxy = campaigns.MadeOnFirstUse(broken)
    with pytest.raises(AttributeError, match="no such index"):
        proxy.get("cmp_1")  # not a RecursionError through `store`
    import copy

    assert isinstance(copy.copy(proxy), campaigns.MadeOnFirstUse)  # copying asks for no store
