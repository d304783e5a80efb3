"""Routing configuration per tenant: the rule set in force, the taxonomy, responders
and round-robin cursors, in one table (`pk` = tenant, `sk` = item).

    pk TENANT#<tenant>  sk RULES             the rule set in force (validated before it is written)
    pk TENANT#<tenant>  sk TAXONOMY          topics and entity dictionaries
    pk TENANT#<tenant>  sk VERSIONS          the versions of both (0: none yet), a few bytes: what
                                             routing reads per event to know its parsed copies are current
    pk TENANT#<tenant>  sk RESPONDER#<id>    a responder, with its current load
    pk TENANT#<tenant>  sk TEAM#<name>        a team: what it handles, its hours
    pk TENANT#<tenant>  sk ROBIN#<team>      the last responder a round-robin queue assigned

Rule sets are validated by pydantic before they are stored and re-validated when read,
so the rule set in force is never invalid: a refused proposal leaves it untouched.

A rule set larger than COMPRESS_ABOVE is stored zlib-compressed (`body_zlib`, binary): the
5,000 rules validation allows are about 1.8 MB of JSON, far over DynamoDB's 400 KB item,
and rule sets compress well (names and conditions repeat), so they fit; `stored_rules`
is what is written, so the admin API can refuse (413) one that even compressed does not.

A save writes the document first and then raises its version in VERSIONS (never lowers it:
the write is conditional), so a reader that sees version n in VERSIONS finds a document of
version n or newer.
"""

from __future__ import annotations

import zlib
from datetime import datetime
from typing import Any, NamedTuple

from switchboard_core.dynamo import conditional_write
from switchboard_core.routing.assignment import Responder, Team
from switchboard_core.routing.rules import RuleSet
from switchboard_core.routing.sensing import Taxonomy

COMPRESS_ABOVE = 64 * 1024  # smaller rule sets stay readable JSON in the console


def stored_rules(rule_set: RuleSet) -> dict[str, str | bytes]:
    """The rule set as its item stores it: JSON `body`, or `body_zlib` when large."""
    body = rule_set.model_dump_json()
    if len(body) <= COMPRESS_ABOVE:
        return {"body": body}
    return {"body_zlib": zlib.compress(body.encode(), 9)}


def _rules_body(item: dict[str, Any]) -> str:
    if "body_zlib" in item:
        compressed = item["body_zlib"]
        return zlib.decompress(getattr(compressed, "value", compressed)).decode()
    return str(item["body"])


class Versions(NamedTuple):
    """The versions of a tenant's rule set and taxonomy in force (0: it has none)."""

    rules: int
    taxonomy: int


