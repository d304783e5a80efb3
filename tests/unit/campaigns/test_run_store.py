"""The campaign_runs table against moto: runs written on the sequence read (a stale write
refused), counters moved with the state exactly once, action claims, provider pointers,
recent sends for the frequency cap, and the admin's listings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from switchboard_core.campaigns.run_store import ClaimResult, RunStore
from switchboard_core.campaigns.runs import CounterMove, Run, RunContact, RunStatus, RunTrigger
from tests.unit.campaigns.runs_table import create_runs_table

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
LEASE = timedelta(seconds=90)


@pytest.fixture
def table(aws_world):
    return create_runs_table()


@pytest.fixture
def store(table):
    return RunStore(table)


def make_run(
    run_id: str = "run_1",
    campaign: str = "cmp_1",
    contact: str = "ct_1",
    status: RunStatus = RunStatus.WAITING,
    sequence: int = 1,
    started: datetime = NOW,
    version: int = 1,
) -> Run:
    finished = status in (RunStatus.COMPLETED, RunStatus.STOPPED)
    return Run(
        id=run_id,
        tenant="acme",
        campaign=campaign,
        campaign_name="welcome",
        version=version,
        contact=RunContact(id=contact, phone="+15550001111"),
        trigger=RunTrigger(event_id="ev_1"),
        status=status,
        current_step=None if finished else "hello",
        sequence=sequence,
        started_at=started,
        updated_at=started,
        ended_at=started if finished else None,
    )


def test_create_then_read_with_outbox(store):
    run = make_run()
    outbox = [{"kind": "publish", "event": {"n": 1.5}}]
    assert store.create(run, outbox) is True
    stored = store.read("run_1")
    assert stored is not None
    assert stored.run == run
    assert stored.outbox == outbox
    assert stored.sequence == 1
    assert store.get("run_1") == run
    assert store.get("run_missing") is None


def test_second_create_of_the_same_run_is_refused_and_counts_nothing(store):
    moves = [CounterMove(step="hello", counter="entered")]
    assert store.create(make_run(), [], moves) is True
    assert store.create(make_run(sequence=5), [{"kind": "x"}], moves) is False
    assert store.read("run_1").sequence == 1
    assert store.counts("cmp_1") == {1: {"hello": {"entered": 1, "sent": 0, "replied": 0, "failed": 0, "converted": 0}}}


def test_save_is_conditional_on_the_sequence_read(store):
    store.create(make_run())
    moves = [CounterMove(step="hello", counter="sent"), CounterMove(step="ask", counter="entered")]
    assert store.save(make_run(sequence=2), [], expected_sequence=1, counters=moves) is True
    # A second writer that read sequence 1 loses, and its counters move nothing.
    assert store.save(make_run(sequence=2), [{"kind": "x"}], expected_sequence=1, counters=moves) is False
    assert store.read("run_1").outbox == []
    counts = store.counts("cmp_1")[1]
    assert counts["hello"]["sent"] == 1
    assert counts["ask"]["entered"] == 1


def test_save_without_counters_is_conditional_too(store):
    store.create(make_run())
    assert store.save(make_run(sequence=2), [], expected_sequence=7) is False
    assert store.save(make_run(sequence=2), [], expected_sequence=1) is True


def test_counters_add_per_version_and_step(store):
    store.create(make_run(), [], [CounterMove(step="hello", counter="entered")] * 2)
    store.create(make_run("run_2", version=2), [], [CounterMove(step="hello", counter="entered")])
    counts = store.counts("cmp_1")
    assert counts[1]["hello"]["entered"] == 2
    assert counts[2]["hello"]["entered"] == 1
    assert store.counts("cmp_other") == {}


def test_set_outbox_only_on_the_same_sequence(store):
    store.create(make_run(), [{"a": 1}, {"b": 2}])
    assert store.set_outbox(make_run(), [{"b": 2}]) is True
    assert store.read("run_1").outbox == [{"b": 2}]
    assert store.set_outbox(make_run(sequence=2), []) is False
    assert store.read("run_1").outbox == [{"b": 2}]


def test_a_finished_run_with_work_left_stays_listed_until_it_is_settled(store):
    ended = make_run(status=RunStatus.COMPLETED, sequence=3)
    store.create(ended, [{"do": "publish"}])
    assert store.in_flight_for_campaign("cmp_1") == ["run_1"]
    assert [run.finished for run in store.for_contact("acme", "ct_1")] == [True]
    assert store.set_outbox(ended, []) is True
    assert store.in_flight_for_campaign("cmp_1") == []
    assert store.for_contact("acme", "ct_1") == []


def test_finished_runs_expire_and_leave_the_in_flight_listings(store, table):
    store.create(make_run("run_1"))
    store.create(make_run("run_2", status=RunStatus.COMPLETED, started=NOW + timedelta(minutes=1)))
    store.create(make_run("run_3", status=RunStatus.ACTIVE, started=NOW + timedelta(minutes=2)))
    store.create(make_run("run_4", contact="ct_2", status=RunStatus.STOPPED, started=NOW + timedelta(minutes=3)))
    assert sorted(store.in_flight_for_campaign("cmp_1")) == ["run_1", "run_3"]
    assert [run.id for run in store.for_contact("acme", "ct_1")] == ["run_1", "run_3"]
    assert store.for_contact("acme", "ct_2") == []
    assert store.for_contact("other", "ct_1") == []
    item = table.get_item(Key={"pk": "run#run_2", "sk": "state"})["Item"]
    assert int(item["expires_at"]) == int((NOW + timedelta(minutes=1, days=180)).timestamp())
    assert "expires_at" not in table.get_item(Key={"pk": "run#run_1", "sk": "state"})["Item"]


def test_list_for_campaign_newest_first_in_pages(store):
    for index in range(5):
        store.create(make_run(f"run_{index}", started=NOW + timedelta(minutes=index)))
    store.create(make_run("run_x", campaign="cmp_2"))
    first, cursor = store.list_for_campaign("cmp_1", limit=3)
    assert [run.id for run in first] == ["run_4", "run_3", "run_2"]
    assert cursor is not None
    second, cursor = store.list_for_campaign("cmp_1", limit=3, cursor=cursor)
    assert [run.id for run in second] == ["run_1", "run_0"]
    if cursor is not None:  # DynamoDB may hand a key for an empty last page
        third, _ = store.list_for_campaign("cmp_1", limit=3, cursor=cursor)
        assert third == []


def test_claims_once_then_done_with_the_result(store):
    assert store.claim("run_1", "run_1:hello:1", NOW, LEASE).status == "claimed"
    assert store.claim("run_1", "run_1:hello:1", NOW + timedelta(seconds=5), LEASE).status == "busy"
    result = ClaimResult(result="sent", provider="twilio", provider_message_id="SM1", connection="conn_1")
    store.finish_claim("run_1", "run_1:hello:1", result, NOW)
    again = store.claim("run_1", "run_1:hello:1", NOW + timedelta(days=1), LEASE)
    assert again.status == "done"
    assert again.result == result
    # Another visit of the step is another action.
    assert store.claim("run_1", "run_1:hello:2", NOW, LEASE).status == "claimed"


def test_a_claim_handed_off_and_left_pending_past_the_lease_is_abandoned_never_retaken(store):
    claim = store.claim("run_1", "k", NOW, LEASE)
    assert claim.token and store.hand_off("run_1", "k", claim.token, NOW)
    assert store.claim("run_1", "k", NOW + LEASE, LEASE).status == "abandoned"
    assert store.claim("run_1", "k", NOW + LEASE * 2, LEASE).status == "abandoned"


def test_a_claim_never_handed_off_is_taken_over_once_its_lease_ended_by_one_delivery(store):
    dead = store.claim("run_1", "k", NOW, LEASE)
    assert store.claim("run_1", "k", NOW + LEASE / 2, LEASE).status == "busy"  # its holder may be alive
    taken = store.claim("run_1", "k", NOW + LEASE, LEASE)
    assert taken.status == "claimed" and taken.token != dead.token
    assert store.claim("run_1", "k", NOW + LEASE, LEASE).status == "busy"  # a second one waits
    assert not store.hand_off("run_1", "k", dead.token, NOW + LEASE)  # the old holder may not act
    store.release_claim("run_1", "k", dead.token)  # nor let the new holder's claim go
    assert store.hand_off("run_1", "k", taken.token, NOW + LEASE)


def test_a_claim_aws_applied_but_answered_with_a_timeout_is_still_ours(store):
    class AppliedThenTimedOut:
        def __init__(self, table):
            self._table = table

        def __getattr__(self, name):
            return getattr(self._table, name)

        def put_item(self, **request):
            self._table.put_item(**request)
            return self._table.put_item(**request)  # botocore's retry: its condition fails

    retried = RunStore(AppliedThenTimedOut(store._table))
    claim = retried.claim("run_1", "k", NOW, LEASE)
    assert claim.status == "claimed" and claim.token
    assert store.claim("run_1", "k", NOW, LEASE).status == "busy"  # another delivery's is not


def test_a_released_claim_can_be_claimed_again(store):
    store.claim("run_1", "k", NOW, LEASE)
    store.release_claim("run_1", "k")
    assert store.claim("run_1", "k", NOW, LEASE).status == "claimed"


def test_a_done_claim_cannot_be_released(store):
    from botocore.exceptions import ClientError

    store.claim("run_1", "k", NOW, LEASE)
    store.finish_claim("run_1", "k", ClaimResult(result="failed", reason="bad number"), NOW)
    with pytest.raises(ClientError):
        store.release_claim("run_1", "k")
    assert store.claim("run_1", "k", NOW, LEASE).result.reason == "bad number"


def test_pointers_map_a_provider_message_back_to_its_action(store):
    store.put_pointer("twilio", "con_1", "CA123", "run_1", "run_1:call:1", NOW)
    assert store.pointer("twilio", "con_1", "CA123") == ("run_1", "run_1:call:1")
    assert store.pointer("twilio", "con_1", "CA999") is None
    assert store.pointer("vonage", "con_1", "CA123") is None
    # Ids some providers make unique only per account or bot: the connection tells them apart.
    assert store.pointer("twilio", "con_2", "CA123") is None
    store.put_pointer("twilio", "con_2", "CA123", "run_2", "run_2:call:1", NOW)
    assert store.pointer("twilio", "con_1", "CA123") == ("run_1", "run_1:call:1")


def test_recent_sends_count_each_send_once_within_the_window(store):
    day = timedelta(days=1)
    assert store.recent_sends("acme", "ct_1", day, NOW).count == 0
    store.record_send("acme", "ct_1", "a", NOW, day)
    store.record_send("acme", "ct_1", "a", NOW, day)  # a redelivery: same key
    store.record_send("acme", "ct_1", "b", NOW + timedelta(hours=2), day)
    recent = store.recent_sends("acme", "ct_1", day, NOW + timedelta(hours=3))
    assert recent.count == 2
    assert recent.oldest == NOW
    assert store.recent_sends("acme", "ct_1", day, NOW + timedelta(hours=25)).count == 1
    assert store.recent_sends("acme", "ct_2", day, NOW).count == 0


def test_recording_a_send_forgets_those_out_of_the_window(store, table):
    day = timedelta(days=1)
    store.record_send("acme", "ct_1", "a", NOW, day)
    store.record_send("acme", "ct_1", "b", NOW + timedelta(days=2), day)
    item = table.get_item(Key={"pk": "sends#acme#ct_1", "sk": "sends"})["Item"]
    assert set(item["sends"]) == {"b"}
