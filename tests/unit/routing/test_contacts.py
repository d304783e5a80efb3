"""Identity resolution: one person across channels, merges that can be undone, races."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from infra import topology
from infra.local.emulator import create_table
from switchboard_core import aws
from switchboard_core.events import Contact, SocialHandle
from switchboard_core.routing.contacts import ContactStore, Identity, identities_of
from tests.conftest import AtomicTable

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
PHONE = Identity(kind="phone", value="+14155550100")
EMAIL = Identity(kind="email", value="ana@example.com")
HANDLE = Identity(kind="handle", value="x:1234")


@pytest.fixture
def store(aws_world):
    create_table(aws.client("dynamodb"), "contacts-test", topology.Table("contacts", partition_key="pk"))
    return ContactStore(AtomicTable(aws.resource("dynamodb").Table("contacts-test")))


def test_identities_of_an_event_contact():
    contact = Contact(
        phone="+14155550100",
        email="Ana@Example.com",
        handles=[SocialHandle(platform="x", id="1234", handle="@ana")],
        crm_ids={"hubspot": "51"},
    )
    assert [i.token for i in identities_of(contact)] == [
        "phone#+14155550100",
        "email#ana@example.com",
        "handle#x:1234",
        "crm#hubspot:51",
    ]
    assert identities_of(Contact()) == []


def test_a_stranger_becomes_a_contact_and_is_found_again(store):
    first = store.resolve("acme", [PHONE], reason="e1", now=NOW)
    again = store.resolve("acme", [PHONE], reason="e2", now=NOW)
    assert first.id == again.id and first.identities == ["phone#+14155550100"]
    assert store.resolve("globex", [PHONE], reason="e3", now=NOW).id != first.id  # tenants never share


def test_a_stranger_with_two_identities_is_answered_as_stored_without_reading_it_back(store):
    created = store.resolve("acme", [PHONE, HANDLE], reason="e1", now=NOW)
    assert created == store.get(created.id)
    assert created.identities == [PHONE.token, HANDLE.token]
    assert store.owner("acme", PHONE) == store.owner("acme", HANDLE) == created.id


def test_an_event_linking_two_contacts_merges_them_into_the_older(store):
    by_phone = store.resolve("acme", [PHONE], reason="sms", now=NOW)
    by_email = store.resolve("acme", [EMAIL], reason="ticket", now=NOW + timedelta(minutes=1))
    merged = store.resolve("acme", [PHONE, EMAIL, HANDLE], reason="crm-contact", now=NOW + timedelta(minutes=2))
    assert merged.id == by_phone.id
    assert set(merged.identities) == {PHONE.token, EMAIL.token, HANDLE.token}
    assert store.get(by_email.id).id == by_phone.id  # the merged contact points at the survivor
    assert store.owner("acme", EMAIL) == by_phone.id


def test_a_merge_is_recorded_and_can_be_undone(store):
    old = store.resolve("acme", [PHONE], reason="sms", now=NOW)
    young = store.resolve("acme", [EMAIL], reason="ticket", now=NOW + timedelta(minutes=1))
    record = store.merge("acme", survivor=old.id, merged=young.id, reason="manual", now=NOW + timedelta(minutes=2))
    assert record.identities == [EMAIL.token]
    restored = store.unmerge(record.id, NOW + timedelta(minutes=3))
    assert restored.id == young.id and restored.merged_into is None
    assert store.owner("acme", EMAIL) == young.id
    assert store.get(old.id).identities == [PHONE.token]
    with pytest.raises(ValueError):
        store.unmerge(record.id, NOW + timedelta(minutes=4))


def test_attributes_and_newest_consent_win(store):
    contact = store.resolve("acme", [PHONE], reason="sms", now=NOW)
    store.update_attributes(contact.id, {"tier": "gold", "language": "de"}, NOW)
    store.record_consent(contact.id, opted_out=True, channel="sms", source="STOP", at=NOW + timedelta(minutes=5))
    store.record_consent(contact.id, opted_out=False, channel="crm", source="old", at=NOW)  # older: ignored
    record = store.get(contact.id)
    assert record.attributes == {"tier": "gold", "language": "de"}
    assert record.consent.opted_out and record.consent.source == "STOP"


def test_two_webhooks_of_one_stranger_at_once_make_one_contact(store):
    for attempt in range(10):
        identity = Identity(kind="phone", value=f"+1415555{attempt:04d}")
        barrier = threading.Barrier(4)
        found: list[str] = []

        def resolve(
            identity: Identity = identity, barrier: threading.Barrier = barrier, found: list[str] = found
        ) -> None:
            barrier.wait()
            found.append(store.resolve("acme", [identity], reason="race", now=NOW).id)

        threads = [threading.Thread(target=resolve) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(set(found)) == 1, found
        assert store.get(found[0]).identities == [identity.token]


@pytest.mark.parametrize("null_at_stored", [False, True])
def test_an_opt_out_is_recorded_on_contacts_merged_before_any_consent(store, null_at_stored):
    old = store.resolve("acme", [PHONE], reason="sms", now=NOW)
    young = store.resolve("acme", [EMAIL], reason="ticket", now=NOW + timedelta(minutes=1))
    store.merge("acme", survivor=old.id, merged=young.id, reason="crm", now=NOW + timedelta(minutes=2))
    if null_at_stored:  # as merges wrote it before: a consent whose `at` is null
        store._table.update_item(
            Key={"pk": f"CONTACT#{old.id}"},
            UpdateExpression="SET consent = :c",
            ExpressionAttributeValues={":c": {"opted_out": False, "at": None}},
        )
    store.record_consent(old.id, opted_out=True, channel="crm", source="unsubscribed", at=NOW + timedelta(minutes=3))
    assert store.get(old.id).consent.opted_out is True
