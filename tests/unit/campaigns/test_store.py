"""The campaigns table against moto: versions written once, a stale save refused with
nothing half-saved, publishing, shares, listing by tenant, and the diff of two versions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from switchboard_core import aws
from switchboard_core.campaigns.diff import diff_versions
from switchboard_core.campaigns.flow import Flow, Trigger
from switchboard_core.campaigns.models import Access, Author, Campaign, CampaignVersion, ForkedFrom, Share
from switchboard_core.campaigns.store import CampaignStore

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
ANA = Author(key_id="k1", name="ana")
FLOW = Flow.model_validate(
    {
        "start": "hello",
        "steps": {
            "hello": {"type": "send_message", "channel": "sms", "text": "Hi ${name}", "next": "done"},
            "done": {"type": "end"},
        },
    }
)


@pytest.fixture
def table(aws_world):
    return aws.resource("dynamodb").Table(aws_world.names.mapping()["table:campaigns"])


@pytest.fixture
def store(table):
    return CampaignStore(table)


def campaign(campaign_id: str = "cmp_1", tenant: str = "acme", **extra) -> Campaign:
    fields = {"name": "welcome", "owner": ANA, "created_at": NOW, "updated_at": NOW, "latest_version": 1}
    return Campaign(id=campaign_id, tenant=tenant, **(fields | extra))


def version(number: int, flow: Flow = FLOW, campaign_id: str = "cmp_1", **extra) -> CampaignVersion:
    return CampaignVersion(
        campaign=campaign_id, version=number, flow=flow, saved_at=NOW + timedelta(minutes=number), saved_by=ANA, **extra
    )


def edited(text: str) -> Flow:
    document = FLOW.model_dump(mode="json")
    document["steps"]["hello"]["text"] = text
    return Flow.model_validate(document)


def test_create_then_read_head_and_first_version(store):
    store.create(
        campaign(), version(1, trigger=Trigger(event_pattern={"detail-type": ["mention.created"], "n": [1.5]}))
    )
    assert store.get("cmp_1") == campaign()
    first = store.version("cmp_1", 1)
    assert first is not None and first.flow == FLOW and first.trigger.event_pattern["n"] == [1.5]
    assert store.get("cmp_2") is None and store.version("cmp_1", 2) is None
    with pytest.raises(RuntimeError):
        store.create(campaign(), version(1))


def test_saving_moves_the_head_and_keeps_every_version(store):
    store.create(campaign(), version(1))
    assert store.save_version(version(2, edited("v2")), expected_version=1)
    assert store.save_version(version(3, edited("v3")), expected_version=2)
    assert store.get("cmp_1").latest_version == 3
    assert [v.flow.steps["hello"].text for v in store.versions("cmp_1")] == ["Hi ${name}", "v2", "v3"]


def test_a_stale_save_changes_nothing(store, table):
    store.create(campaign(), version(1))
    assert store.save_version(version(2, edited("mine")), expected_version=1)
    before = sorted(table.scan()["Items"], key=lambda item: item["sk"])
    # A colleague who started from version 1 saves: refused, and neither item is written.
    assert not store.save_version(version(2, edited("theirs")), expected_version=1)
    assert not store.save_version(version(3, edited("theirs")), expected_version=1)
    assert sorted(table.scan()["Items"], key=lambda item: item["sk"]) == before
    assert store.version("cmp_1", 2).flow.steps["hello"].text == "mine"
    assert store.version("cmp_1", 3) is None and store.get("cmp_1").latest_version == 2
    assert not store.save_version(version(2, campaign_id="cmp_missing"), expected_version=1)


def test_publish_marks_the_head_and_the_version_once(store):
    store.create(campaign(), version(1))
    store.save_version(version(2), expected_version=1)
    assert store.publish("cmp_1", 1, ANA, NOW)
    assert store.publish("cmp_1", 2, ANA, NOW + timedelta(hours=1))
    assert store.publish("cmp_1", 1, ANA, NOW + timedelta(hours=2))  # back to 1: its first publication stays
    head = store.get("cmp_1")
    assert head.published_version == 1 and head.published_at == NOW + timedelta(hours=2) and head.published_by == ANA
    assert store.version("cmp_1", 1).published_at == NOW
    assert not store.publish("cmp_1", 9, ANA, NOW)
    assert store.get("cmp_1").published_version == 1
    assert not store.publish("cmp_missing", 1, ANA, NOW)


def test_shares_are_one_per_grantee(store):
    store.create(campaign(), version(1))
    viewer = Share(principal="k9", access=Access.VIEWER, shared_by=ANA, shared_at=NOW)
    assert store.share("cmp_1", viewer)
    assert store.share(
        "cmp_1", Share(team="support", access=Access.EDITOR, shared_by=ANA, shared_at=NOW + timedelta(1))
    )
    assert store.share("cmp_1", viewer.model_copy(update={"access": Access.EDITOR}))
    shares = store.get("cmp_1").shares
    assert [(s.principal, s.team, s.access) for s in shares] == [("k9", None, "editor"), (None, "support", "editor")]
    assert not store.share("cmp_missing", viewer)


def test_listing_pages_through_what_the_caller_may_see(store):
    for index in range(5):
        store.create(
            campaign(f"cmp_{index}", created_at=NOW + timedelta(minutes=index), name=f"c{index}"),
            version(1, campaign_id=f"cmp_{index}"),
        )
    store.create(campaign("cmp_other", tenant="globex"), version(1, campaign_id="cmp_other"))
    keep = lambda c: c.id != "cmp_2"  # noqa: E731
    page, last = store.list_for_tenant("acme", keep, limit=2)
    assert [c.id for c in page] == ["cmp_0", "cmp_1"] and last
    page, last = store.list_for_tenant("acme", keep, limit=2, start_key=last)
    assert [c.id for c in page] == ["cmp_3", "cmp_4"]
    page, last = store.list_for_tenant("acme", keep, limit=2, start_key=last)
    assert page == [] and last is None


def test_a_fork_records_its_origin(store):
    store.create(
        campaign("cmp_2", forked_from=ForkedFrom(campaign="cmp_1", version=3)), version(1, campaign_id="cmp_2")
    )
    assert store.get("cmp_2").forked_from == ForkedFrom(campaign="cmp_1", version=3)


def test_diff_names_added_removed_and_changed_steps_and_the_trigger():
    document = FLOW.model_dump(mode="json")
    document["steps"]["hello"].update(text="Hello ${name}", channel="whatsapp", next="wait")
    document["steps"]["wait"] = {"type": "wait", "duration": "PT1H", "next": "done"}
    before = version(1, trigger=Trigger(event_pattern={"detail-type": ["mention.created"]}))
    after = version(2, Flow.model_validate(document))
    diff = diff_versions(before, after)
    assert diff["from"] == 1 and diff["to"] == 2 and diff["start"] is None
    assert diff["steps"]["added"] == ["wait"] and diff["steps"]["removed"] == []
    assert diff["steps"]["changed"] == [
        {
            "step": "hello",
            "fields": [
                {"field": "channel", "from": "sms", "to": "whatsapp"},
                {"field": "next", "from": "done", "to": "wait"},
                {"field": "text", "from": "Hi ${name}", "to": "Hello ${name}"},
            ],
        }
    ]
    assert diff["trigger"]["to"] is None
    assert diff["trigger"]["fields"] == [
        {"field": "event_pattern.detail-type.0", "from": "mention.created", "to": None}
    ]
    assert diff_versions(before, before) == {
        "from": 1,
        "to": 1,
        "start": None,
        "steps": {"added": [], "removed": [], "changed": []},
        "trigger": None,
    }


def test_versions_are_read_once_when_cached_and_the_head_every_time(table):
    """The campaigns function's store keeps versions (immutable) but always reads the head."""
    from unittest import mock

    cached = CampaignStore(table, versions_cached=2)
    cached.create(campaign(), version(1))
    assert cached.save_version(version(2, edited("Hello ${name}")), expected_version=1)
    assert cached.save_version(version(3, edited("Hey ${name}")), expected_version=2)
    with mock.patch.object(table, "get_item", wraps=table.get_item) as reads:
        for _ in range(3):
            assert cached.version("cmp_1", 1) == version(1)
            assert cached.version("cmp_1", 2) == version(2, edited("Hello ${name}"))
        assert reads.call_count == 2  # one read per version
        cached.version("cmp_1", 3)  # a third evicts the least recently used (1)
        cached.version("cmp_1", 1)
        assert reads.call_count == 4
        assert cached.version("cmp_1", 9) is None and cached.version("cmp_1", 9) is None
        assert reads.call_count == 6  # a missing version is never cached: it may be written next
        cached.get("cmp_1")
        cached.get("cmp_1")
        assert reads.call_count == 8


def test_the_default_store_reads_every_time(store):
    from unittest import mock

    store.create(campaign(), version(1))
    with mock.patch.object(store._table, "get_item", wraps=store._table.get_item) as reads:
        store.version("cmp_1", 1)
        store.version("cmp_1", 1)
    assert reads.call_count == 2
