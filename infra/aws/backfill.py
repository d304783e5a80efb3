"""Backfill the listing indexes' keys on items written before those indexes existed.

The event log's filtered listings (`event_log.by_tenant_type` and the rest of SELECTORS) and the
conversation list by status, assignee and topic read indexes keyed on composite attributes
(`tenant_type`, `tenant_status`, a topic membership item...). Items written by an earlier
version lack them, so they are missing from those listings until rewritten or expired. This
command writes the missing keys, computed exactly as the stores compute them on write:

    .venv/bin/python -m infra.aws.backfill --stack switchboard-prod [--region eu-west-1] [--dry-run]

It reads the table names from the stack's outputs (EventLogTableName, ConversationsTableName)
with the caller's AWS credentials, scans each table once, and only adds attributes (never
changes one an item has), so it can run while the hub is live and be run again.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from switchboard_core.dynamo import scan_all
from switchboard_core.event_log import index_keys as event_index_keys
from switchboard_core.routing.conversations import index_keys as conversation_index_keys
from switchboard_core.routing.conversations import topic_membership


@dataclass
class Backfilled:
    scanned: int = 0
    updated: int = 0
    memberships: int = 0


def missing(item: dict[str, Any], keys: dict[str, str]) -> dict[str, str]:
    """The index keys an item lacks (an existing value is never overwritten)."""
    return {name: value for name, value in keys.items() if name not in item}


def add_attributes(table: Any, key: dict[str, str], attributes: dict[str, str]) -> None:
    names = {f"#a{n}": name for n, name in enumerate(attributes)}
    values = {f":v{n}": value for n, value in enumerate(attributes.values())}
    table.update_item(
        Key=key,
        UpdateExpression="SET " + ", ".join(f"#a{n} = if_not_exists(#a{n}, :v{n})" for n in range(len(attributes))),
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=values,
    )


def backfill_event_log(table: Any, dry_run: bool = False) -> Backfilled:
    done = Backfilled()
    for item in scan_all(table):
        done.scanned += 1
        if "tenant" not in item or "sort_key" not in item:
            continue  # not an event
        lacking = missing(item, event_index_keys(item))
        if lacking:
            done.updated += 1
            if not dry_run:
                add_attributes(table, {"id": item["id"]}, lacking)
    return done


def conversations(table: Any) -> Iterator[dict[str, Any]]:
    for item in scan_all(table):
        if str(item.get("pk", "")).startswith("CONV#") and "tenant" in item:
            yield item


def backfill_conversations(table: Any, dry_run: bool = False) -> Backfilled:
    """Each conversation's status and assignee keys, and a membership item per topic it carries."""
    from switchboard_core.dynamo import conditional_write

    done = Backfilled()
    for item in conversations(table):
        done.scanned += 1
        lacking = missing(item, conversation_index_keys(item))
        if lacking:
            done.updated += 1
            if not dry_run:
                add_attributes(table, {"pk": item["pk"]}, lacking)
        for topic in sorted(item.get("topics") or ()):
            membership = topic_membership(item["id"], item["tenant"], topic, item["last_activity_at"])
            if dry_run or conditional_write(
                table.put_item, Item=membership, ConditionExpression="attribute_not_exists(pk)"
            ):
                done.memberships += 1
    return done


def stack_tables(stack: str, region: str | None) -> dict[str, str]:
    import boto3

    outputs = boto3.client("cloudformation", region_name=region).describe_stacks(StackName=stack)["Stacks"][0]
    by_key = {output["OutputKey"]: output["OutputValue"] for output in outputs.get("Outputs", [])}
    return {"event_log": by_key["EventLogTableName"], "conversations": by_key["ConversationsTableName"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack", required=True, help="the deployed stack's name, e.g. switchboard-prod")
    parser.add_argument("--region", default=None)
    parser.add_argument("--dry-run", action="store_true", help="count what would be written, write nothing")
    args = parser.parse_args(argv)

    import boto3

    names = stack_tables(args.stack, args.region)
    dynamodb = boto3.resource("dynamodb", region_name=args.region)
    events = backfill_event_log(dynamodb.Table(names["event_log"]), args.dry_run)
    talks = backfill_conversations(dynamodb.Table(names["conversations"]), args.dry_run)
    verb = "would add" if args.dry_run else "added"
    print(f"event_log: {events.scanned} items scanned, {verb} index keys to {events.updated}")
    print(
        f"conversations: {talks.scanned} conversations scanned, {verb} index keys to {talks.updated}, "
        f"{verb} {talks.memberships} topic memberships"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
