"""Every function's handler imports from its built asset the way Lambda loads it.

Each asset is built by the CDK app's own code (`packaging.build_function_asset`) and its
handler imported in a fresh interpreter (tests/infra/lambda_probe.py) whose path holds only
that asset, the project's layers and the libraries Lambda provides: no repository root, no
editable install. A handler that imports another function's folder, or a library no layer
of its carries, fails here as it would fail on AWS.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib.metadata
import json
import re
import subprocess
import sys
import sysconfig
from functools import cache
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from infra import topology
from infra.aws import layers
from infra.aws.components.packaging import LAYER_CORE_DIR, build_function_asset
from tests.infra.conftest import REPO_ROOT

pytestmark = pytest.mark.infra

PROBE = Path(__file__).with_name("lambda_probe.py")
# What Lambda provides without our layers: the runtime's boto3, and the AWS-managed
# Powertools layer, which is built with `aws-lambda-powertools[all]`.
RUNTIME_REQUIREMENTS = ("boto3", "aws-lambda-powertools[all]")


def _closure(requirements: list[str]) -> set[str]:
    """Installed distributions these requirements pull in (normalised names)."""
    seen: set[str] = set()
    pending = [Requirement(r) for r in requirements]
    while pending:
        requirement = pending.pop()
        name = re.sub(r"[-_.]+", "-", requirement.name).lower()
        if name in seen:
            continue
        try:
            distribution = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue  # not installed here, so not importable either
        seen.add(name)
        for raw in distribution.requires or []:
            child = Requirement(raw)
            extras = requirement.extras or {""}
            if child.marker is None or any(child.marker.evaluate({"extra": extra}) for extra in extras):
                pending.append(child)
    return seen


@cache
def _modules_of(distributions: frozenset[str]) -> frozenset[str]:
    modules = set()
    for module, owners in importlib.metadata.packages_distributions().items():
        if any(re.sub(r"[-_.]+", "-", owner).lower() in distributions for owner in owners):
            modules.add(module)
    return frozenset(modules)


def _deps_layer_requirements() -> list[str]:
    lines = (line.strip() for line in layers.DEPS_REQUIREMENTS.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def allowed_modules(function: topology.Function) -> frozenset[str]:
    requirements = list(RUNTIME_REQUIREMENTS) + (_deps_layer_requirements() if function.deps_layer else [])
    return _modules_of(frozenset(_closure(requirements)))


def lazily_imported(function: topology.Function) -> list[str]:
    """Modules a function imports only on first use: a function that sends (outbound
    credentials) or finds reply addresses (routing) may load any provider's sender."""
    from switchboard_core.outbound import SENDERS

    if function.outbound_secrets or function.name == "routing":
        return sorted({target.split(":")[0] for target in SENDERS.values()})
    return []


