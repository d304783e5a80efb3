"""Contacts: one person behind many identities (phone, e-mail, social handles, CRM ids).

Storage (one DynamoDB table, `pk` only):

    CONTACT#<id>                     the contact: tenant, identities, attributes, consent
    IDENTITY#<tenant>#<kind>#<value> which contact owns an identity (conditional put)
    MERGE#<id>                       a merge: which contact went into which, with what
    TIMELINE#<event id>              one event of the contact's, listed by the `by_contact`
                                     index (contact_id, at) newest first

An identity is claimed with a conditional put, so two webhooks of one stranger in
the same second end with one contact: the loser of the race reads the winner's
claim. When an event links identities owned by two contacts (a CRM contact that
carries both the phone of an SMS sender and the e-mail of a ticket requester), the
younger contact is merged into the older one; the merge is recorded with the
identities it moved, and `unmerge` puts them back.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from switchboard_core.dynamo import conditional_write
from switchboard_core.events import Contact as EventContact

IdentityKind = Literal["phone", "email", "handle", "crm"]
MAX_MERGE_HOPS = 8  # merged contacts point at their survivor; chains stay short


class Identity(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: IdentityKind
    value: str

    @property
    def token(self) -> str:
        return f"{self.kind}#{self.value}"

    @classmethod
    def parse(cls, token: str) -> Identity:
        kind, _, value = token.partition("#")
        return cls(kind=kind, value=value)


class Consent(BaseModel):
    opted_out: bool = False
    channel: str | None = None
    source: str | None = Field(default=None, description="The event id that recorded the opt-out or opt-in.")
    at: AwareDatetime | None = None


class ContactRecord(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    tenant: str
    identities: list[str] = Field(default_factory=list)
    attributes: dict[str, str] = Field(default_factory=dict)
    consent: Consent = Field(default_factory=Consent)
    merged_into: str | None = None
    merged_from: list[str] = Field(default_factory=list, description="contacts merged into this one")
    merges: list[str] = Field(default_factory=list, description="ids of the merges into this one (to undo one)")
    created_at: AwareDatetime
    updated_at: AwareDatetime


class MergeRecord(BaseModel):
    id: str
    tenant: str
    survivor: str
    merged: str
    identities: list[str]
    reason: str
    at: AwareDatetime
    undone_at: AwareDatetime | None = None


class TimelinePosition(BaseModel):
    """Where a page of a contact's timeline stopped: the `at` of its last entry."""

    model_config = ConfigDict(extra="forbid")

    at: str


def identities_of(contact: EventContact) -> list[Identity]:
    """The identities an event's contact carries, in a stable order."""
    found: list[Identity] = []
    if contact.phone:
        found.append(Identity(kind="phone", value=contact.phone))
    if contact.email:
        found.append(Identity(kind="email", value=contact.email))
    for handle in contact.handles:
        if handle.id or handle.handle:
            found.append(Identity(kind="handle", value=f"{handle.platform}:{handle.id or handle.handle}"))
    for provider, ident in sorted(contact.crm_ids.items()):
        found.append(Identity(kind="crm", value=f"{provider}:{ident}"))
    return list(dict.fromkeys(found))


