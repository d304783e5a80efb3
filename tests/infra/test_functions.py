"""Functions, layers and code assets follow topology.FUNCTIONS; each function's code asset
holds only its own package."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from infra import topology
from infra.aws.components.functions import POWERTOOLS_LAYER_PARAMETER
from infra.aws.config import DEFAULT_POWERTOOLS_VERSION
from tests.infra.conftest import REPO_ROOT, Synthesised

pytestmark = pytest.mark.infra


def _function(synth: Synthesised, name: str) -> dict:
    return synth.json["Resources"][synth.logical_id(synth.stack.functions.functions[name])]


def _asset_dir(synth: Synthesised, resource: dict, prop: str = "Code") -> Path:
    key = resource["Properties"][prop]["S3Key"]
    return synth.outdir / f"asset.{key.removesuffix('.zip')}"


def _files(directory: Path) -> set[str]:
    return {p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file()}


def test_one_function_per_topology_function(synth: Synthesised) -> None:
    assert len(synth.resources("AWS::Lambda::Function")) == len(topology.FUNCTIONS)


def test_no_function_reserves_concurrency_by_default(synth: Synthesised) -> None:
    """A reservation fails the deploy in an account whose limit is a new account's 10: opt-in only."""
    functions = synth.resources("AWS::Lambda::Function").values()
    assert [f["Properties"].get("ReservedConcurrentExecutions") for f in functions] == [None] * len(topology.FUNCTIONS)


def test_only_ingest_reserves_what_the_context_asks(synth_qa_destroy: Synthesised) -> None:
    reserved = {
        name: _function(synth_qa_destroy, name)["Properties"].get("ReservedConcurrentExecutions")
        for name in topology.FUNCTIONS
    }
    assert reserved == {name: 100 if name == "ingest" else None for name in topology.FUNCTIONS}


@pytest.mark.parametrize("name", sorted(topology.FUNCTIONS))
def test_function_matches_topology(synth: Synthesised, name: str) -> None:
    spec = topology.FUNCTIONS[name]
    props = _function(synth, name)["Properties"]
    assert props["Runtime"] == "python3.14"
    assert props["Architectures"] == ["arm64"]
    assert props["Handler"] == spec.handler
    assert props["MemorySize"] == spec.memory_mb
    assert props["Timeout"] == spec.timeout_seconds
    assert props["TracingConfig"] == {"Mode": "Active"}
    assert props["FunctionName"] == f"switchboard-dev-{name.replace('_', '-')}"


@pytest.mark.parametrize("name", sorted(topology.FUNCTIONS))
def test_environment_comes_from_topology(synth: Synthesised, name: str) -> None:
    spec = topology.FUNCTIONS[name]
    variables = _function(synth, name)["Properties"]["Environment"]["Variables"]
    names = {f"table:{t}": "x" for t in topology.TABLES} | {f"bucket:{b}": "x" for b in topology.BUCKETS}
    names |= {f"secret:{s}": "x" for s in topology.SECRETS}
    names |= {"rule_prefix": "x", "archive": "x", "public_url": "x"} | {
        f"{k}:{queue}": "x"
        for k in ("queue_url", "queue_arn", "dlq_arn")
        for queue in (topology.DELIVERY_QUEUE, topology.CAMPAIGN_QUEUE)
    }
    names |= {"campaign_rule_prefix": "x", "campaign_schedule_group": "x", "campaign_scheduler_role_arn": "x"}
    expected = topology.function_environment(spec, {**names, "bus": "x"}, "dev")
    assert set(variables) == set(expected)
    for secret in spec.reads_secrets:  # the stack's own secret, by ARN (a Ref of a secret is its ARN)
        assert variables[topology.env_var("secret", secret)] == {
            "Ref": synth.logical_id(synth.stack.secrets.secrets[secret])
        }
    for table in spec.tables:
        assert variables[topology.env_var("table", table)] == {
            "Ref": synth.logical_id(synth.stack.storage.tables[table])
        }
    for bucket in spec.buckets:
        assert variables[topology.env_var("bucket", bucket)] == {
            "Ref": synth.logical_id(synth.stack.storage.buckets[bucket])
        }
    if spec.publishes:
        # The bus NAME (a Ref of AWS::Events::EventBus is its name), not its ARN.
        assert variables[topology.EVENT_BUS_ENV] == {"Ref": synth.logical_id(synth.stack.bus.bus)}
    if spec.secrets:
        assert variables[topology.SECRETS_PREFIX_ENV] == "switchboard/dev/connections/"