def import_like_lambda(function: topology.Function, asset: Path) -> dict:
    names = (
        {f"table:{t}": f"test-{t}" for t in topology.TABLES}
        | {f"bucket:{b}": f"test-{b}" for b in topology.BUCKETS}
        | {f"secret:{s}": f"test-{s}" for s in topology.SECRETS}
        | {"bus": "test-events"}
        | {
            "rule_prefix": "test-sub-",
            f"queue_url:{topology.DELIVERY_QUEUE}": "https://sqs.eu-west-1.amazonaws.com/123456789012/test-deliveries",
            f"queue_arn:{topology.DELIVERY_QUEUE}": "arn:aws:sqs:eu-west-1:123456789012:test-deliveries",
            f"dlq_arn:{topology.DELIVERY_QUEUE}": "arn:aws:sqs:eu-west-1:123456789012:test-deliveries-dlq",
            "archive": "arn:aws:events:eu-west-1:123456789012:archive/test-events",
            f"queue_url:{topology.CAMPAIGN_QUEUE}": "https://sqs.eu-west-1.amazonaws.com/123456789012/test-campaigns",
            f"queue_arn:{topology.CAMPAIGN_QUEUE}": "arn:aws:sqs:eu-west-1:123456789012:test-campaigns",
            f"dlq_arn:{topology.CAMPAIGN_QUEUE}": "arn:aws:sqs:eu-west-1:123456789012:test-campaigns-dlq",
            "campaign_rule_prefix": "test-cmp-",
            "campaign_schedule_group": "test-campaigns",
            "campaign_scheduler_role_arn": "arn:aws:iam::123456789012:role/test-campaign-scheduler",
        }
    )
    environment = topology.function_environment(function, names, "test") | {
        "AWS_REGION": "eu-west-1",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    config = {
        "handler": function.handler,
        "code_paths": [str(asset), str(LAYER_CORE_DIR / "python")],
        "site_packages": [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]],
        "allowed_modules": sorted(allowed_modules(function)),
        "environment": environment,
        "also_import": lazily_imported(function),
    }
    done = subprocess.run(
        [sys.executable, "-I", "-S", str(PROBE), json.dumps(config)],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", sorted(topology.FUNCTIONS))
def test_handler_imports_from_its_asset_alone(name: str, tmp_path: Path) -> None:
    function = topology.FUNCTIONS[name]
    result = import_like_lambda(function, build_function_asset(function, tmp_path))
    assert result["ok"], f"{name}: {result['error']}\n{result.get('traceback', '')}"


def _fake_repo(root: Path, handler_source: str) -> topology.Function:
    (root / "functions" / "probe").mkdir(parents=True)
    (root / "functions" / "other").mkdir()
    (root / "functions" / "__init__.py").write_text("")
    for package in ("probe", "other"):
        (root / "functions" / package / "__init__.py").write_text("")
    (root / "functions" / "other" / "logic.py").write_text("VALUE = 1\n")
    (root / "functions" / "probe" / "handler.py").write_text(handler_source)
    return topology.Function("probe", handler="functions.probe.handler.handler", description="probe")


def test_a_subscription_function_gets_its_environment_in_the_probe(tmp_path: Path) -> None:
    """The probe gives a function with the subscription flags (as delivery and admin have them)
    the variables the CDK app sets, so a handler reading them at import loads as on AWS."""
    reads = (
        "import os\n"
        "NEEDED = ('DELIVERY_QUEUE_URL', 'DELIVERY_POLICY', 'SUBSCRIPTION_SECRETS_PREFIX',\n"
        "          'SUBSCRIPTION_RULE_PREFIX', 'DELIVERY_QUEUE_ARN', 'EVENT_ARCHIVE_ARN', 'EVENT_BUS_NAME',\n"
        "          'QUEUE_MAX_RECEIVE_COUNT')\n"
        "MISSING = [name for name in NEEDED if not os.environ.get(name)]\n"
        "assert not MISSING, MISSING\n\n"
        "def handler(event, context):\n    pass\n"
    )
    probe = _fake_repo(tmp_path / "repo", reads)
    like_delivery_and_admin = dataclasses.replace(
        probe,
        publishes=True,
        subscription_secrets="readwrite",
        manages_subscription_rules=True,
        uses_delivery_queue=True,
        consumer=topology.FUNCTIONS["delivery"].consumer,
    )
    asset = build_function_asset(like_delivery_and_admin, tmp_path / "out", tmp_path / "repo")
    assert import_like_lambda(like_delivery_and_admin, asset)["ok"]
    without_flags = import_like_lambda(probe, asset)
    assert not without_flags["ok"] and "DELIVERY_QUEUE_URL" in without_flags["error"]


def test_a_handler_importing_another_functions_folder_fails(tmp_path: Path) -> None:
    function = _fake_repo(
        tmp_path / "repo", "from functions.other.logic import VALUE\n\ndef handler(event, context):\n    return VALUE\n"
    )
    result = import_like_lambda(function, build_function_asset(function, tmp_path / "out", tmp_path / "repo"))
    assert not result["ok"]
    assert "functions.other" in result["error"]


def test_a_handler_importing_a_library_no_layer_carries_fails(tmp_path: Path) -> None:
    # phonenumbers is in the deps layer, which this function does not get; moto is nowhere on Lambda.
    for library in ("phonenumbers", "moto"):
        function = _fake_repo(tmp_path / library, f"import {library}\n\ndef handler(event, context):\n    pass\n")
        result = import_like_lambda(
            function, build_function_asset(function, tmp_path / f"{library}-out", tmp_path / library)
        )
        assert not result["ok"] and library in result["error"], result


def test_the_repository_is_not_importable_in_the_probe(tmp_path: Path) -> None:
    function = _fake_repo(tmp_path / "repo", "import infra\n\ndef handler(event, context):\n    pass\n")
    result = import_like_lambda(function, build_function_asset(function, tmp_path / "out", tmp_path / "repo"))
    assert not result["ok"] and "infra" in result["error"]
    assert (REPO_ROOT / "infra" / "__init__.py").is_file()  # it exists; the probe just cannot see it


def _imported_modules(directory: Path) -> dict[str, set[str]]:
    """Every module each file under `directory` imports, at module level or inside a function
    (an import in a function body runs only when called, so the probe above cannot see it)."""
    found: dict[str, set[str]] = {}
    for path in sorted(directory.rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
        found[path.relative_to(REPO_ROOT).as_posix()] = names
    return found


@pytest.mark.parametrize("name", sorted(topology.FUNCTIONS))
def test_no_import_anywhere_in_a_function_reaches_another_functions_folder(name: str) -> None:
    function = topology.FUNCTIONS[name]
    own = function.directory.replace("/", ".")
    for path, modules in _imported_modules(REPO_ROOT / function.directory).items():
        foreign = {m for m in modules if m.startswith("functions.") and m != own and not m.startswith(own + ".")}
        assert not foreign, f"{path} imports {sorted(foreign)}: only {own} and the layers are in its asset"


@pytest.mark.parametrize("name", sorted(n for n, f in topology.FUNCTIONS.items() if not f.deps_layer))
def test_functions_without_the_deps_layer_import_none_of_its_libraries_anywhere(name: str) -> None:
    deps_modules = allowed_modules(topology.FUNCTIONS["ingest"]) - allowed_modules(topology.FUNCTIONS[name])
    for path, modules in _imported_modules(REPO_ROOT / topology.FUNCTIONS[name].directory).items():
        used = {m for m in modules if m.split(".")[0] in deps_modules}
        assert not used, f"{path} imports {sorted(used)}, which only the deps layer carries"