class ContactStore:
    def __init__(self, table: Any) -> None:
        self._table = table

    # --- reads -------------------------------------------------------------------------

    def get(self, contact_id: str, *, follow_merges: bool = True) -> ContactRecord | None:
        for _ in range(MAX_MERGE_HOPS):
            item = self._table.get_item(Key={"pk": f"CONTACT#{contact_id}"}, ConsistentRead=True).get("Item")
            if item is None:
                return None
            record = ContactRecord.model_validate(item)
            if not (follow_merges and record.merged_into):
                return record
            contact_id = record.merged_into
        raise RuntimeError(f"merge chain from {contact_id} is longer than {MAX_MERGE_HOPS}")

    def owner(self, tenant: str, identity: Identity) -> str | None:
        item = self._table.get_item(Key={"pk": identity_key(tenant, identity)}, ConsistentRead=True).get("Item")
        return item["contact_id"] if item else None

    # --- resolution --------------------------------------------------------------------

    def resolve(
        self, tenant: str, identities: Iterable[Identity], *, reason: str, now: datetime
    ) -> ContactRecord | None:
        """The one contact these identities belong to, creating or merging as needed.
        None when the event carries no identity at all. Each contact read here is read once:
        a known person's event costs a read of each identity and of the contact."""
        wanted = list(identities)
        if not wanted:
            return None
        records: dict[str, ContactRecord] = {}  # the live contacts read on the way, by id
        owners = {ident: self._live_owner(tenant, ident, records) for ident in wanted}
        known = sorted({c for c in owners.values() if c}, key=lambda cid: (records[cid].created_at, cid))
        # A contact created here is known without reading it back, as long as every write to
        # it below is one of ours that applied (else it is read again at the end).
        created: ContactRecord | None = None
        if known:
            survivor = known[0]
        else:
            survivor, created = self._claim_new(tenant, wanted[0], now)
            owners[wanted[0]] = survivor  # claimed (by this contact, or by the one that won it)
        changed = not known or len(known) > 1
        for other in known[1:]:
            self.merge(tenant, survivor=survivor, merged=other, reason=reason, now=now)
        for ident in wanted:
            if owners[ident] is None:
                changed = True
                winner = self._claim(tenant, ident, survivor, now)
                if winner == survivor:
                    added = self._add_identity(survivor, ident, now)
                    if created is not None and added:
                        created.identities.append(ident.token)
                    else:
                        created = None
                else:  # claimed concurrently by another contact: they are one person
                    first, second = sorted((survivor, winner), key=self._created)
                    self.merge(tenant, survivor=first, merged=second, reason=reason, now=now)
                    survivor, created = first, None
        if not changed:
            record: ContactRecord | None = records[survivor]
        elif created is not None and created.id == survivor:
            record = created
        else:
            record = self.get(survivor)
        assert record is not None
        return record

    def _live_owner(
        self, tenant: str, identity: Identity, records: dict[str, ContactRecord] | None = None
    ) -> str | None:
        """The live contact (merges followed) that owns `identity`; `records` keeps what was read."""
        owner = self.owner(tenant, identity)
        if owner is None:
            return None
        record = records[owner] if records is not None and owner in records else self.get(owner)
        if record is not None and records is not None:
            records[record.id] = record
        return record.id if record else None

    def _created(self, contact_id: str) -> tuple[datetime, str]:
        record = self.get(contact_id, follow_merges=False)
        assert record is not None
        return record.created_at, record.id

    def _claim_new(self, tenant: str, first: Identity, now: datetime) -> tuple[str, ContactRecord | None]:
        """Create a contact and claim its first identity: the owner of that identity, and the
        contact written when it is ours. The contact is written first, so a claim never points
        at a missing contact; if another request claimed the identity first, the unreferenced
        new contact is deleted and theirs is used."""
        record = ContactRecord(
            id="ct_" + secrets.token_hex(8), tenant=tenant, identities=[first.token], created_at=now, updated_at=now
        )
        self._table.put_item(Item=record.model_dump(mode="json", exclude_none=True) | {"pk": f"CONTACT#{record.id}"})
        winner = self._claim(tenant, first, record.id, now)
        if winner != record.id:
            self._table.delete_item(Key={"pk": f"CONTACT#{record.id}"})
            return winner, None
        return winner, record

    def _claim(self, tenant: str, identity: Identity, contact_id: str, now: datetime) -> str:
        """Give `identity` to `contact_id` unless someone has it; return its owner."""
        if not conditional_write(
            self._table.put_item,
            Item={"pk": identity_key(tenant, identity), "contact_id": contact_id, "claimed_at": now.isoformat()},
            ConditionExpression="attribute_not_exists(pk)",
        ):
            owner = self._live_owner(tenant, identity)
            assert owner is not None  # claims are never deleted and point at written contacts
            return owner
        return contact_id

    def _add_identity(self, contact_id: str, identity: Identity, now: datetime) -> bool:
        """Whether the identity was added (False: the contact had it already)."""
        return conditional_write(
            self._table.update_item,
            Key={"pk": f"CONTACT#{contact_id}"},
            UpdateExpression="SET identities = list_append(identities, :new), updated_at = :now",
            ConditionExpression="attribute_exists(pk) AND NOT contains(identities, :token)",
            ExpressionAttributeValues={":new": [identity.token], ":token": identity.token, ":now": now.isoformat()},
        )

    # --- merges ------------------------------------------------------------------------

    def merge(self, tenant: str, *, survivor: str, merged: str, reason: str, now: datetime) -> MergeRecord:
        """Move every identity of `merged` to `survivor`; `merged` then points at it."""
        if survivor == merged:
            raise ValueError("a contact cannot be merged into itself")
        source = self.get(merged, follow_merges=False)
        target = self.get(survivor, follow_merges=False)
        assert source is not None and target is not None
        record = MergeRecord(
            id="mg_" + secrets.token_hex(8),
            tenant=tenant,
            survivor=survivor,
            merged=merged,
            identities=source.identities,
            reason=reason,
            at=now,
        )
        for token in source.identities:
            self._table.put_item(
                Item={"pk": f"IDENTITY#{tenant}#{token}", "contact_id": survivor, "claimed_at": now.isoformat()}
            )
        attributes = {**source.attributes, **target.attributes}  # the survivor's values win
        consent = (
            target.consent
            if target.consent.at and (not source.consent.at or target.consent.at >= source.consent.at)
            else source.consent
        )
        self._table.update_item(
            Key={"pk": f"CONTACT#{survivor}"},
            UpdateExpression="SET identities = :ids, attributes = :attrs, consent = :consent, "
            "merged_from = :from, merges = :merges, updated_at = :now",
            ExpressionAttributeValues={
                ":ids": list(dict.fromkeys(target.identities + source.identities)),
                ":attrs": attributes,
                ":consent": consent.model_dump(mode="json", exclude_none=True),
                ":from": list(dict.fromkeys([*target.merged_from, merged, *source.merged_from])),
                ":merges": list(dict.fromkeys([*target.merges, record.id, *source.merges])),
                ":now": now.isoformat(),
            },
        )
        self._table.update_item(
            Key={"pk": f"CONTACT#{merged}"},
            UpdateExpression="SET merged_into = :survivor, updated_at = :now",
            ExpressionAttributeValues={":survivor": survivor, ":now": now.isoformat()},
        )
        self._table.put_item(Item=record.model_dump(mode="json", exclude_none=True) | {"pk": f"MERGE#{record.id}"})
        return record

    def merge_record(self, merge_id: str) -> MergeRecord | None:
        item = self._table.get_item(Key={"pk": f"MERGE#{merge_id}"}, ConsistentRead=True).get("Item")
        return MergeRecord.model_validate(item) if item else None

    def unmerge(self, merge_id: str, now: datetime) -> ContactRecord:
        """Undo a merge: the merged contact gets its identities back and stands alone again."""
        item = self._table.get_item(Key={"pk": f"MERGE#{merge_id}"}, ConsistentRead=True).get("Item")
        if item is None:
            raise KeyError(merge_id)
        record = MergeRecord.model_validate(item)
        if record.undone_at:
            raise ValueError(f"merge {merge_id} was already undone")
        for token in record.identities:
            self._table.put_item(
                Item={
                    "pk": f"IDENTITY#{record.tenant}#{token}",
                    "contact_id": record.merged,
                    "claimed_at": now.isoformat(),
                }
            )
        survivor = self.get(record.survivor, follow_merges=False)
        assert survivor is not None
        self._table.update_item(
            Key={"pk": f"CONTACT#{record.survivor}"},
            UpdateExpression="SET identities = :ids, merged_from = :from, merges = :merges, updated_at = :now",
            ExpressionAttributeValues={
                ":ids": [t for t in survivor.identities if t not in record.identities],
                ":from": [c for c in survivor.merged_from if c != record.merged],
                ":merges": [m for m in survivor.merges if m != record.id],
                ":now": now.isoformat(),
            },
        )
        self._table.update_item(
            Key={"pk": f"CONTACT#{record.merged}"},
            UpdateExpression="REMOVE merged_into SET updated_at = :now",
            ExpressionAttributeValues={":now": now.isoformat()},
        )
        self._table.update_item(
            Key={"pk": f"MERGE#{merge_id}"},
            UpdateExpression="SET undone_at = :now",
            ExpressionAttributeValues={":now": now.isoformat()},
        )
        restored = self.get(record.merged, follow_merges=False)
        assert restored is not None
        return restored

    # --- timeline --------------------------------------------------------------------------

    def add_to_timeline(self, contact_id: str, entry: dict[str, Any], event_id: str, at: datetime) -> None:
        """Record one event on the contact's timeline (a redelivery rewrites the same item)."""
        self._table.put_item(Item=timeline_item(contact_id, entry, event_id, at))

    def timeline(
        self, contact: ContactRecord, limit: int, cursor: dict[str, str] | None = None
    ) -> tuple[list[dict[str, Any]], dict[str, str] | None]:
        """Newest first across the contact and every contact merged into it."""
        from boto3.dynamodb.conditions import Key

        entries: list[dict[str, Any]] = []
        for contact_id in [contact.id, *contact.merged_from]:
            kwargs: dict[str, Any] = {
                "IndexName": "by_contact",
                "ScanIndexForward": False,
                "KeyConditionExpression": Key("contact_id").eq(contact_id),
            }
            if cursor:
                kwargs["KeyConditionExpression"] &= Key("at").lt(cursor["at"])
            # Each contact's entries come newest first, so its first limit + 1 are all the merged
            # page can take from it (the one extra says whether a next page exists): one small
            # query per contact, however long the timelines are.
            taken: list[dict[str, Any]] = []
            while len(taken) <= limit:  # one page, unless DynamoDB's 1 MB per page cut it short
                kwargs["Limit"] = limit + 1 - len(taken)
                page = self._table.query(**kwargs)
                taken.extend(page.get("Items", []))
                if "LastEvaluatedKey" not in page:
                    break
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
            entries.extend(taken)
        entries.sort(key=lambda item: item["at"], reverse=True)
        page_items = entries[:limit]
        next_cursor = {"at": page_items[-1]["at"]} if len(entries) > limit else None
        return [item["entry"] | {"event_id": item["pk"].removeprefix("TIMELINE#")} for item in page_items], next_cursor

    # --- attributes and consent ----------------------------------------------------------

    def update_attributes(self, contact_id: str, attributes: dict[str, str], now: datetime) -> None:
        if not attributes:
            return
        names = {f"#a{i}": name for i, name in enumerate(attributes)}
        values = {f":a{i}": value for i, value in enumerate(attributes.values())}
        sets = ", ".join(f"attributes.#a{i} = :a{i}" for i in range(len(attributes)))
        self._table.update_item(
            Key={"pk": f"CONTACT#{contact_id}"},
            UpdateExpression=f"SET {sets}, updated_at = :now",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={**values, ":now": now.isoformat()},
        )

    def remove_attributes(self, contact_id: str, names: Iterable[str], now: datetime) -> None:
        """Drop attributes (a campaign's `update_contact` step); absent ones are no error."""
        wanted = list(dict.fromkeys(names))
        if not wanted:
            return
        self._table.update_item(
            Key={"pk": f"CONTACT#{contact_id}"},
            UpdateExpression="REMOVE "
            + ", ".join(f"attributes.#r{i}" for i in range(len(wanted)))
            + " SET updated_at = :now",
            ExpressionAttributeNames={f"#r{i}": name for i, name in enumerate(wanted)},
            ExpressionAttributeValues={":now": now.isoformat()},
        )

    def record_consent(self, contact_id: str, *, opted_out: bool, channel: str, source: str, at: datetime) -> None:
        """Keep the newest consent decision: an older, redelivered event cannot undo a newer one."""
        consent = Consent(opted_out=opted_out, channel=channel, source=source, at=at)
        conditional_write(
            self._table.update_item,
            Key={"pk": f"CONTACT#{contact_id}"},
            UpdateExpression="SET consent = :consent, updated_at = :now",
            # No decision yet: no `at`, or a null one (contacts merged before either had one).
            ConditionExpression="attribute_not_exists(consent.#at) OR attribute_type(consent.#at, :null) "
            "OR consent.#at <= :at",
            ExpressionAttributeNames={"#at": "at"},
            ExpressionAttributeValues={
                ":consent": consent.model_dump(mode="json"),
                ":at": at.isoformat(),
                ":null": "NULL",
                ":now": at.isoformat(),
            },
        )


def timeline_item(contact_id: str, entry: dict[str, Any], event_id: str, at: datetime) -> dict[str, Any]:
    """One event on a contact's timeline, as stored (listed by the `by_contact` index)."""
    return {
        "pk": f"TIMELINE#{event_id}",
        "contact_id": contact_id,
        "at": f"{at.isoformat()}#{event_id}",
        "entry": entry,
    }


def identity_key(tenant: str, identity: Identity) -> str:
    return f"IDENTITY#{tenant}#{identity.token}"
