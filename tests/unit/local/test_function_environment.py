"""The local runtime gives each function only its own environment, as the CDK app does."""

from __future__ import annotations

import os

import pytest

from infra import topology
from infra.local.lambdas import LocalFunctions

NAMES = (
    {f"table:{t}": f"local-{t}" for t in topology.TABLES}
    | {f"bucket:{b}": f"local-{b}" for b in topology.BUCKETS}
    | {f"secret:{s}": f"local-{s}" for s in topology.SECRETS}
    | {"bus": "local-events"}
)


@pytest.fixture
def probed(monkeypatch: pytest.MonkeyPatch) -> LocalFunctions:
    """Every topology function, its handler replaced by one that returns os.environ."""
    probes = {
        name: topology.Function(**{**spec.__dict__, "handler": "tests.unit.local.env_probe.handler"})
        for name, spec in topology.FUNCTIONS.items()
    }
    monkeypatch.setattr(topology, "FUNCTIONS", probes)
    return LocalFunctions(NAMES, "test")


@pytest.mark.parametrize("name", sorted(topology.FUNCTIONS))
def test_a_function_sees_its_own_variables_and_no_others(probed: LocalFunctions, name: str) -> None:
    seen = probed.invoke(name, {})
    own = topology.function_environment(topology.FUNCTIONS[name], NAMES, "test")
    assert {key: seen[key] for key in own} == own
    others = {key for other in topology.FUNCTIONS for key in probed.environment(other)} - set(probed.environment(name))
    assert not others & set(seen), f"{name} sees another function's variables: {sorted(others & set(seen))}"


def test_the_authorizer_cannot_read_the_connections_table_variable(probed: LocalFunctions) -> None:
    # The admin function gets TABLE_CONNECTIONS; the authorizer does not, locally as on AWS.
    assert "TABLE_CONNECTIONS" in probed.invoke("admin", {})
    assert "TABLE_CONNECTIONS" not in probed.invoke("authorizer", {})


def test_the_process_environment_is_restored_after_an_invocation(probed: LocalFunctions) -> None:
    before = dict(os.environ)
    probed.invoke("ingest", {})
    assert dict(os.environ) == before
