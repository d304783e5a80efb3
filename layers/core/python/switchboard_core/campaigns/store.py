"""Campaigns in DynamoDB (table `campaigns`).

A campaign is one partition (pk CAMPAIGN#<id>): its head (sk HEAD, the only item with
`tenant`, so the by_tenant index lists campaigns and nothing else) and one item per version
(sk VERSION#<10 digits>). A version is written once, conditionally; saving a new one moves
the head's `latest_version` in the same TransactWriteItems, conditional on the version the
editor started from, so a stale save changes nothing at all. Shares are a map on the head
(one key per grantee), set with one update each. Flows and triggers are stored as JSON text:
DynamoDB would turn their numbers into Decimals.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from datetime import datetime
from typing import Any

from switchboard_core.campaigns.models import Author, Campaign, CampaignVersion, Share

HEAD = "HEAD"
VERSION_PREFIX = "VERSION#"
# Why a transaction was cancelled, per item, when its condition did not hold or another
# transaction touched the same item: either way the caller's view is stale.
STALE_REASONS = ("ConditionalCheckFailed", "TransactionConflict")


def campaign_pk(campaign_id: str) -> str:
    return f"CAMPAIGN#{campaign_id}"


def version_sk(version: int) -> str:
    return f"{VERSION_PREFIX}{version:010d}"


def head_item(campaign: Campaign) -> dict[str, Any]:
    item = campaign.model_dump(mode="json", exclude_none=True, exclude={"shares"})
    item["shares"] = {share.grantee: share.model_dump(mode="json", exclude_none=True) for share in campaign.shares}
    item.update(pk=campaign_pk(campaign.id), sk=HEAD)
    return item


def campaign_from_item(item: dict[str, Any]) -> Campaign:
    data = {k: v for k, v in item.items() if k not in ("pk", "sk")}
    for number in ("latest_version", "published_version"):
        if number in data:
            data[number] = int(data[number])
    if "forked_from" in data:
        data["forked_from"] = {**data["forked_from"], "version": int(data["forked_from"]["version"])}
    data["shares"] = sorted(data.get("shares", {}).values(), key=lambda share: share["shared_at"])
    return Campaign.model_validate(data)


def version_item(version: CampaignVersion) -> dict[str, Any]:
    item = version.model_dump(mode="json", exclude_none=True, exclude={"flow", "trigger"})
    item["flow"] = version.flow.model_dump_json(exclude_defaults=False)
    if version.trigger is not None:
        item["trigger"] = version.trigger.model_dump_json()
    item.update(pk=campaign_pk(version.campaign), sk=version_sk(version.version))
    return item


def version_from_item(item: dict[str, Any]) -> CampaignVersion:
    data = {k: v for k, v in item.items() if k not in ("pk", "sk")}
    data["version"] = int(data["version"])
    data["flow"] = json.loads(data["flow"])
    if "trigger" in data:
        data["trigger"] = json.loads(data["trigger"])
    return CampaignVersion.model_validate(data)


class CampaignStore:
    """`versions_cached`: how many versions `version()` keeps in memory. A version is written once
    and never changed, so the campaigns function, which reads the run's version for every event it
    handles, reads and parses each one once per sandbox; the head (live version, stop, shares)
    changes, so it is always read."""

    def __init__(self, table: Any, versions_cached: int = 0) -> None:
        self._table = table
        self._versions_cached = versions_cached
        self._versions: OrderedDict[tuple[str, int], CampaignVersion] = OrderedDict()

    # --- writes: every one conditional ---------------------------------------------------------

    def _transact(self, items: list[dict[str, Any]]) -> bool:
        """Run one TransactWriteItems (the resource's client takes plain Python values): True when
        it applied, False when a condition did not hold (nothing was written); other errors raise."""
        from botocore.exceptions import ClientError

        for item in items:
            next(iter(item.values()))["TableName"] = self._table.name
        try:
            self._table.meta.client.transact_write_items(TransactItems=items)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            reasons = [reason.get("Code") for reason in exc.response.get("CancellationReasons", [])]
            if any(code in STALE_REASONS for code in reasons) or not reasons:
                return False
            raise
        return True

    def create(self, campaign: Campaign, first: CampaignVersion) -> None:
        """The head and its first version, together (a fork's too)."""
        created = self._transact(
            [
                {"Put": {"Item": head_item(campaign), "ConditionExpression": "attribute_not_exists(pk)"}},
                {"Put": {"Item": version_item(first), "ConditionExpression": "attribute_not_exists(pk)"}},
            ]
        )
        if not created:  # ids are random: a collision means a bug, not a retry
            raise RuntimeError(f"campaign {campaign.id} already exists")

    def save_version(self, version: CampaignVersion, expected_version: int) -> bool:
        """Write `version` (which must be expected_version + 1) and make it the latest, if the
        campaign's latest is still `expected_version`; False (and nothing written) otherwise."""
        return self._transact(
            [
                {"Put": {"Item": version_item(version), "ConditionExpression": "attribute_not_exists(pk)"}},
                {
                    "Update": {
                        "Key": {"pk": campaign_pk(version.campaign), "sk": HEAD},
                        "UpdateExpression": "SET latest_version = :next, updated_at = :now",
                        "ConditionExpression": "attribute_exists(pk) AND latest_version = :expected",
                        "ExpressionAttributeValues": {
                            ":next": version.version,
                            ":now": version.saved_at.isoformat(),
                            ":expected": expected_version,
                        },
                    }
                },
            ]
        )

    def publish(self, campaign_id: str, version: int, by: Author, now: datetime) -> bool:
        """Make `version` the live one (False when the campaign or that version does not exist)."""
        return self._transact(
            [
                {
                    "Update": {
                        "Key": {"pk": campaign_pk(campaign_id), "sk": HEAD},
                        "UpdateExpression": "SET published_version = :v, published_at = :now, published_by = :by",
                        "ConditionExpression": "attribute_exists(pk)",
                        "ExpressionAttributeValues": {
                            ":v": version,
                            ":now": now.isoformat(),
                            ":by": by.model_dump(mode="json"),
                        },
                    }
                },
                {
                    "Update": {
                        "Key": {"pk": campaign_pk(campaign_id), "sk": version_sk(version)},
                        # The first publication is the version's; a later re-publish leaves it.
                        "UpdateExpression": "SET published_at = if_not_exists(published_at, :now)",
                        "ConditionExpression": "attribute_exists(pk)",
                        "ExpressionAttributeValues": {":now": now.isoformat()},
                    }
                },
            ]
        )

    def unpublish(self, campaign_id: str, now: datetime, stopped_by: Author | None = None) -> bool:
        """No version live any more (a stopped campaign); False when the campaign does not exist.
        The versions keep their first publication time. With `stopped_by` it is a stop: its time
        is kept (`stopped_at`), and every run started before it is stopped."""
        from switchboard_core.dynamo import conditional_write

        values: dict[str, Any] = {":now": now.isoformat()}
        update = "REMOVE published_version, published_at, published_by SET updated_at = :now"
        if stopped_by is not None:
            update += ", stopped_at = :now, stopped_by = :by"
            values[":by"] = stopped_by.model_dump(mode="json")
        return conditional_write(
            self._table.update_item,
            Key={"pk": campaign_pk(campaign_id), "sk": HEAD},
            UpdateExpression=update,
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues=values,
        )

    def share(self, campaign_id: str, share: Share) -> bool:
        """Grant (or change) one grantee's access; False when the campaign does not exist."""
        from switchboard_core.dynamo import conditional_write

        return conditional_write(
            self._table.update_item,
            Key={"pk": campaign_pk(campaign_id), "sk": HEAD},
            UpdateExpression="SET shares.#grantee = :share, updated_at = :now",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeNames={"#grantee": share.grantee},
            ExpressionAttributeValues={
                ":share": share.model_dump(mode="json", exclude_none=True),
                ":now": share.shared_at.isoformat(),
            },
        )

    # --- reads ---------------------------------------------------------------------------------

    def get(self, campaign_id: str) -> Campaign | None:
        item = self._table.get_item(Key={"pk": campaign_pk(campaign_id), "sk": HEAD}, ConsistentRead=True)
        return campaign_from_item(item["Item"]) if "Item" in item else None

    def version(self, campaign_id: str, version: int) -> CampaignVersion | None:
        key = (campaign_id, version)
        if key in self._versions:
            self._versions.move_to_end(key)
            return self._versions[key]
        item = self._table.get_item(
            Key={"pk": campaign_pk(campaign_id), "sk": version_sk(version)}, ConsistentRead=True
        )
        if "Item" not in item:
            return None  # not cached: a version being created may appear on the next read
        found = version_from_item(item["Item"])
        if self._versions_cached:
            self._versions[key] = found
            if len(self._versions) > self._versions_cached:
                self._versions.popitem(last=False)
        return found

    def versions(self, campaign_id: str) -> list[CampaignVersion]:
        """Every version, oldest first."""
        from boto3.dynamodb.conditions import Key

        request: dict[str, Any] = {
            "KeyConditionExpression": Key("pk").eq(campaign_pk(campaign_id)) & Key("sk").begins_with(VERSION_PREFIX),
            "ConsistentRead": True,
        }
        found: list[CampaignVersion] = []
        while True:
            page = self._table.query(**request)
            found.extend(version_from_item(item) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return found
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def list_for_tenant(
        self, tenant: str, keep: Any, *, limit: int = 50, start_key: dict[str, Any] | None = None
    ) -> tuple[list[Campaign], dict[str, Any] | None]:
        """A page of the tenant's campaigns that `keep(campaign)` accepts, oldest first, and the
        key to continue from (None on the last page). Filtered here, not by DynamoDB: who may see
        a campaign depends on its shares and on the caller's teams."""
        from boto3.dynamodb.conditions import Key

        request: dict[str, Any] = {"IndexName": "by_tenant", "KeyConditionExpression": Key("tenant").eq(tenant)}
        if start_key:
            request["ExclusiveStartKey"] = start_key
        found: list[Campaign] = []
        while True:
            request["Limit"] = limit
            page = self._table.query(**request)
            for item in page.get("Items", []):
                campaign = campaign_from_item(item)
                if keep(campaign):
                    found.append(campaign)
                if len(found) == limit:
                    return found, {k: item[k] for k in ("pk", "sk", "tenant", "created_at")}
            last = page.get("LastEvaluatedKey")
            if not last:
                return found, None
            request["ExclusiveStartKey"] = last