@pytest.mark.parametrize("name", sorted(topology.FUNCTIONS))
def test_function_has_core_and_powertools_layers(synth: Synthesised, name: str) -> None:
    layers = _function(synth, name)["Properties"]["Layers"]
    core = synth.stack.resolve(synth.stack.functions.core_layer.node.default_child.logical_id)
    assert {"Ref": core} in layers
    parameters = synth.json["Parameters"]
    powertools = [layer["Ref"] for layer in layers if layer.get("Ref") in parameters]
    assert len(powertools) == 1
    assert parameters[powertools[0]] == {
        "Type": "AWS::SSM::Parameter::Value<String>",
        "Default": f"/aws/service/powertools/python/arm64/python3.14/{DEFAULT_POWERTOOLS_VERSION}",
    }


def test_powertools_layer_version_matches_the_python_pin() -> None:
    """The layer on AWS and the library in .venv (tests, local runtime) are the same release."""
    dependencies = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = [re.match(r"aws-lambda-powertools(\[.*\])?==(.+)$", d) for d in dependencies]
    (pin,) = [m.group(2) for m in pins if m]
    assert pin == DEFAULT_POWERTOOLS_VERSION
    assert POWERTOOLS_LAYER_PARAMETER.startswith("/aws/service/powertools/python/")


def test_core_layer_asset_holds_switchboard_core(synth: Synthesised) -> None:
    layer = synth.json["Resources"][synth.logical_id(synth.stack.functions.core_layer)]
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.14"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    files = _files(_asset_dir(synth, layer, "Content"))
    assert "python/switchboard_core/__init__.py" in files
    assert all(f.startswith("python/switchboard_core/") for f in files), files
    assert not [f for f in files if "__pycache__" in f or f.endswith(".pyc")]


@pytest.mark.parametrize("name", sorted(topology.FUNCTIONS))
def test_function_asset_holds_only_its_own_package(synth: Synthesised, name: str) -> None:
    spec = topology.FUNCTIONS[name]
    files = _files(_asset_dir(synth, _function(synth, name)))
    assert f"{spec.directory}/handler.py" in files
    assert "functions/__init__.py" in files
    others = {f for f in files if f != "functions/__init__.py" and not f.startswith(f"{spec.directory}/")}
    assert not others, f"{name}'s asset carries foreign files: {sorted(others)}"
    assert not [f for f in files if "__pycache__" in f or f.endswith((".pyc", ".pyo"))]
    # Everything the function's source directory holds (minus caches) is shipped.
    source = {
        f"{spec.directory}/{p}"
        for p in _files(REPO_ROOT / spec.directory)
        if "__pycache__" not in p and not p.endswith((".pyc", ".pyo"))
    }
    assert source <= files


@pytest.mark.parametrize("name", sorted(topology.FUNCTIONS))
def test_function_logs_to_its_own_retained_log_group(synth: Synthesised, name: str) -> None:
    props = _function(synth, name)["Properties"]
    log_group_id = synth.logical_id(synth.stack.functions.log_groups[name])
    assert props["LoggingConfig"] == {"LogGroup": {"Ref": log_group_id}}
    log_group = synth.json["Resources"][log_group_id]
    assert log_group["Properties"]["RetentionInDays"] == 30
    assert log_group["Properties"]["LogGroupName"] == f"/aws/lambda/switchboard-dev-{name.replace('_', '-')}"
    assert log_group["DeletionPolicy"] == "Retain"


def test_no_deprecated_log_retention_custom_resource(synth: Synthesised) -> None:
    assert not synth.resources("Custom::LogRetention")
