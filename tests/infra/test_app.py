"""Stage configuration, stack naming, outputs and the CLI wiring (cdk.json, package.json)."""

from __future__ import annotations

import json
import re

import pytest
from aws_cdk import App

from infra import topology
from infra.aws.config import StageConfig
from tests.infra.conftest import REPO_ROOT, Synthesised

pytestmark = pytest.mark.infra


def test_stack_is_named_for_the_stage(synth: Synthesised, synth_qa_destroy: Synthesised) -> None:
    assert synth.stack.stack_name == "Switchboard-dev"
    assert synth_qa_destroy.stack.stack_name == "Switchboard-qa"


def test_outputs(synth: Synthesised) -> None:
    outputs = synth.json["Outputs"]
    assert {"ApiUrl", "EventBusName", "AlarmTopicArn"} <= set(outputs)
    for name in topology.TABLES:
        key = "".join(p.capitalize() for p in name.split("_")) + "TableName"
        assert outputs[key]["Value"] == {"Ref": synth.logical_id(synth.stack.storage.tables[name])}
    for name in topology.BUCKETS:
        key = "".join(p.capitalize() for p in name.split("_")) + "BucketName"
        assert outputs[key]["Value"] == {"Ref": synth.logical_id(synth.stack.storage.buckets[name])}


def test_stack_is_environment_agnostic(synth: Synthesised) -> None:
    """No account or region lookups: synth needs no credentials and no network."""
    assert synth.stack.resolve(synth.stack.account) == {"Ref": "AWS::AccountId"}
    context_file = REPO_ROOT / "cdk.context.json"
    assert not context_file.exists() or json.loads(context_file.read_text()) == {}


def test_context_defaults() -> None:
    config = StageConfig.from_context(App().node)
    assert config == StageConfig()
    assert (config.stage, config.removal, config.throttle_rate, config.throttle_burst) == ("dev", "retain", 100, 200)
    assert (config.ingest_reserved_concurrency, config.account_concurrency) == (0, 1000)


def test_a_reservation_may_leave_exactly_the_unreserved_minimum() -> None:
    assert StageConfig(ingest_reserved_concurrency=900).ingest_reserved_concurrency == 900
    assert StageConfig(ingest_reserved_concurrency=0, account_concurrency=10).account_concurrency == 10


@pytest.mark.parametrize(
    "context",
    [
        {"stage": "Prod"},
        {"stage": "prod_eu"},
        {"stage": "1st"},
        {"removal": "snapshot"},
        {"log_retention_days": "10"},
        {"throttle_rate": "0"},
        {"ingest_reserved_concurrency": "-1"},
        {"ingest_reserved_concurrency": "901"},  # leaves 99 of the default 1,000 unreserved
        {"ingest_reserved_concurrency": "1", "account_concurrency": "10"},  # a new account's limit
        {"notification_email_from": "not-an-address"},
        {"notification_email_from": "ops@localhost"},
        {"notification_sms_from": "4155550100"},
    ],
)
def test_invalid_context_is_refused(context: dict) -> None:
    with pytest.raises(ValueError):
        StageConfig.from_context(App(context=context).node)


def test_cdk_json_runs_the_app_with_the_project_python() -> None:
    cdk_json = json.loads((REPO_ROOT / "cdk.json").read_text())
    assert cdk_json["app"].endswith("-m infra.aws.app")
    assert "stage" not in cdk_json["context"], "the default stage lives in StageConfig, -c stage=... picks another"


def test_cli_is_pinned_to_the_v2_line() -> None:
    package = json.loads((REPO_ROOT / "package.json").read_text())
    assert re.fullmatch(r"2\.1148\.\d+", package["devDependencies"]["aws-cdk"])
