"""The short form of `python -m tests.faults`: every function of the topology with a few requests
and a third of its AWS attempts faulted. Nothing acknowledged is lost, and nothing reaches a
partner or provider twice beyond the platform's at-least-once retries."""

from __future__ import annotations

from collections import Counter

import pytest

from infra import topology
from tests.faults.injector import KINDS
from tests.faults.scenarios import SCENARIOS

REQUESTS = 4
RATE = 0.3
SEED = 5


def test_every_function_of_the_topology_has_a_scenario() -> None:
    assert set(SCENARIOS) == set(topology.FUNCTIONS)


# Functions that call no AWS service (the console serves its own files): nothing to fault; their
# scenario proves they still make no call.
WITHOUT_AWS_CALLS = frozenset({"console"})


@pytest.mark.parametrize("function", sorted(topology.FUNCTIONS))
def test_faults_lose_nothing_and_send_nothing_twice_beyond_retries(function: str) -> None:
    # A function making few AWS calls may draw no fault with one seed: the next seed, then.
    for seed in range(SEED, SEED + 5):
        row = SCENARIOS[function](REQUESTS, RATE, seed)
        if row.faults.injected_total:
            break
    assert row.check() == [], row
    assert row.lost == 0 and row.delivered == row.acknowledged, row
    assert row.acknowledged + row.in_dlq + row.unacknowledged >= row.requests or row.source == "schedule", row
    if function in WITHOUT_AWS_CALLS:
        assert row.faults.calls == 0, f"{function} made AWS calls: give it a scenario that faults them"
    else:
        assert row.faults.injected_total > 0, "no fault was injected: the scenario proves nothing"


def test_the_injector_injects_each_kind_and_botocore_absorbs_some() -> None:
    """Throttling, 5xx and timeouts reach botocore as AWS's answers (its retries absorb most);
    a timeout after AWS applied a write has applied it; PutEvents partial failures reach the caller."""
    from botocore.exceptions import BotoCoreError, ClientError

    from switchboard_core import aws
    from tests.faults.harness import fault_world

    with fault_world(0.5, 3) as world:
        table = world.names.table("event_log")
        outcomes: Counter[str] = Counter()
        with world.injector.active():
            for n in range(40):
                try:
                    aws.client("dynamodb").put_item(TableName=table, Item={"id": {"S": f"e{n}"}})
                    answer = aws.client("events").put_events(
                        Entries=[
                            {
                                "Source": "switchboard.test",
                                "DetailType": "t",
                                "Detail": "{}",
                                "EventBusName": world.names.bus,
                            }
                        ]
                        * 3
                    )
                    outcomes["partial"] += bool(answer["FailedEntryCount"])
                except (ClientError, BotoCoreError) as error:
                    outcomes[type(error).__name__] += 1
        stats = world.injector.stats
        assert set(stats.injected) == set(KINDS), stats
        assert outcomes["partial"] > 0 and stats.surfaced < stats.injected_total
        # Every put that answered is stored, and a read timeout's put may be stored too.
        stored = aws.client("dynamodb").scan(TableName=table)["Items"]
        assert len(stored) >= 40 - sum(outcomes[kind] for kind in outcomes if kind != "partial")
