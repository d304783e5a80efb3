"""How `make test` splits the suite between pytest-xdist workers (tests/conftest.xdist_scope):
what shares a costly fixture stays on one worker, everything else is balanced test by test."""

from __future__ import annotations

from tests.conftest import xdist_scope


def test_every_test_of_the_cdk_synth_fixtures_is_one_unit() -> None:
    assert xdist_scope("tests/infra/test_iam.py::test_x") == "cdk-synth"
    assert xdist_scope("tests/infra/test_nag.py::test_y[a]") == "cdk-synth"


def test_an_integration_module_is_one_unit() -> None:
    assert xdist_scope("tests/integration/test_webhooks.py::test_z") == "tests/integration/test_webhooks.py"


def test_a_module_with_a_module_scoped_fixture_is_one_unit() -> None:
    module = "tests/unit/local/test_workers.py"
    assert xdist_scope(f"{module}::test_a") == xdist_scope(f"{module}::test_b") == module


def test_any_other_test_is_its_own_unit() -> None:
    assert xdist_scope("tests/unit/test_bus.py::test_x") == "tests/unit/test_bus.py::test_x"
    assert xdist_scope("tests/infra/test_lint_config.py::test_x") == "tests/infra/test_lint_config.py::test_x"


def test_the_hub_worker_takes_integration_modules_and_the_others_everything_else_first() -> None:
    from tests.conftest import next_scope

    queue = [
        "cdk-synth",
        "tests/integration/test_a.py",
        "tests/unit/local/test_workers.py",
        "tests/integration/test_b.py",
    ]
    assert next_scope(queue, integration_first=True) == "tests/integration/test_a.py"
    assert next_scope(queue[2:], integration_first=True) == "tests/integration/test_b.py"
    assert next_scope(queue, integration_first=False) == "cdk-synth"
    # Whoever runs out of its kind takes the other's.
    assert next_scope(["tests/integration/test_b.py"], integration_first=False) == "tests/integration/test_b.py"
    assert next_scope(["tests/unit/test_bus.py::test_x"], integration_first=True) == "tests/unit/test_bus.py::test_x"