class RoutingConfigStore:
    def __init__(self, table: Any) -> None:
        self._table = table

    @staticmethod
    def _key(tenant: str, item: str) -> dict[str, str]:
        return {"pk": f"TENANT#{tenant}", "sk": item}

    def _get(self, tenant: str, item: str) -> dict[str, Any] | None:
        return self._table.get_item(Key=self._key(tenant, item), ConsistentRead=True).get("Item")

    # --- rules and taxonomy ------------------------------------------------------------

    def rules(self, tenant: str) -> tuple[RuleSet, int] | None:
        item = self._get(tenant, "RULES")
        return (RuleSet.stored(_rules_body(item)), int(item["version"])) if item else None

    def put_rules(self, tenant: str, rule_set: RuleSet, expected_version: int | None, now: datetime) -> int | None:
        """Store a validated rule set as the next version; None when `expected_version` is
        no longer the one in force (it guards against two editors overwriting each other;
        None: there must be none yet)."""
        version = (expected_version or 0) + 1
        condition = "attribute_not_exists(pk)" if expected_version is None else "version = :expected"
        values = {":expected": expected_version} if expected_version is not None else None
        kwargs: dict[str, Any] = {"ConditionExpression": condition}
        if values:
            kwargs["ExpressionAttributeValues"] = values
        saved = conditional_write(
            self._table.put_item,
            Item={
                **self._key(tenant, "RULES"),
                **stored_rules(rule_set),
                "version": version,
                "updated_at": now.isoformat(),
            },
            **kwargs,
        )
        if saved:
            self._raise_version(tenant, "rules", version)
        return version if saved else None

    def versions(self, tenant: str) -> Versions | None:
        """The versions in force, from one small consistent read; None when the tenant's
        configuration predates the VERSIONS item (read the documents, then `record_versions`)."""
        item = self._get(tenant, "VERSIONS")
        if item is None:
            return None
        return Versions(rules=int(item.get("rules", 0)), taxonomy=int(item.get("taxonomy", 0)))

    def record_versions(self, tenant: str, versions: Versions) -> None:
        """Write the versions of documents read without a VERSIONS item: each only where no save
        recorded one meanwhile (a save's version is newer and wins)."""
        self._table.update_item(
            Key=self._key(tenant, "VERSIONS"),
            UpdateExpression="SET #rules = if_not_exists(#rules, :rules), "
            "#taxonomy = if_not_exists(#taxonomy, :taxonomy)",
            ExpressionAttributeNames={"#rules": "rules", "#taxonomy": "taxonomy"},  # `rules` is a reserved word
            ExpressionAttributeValues={":rules": versions.rules, ":taxonomy": versions.taxonomy},
        )

    def _raise_version(self, tenant: str, document: str, version: int) -> None:
        conditional_write(
            self._table.update_item,
            Key=self._key(tenant, "VERSIONS"),
            UpdateExpression="SET #document = :version",
            ConditionExpression="attribute_not_exists(#document) OR #document < :version",
            ExpressionAttributeNames={"#document": document},
            ExpressionAttributeValues={":version": version},
        )

    def taxonomy(self, tenant: str) -> tuple[Taxonomy, int]:
        item = self._get(tenant, "TAXONOMY")
        return (Taxonomy.model_validate_json(item["body"]), int(item["version"])) if item else (Taxonomy(), 0)

    def put_taxonomy(self, tenant: str, taxonomy: Taxonomy, now: datetime) -> int:
        version = self.taxonomy(tenant)[1] + 1
        self._table.put_item(
            Item={
                **self._key(tenant, "TAXONOMY"),
                "body": taxonomy.model_dump_json(),
                "version": version,
                "updated_at": now.isoformat(),
            }
        )
        self._raise_version(tenant, "taxonomy", version)
        return version

    # --- responders ----------------------------------------------------------------------

    def responders(self, tenant: str) -> list[Responder]:
        from boto3.dynamodb.conditions import Key

        kwargs: dict[str, Any] = {
            "KeyConditionExpression": Key("pk").eq(f"TENANT#{tenant}") & Key("sk").begins_with("RESPONDER#"),
            "ConsistentRead": True,
        }
        found: list[Responder] = []
        while True:
            page = self._table.query(**kwargs)
            found.extend(
                Responder.model_validate_json(item["body"]).model_copy(update={"load": int(item["load"])})
                for item in page.get("Items", [])
            )
            if "LastEvaluatedKey" not in page:
                return found
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def responder(self, tenant: str, responder_id: str) -> Responder | None:
        item = self._get(tenant, f"RESPONDER#{responder_id}")
        if item is None:
            return None
        return Responder.model_validate_json(item["body"]).model_copy(update={"load": int(item["load"])})

    def put_responder(self, responder: Responder) -> None:
        """Create or replace a responder's profile; its current load is kept."""
        self._table.update_item(
            Key=self._key(responder.tenant, f"RESPONDER#{responder.id}"),
            UpdateExpression="SET body = :body, #load = if_not_exists(#load, :zero)",
            ExpressionAttributeNames={"#load": "load"},
            ExpressionAttributeValues={":body": responder.model_dump_json(exclude={"load"}), ":zero": 0},
        )

    def delete_responder(self, tenant: str, responder_id: str) -> None:
        self._table.delete_item(Key=self._key(tenant, f"RESPONDER#{responder_id}"))

    def take_capacity(self, responder: Responder) -> bool:
        """One more assignment for `responder` if it has room; False if it filled up meanwhile."""
        return conditional_write(
            self._table.update_item,
            Key=self._key(responder.tenant, f"RESPONDER#{responder.id}"),
            UpdateExpression="ADD #load :one",
            ConditionExpression="attribute_exists(pk) AND #load < :capacity",
            ExpressionAttributeNames={"#load": "load"},
            ExpressionAttributeValues={":one": 1, ":capacity": responder.capacity},
        )

    def release_capacity(self, tenant: str, responder_id: str) -> None:
        conditional_write(
            self._table.update_item,
            Key=self._key(tenant, f"RESPONDER#{responder_id}"),
            UpdateExpression="ADD #load :minus",
            ConditionExpression="#load > :zero",
            ExpressionAttributeNames={"#load": "load"},
            ExpressionAttributeValues={":minus": -1, ":zero": 0},
        )

    # --- teams --------------------------------------------------------------------------

    def teams(self, tenant: str) -> list[Team]:
        from boto3.dynamodb.conditions import Key

        page = self._table.query(
            KeyConditionExpression=Key("pk").eq(f"TENANT#{tenant}") & Key("sk").begins_with("TEAM#"),
            ConsistentRead=True,
        )
        return [Team.model_validate_json(item["body"]) for item in page.get("Items", [])]

    def put_team(self, tenant: str, team: Team) -> None:
        self._table.put_item(Item={**self._key(tenant, f"TEAM#{team.name}"), "body": team.model_dump_json()})

    def delete_team(self, tenant: str, name: str) -> bool:
        item = self._table.delete_item(Key=self._key(tenant, f"TEAM#{name}"), ReturnValues="ALL_OLD")
        return "Attributes" in item

    # --- round robin ---------------------------------------------------------------------

    def last_assigned(self, tenant: str, team: str) -> str | None:
        item = self._get(tenant, f"ROBIN#{team}")
        return item["responder_id"] if item else None

    def set_last_assigned(self, tenant: str, team: str, responder_id: str) -> None:
        self._table.put_item(Item={**self._key(tenant, f"ROBIN#{team}"), "responder_id": responder_id})
