"""The docs a newcomer reads stay true: docs/operations.md's "What gets created" names every
function, table (with its TTLs and indexes), queue, bucket, schedule and stack-created
secret in infra/topology.py, and nothing the topology no longer has; no heading in the
docs names an internal work item."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from infra import topology

REPOSITORY = Path(__file__).resolve().parents[2]
OPERATIONS = REPOSITORY / "docs" / "operations.md"


def created_rows() -> dict[str, str]:
    """The 'What gets created' table: first cell -> the whole row."""
    text = OPERATIONS.read_text()
    section = text[text.index("## What gets created") :]
    section = section[: section.index("\n## ", 3)] if "\n## " in section[3:] else section
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| resource")]
    return {row.split(" | ")[0].removeprefix("| "): row for row in rows}


def row(starting: str) -> tuple[str, str]:
    found = [(cell, text) for cell, text in created_rows().items() if cell.startswith(starting)]
    assert len(found) == 1, f"docs/operations.md 'What gets created' needs one row starting {starting!r}"
    return found[0]


def quoted(text: str) -> set[str]:
    return set(re.findall(r"`([^`]+)`", text))


def test_every_table_with_its_ttls_and_indexes_and_no_other():
    cell, text = row("DynamoDB tables")
    assert quoted(cell) == set(topology.TABLES)
    expected = {f"{t.name}.{t.ttl_attribute}" for t in topology.TABLES.values() if t.ttl_attribute}
    expected |= {f"{t.name}.{index.name}" for t in topology.TABLES.values() for index in t.indexes}
    named = {q for q in quoted(text) if q.split(".")[0] in topology.TABLES and "." in q}
    assert named == expected


def test_every_bucket_and_no_other():
    cell, _ = row("S3 bucket ")
    assert quoted(cell) == set(topology.BUCKETS)


def test_every_function_and_no_other_and_which_get_the_deps_layer():
    cell, text = row("Lambda functions")
    (names,) = re.findall(r"\{([^}]*)\}", cell)
    assert set(names.split(",")) == {name.replace("_", "-") for name in topology.FUNCTIONS}
    (with_deps,) = re.findall(r"sets `deps_layer` \(([^)]*)\)", text)
    assert {n.strip() for n in with_deps.split(",")} == {f.name for f in topology.FUNCTIONS.values() if f.deps_layer}


def test_every_consumer_queue_and_no_other():
    cell, _ = row("SQS queue")
    assert quoted(cell) == {f.consumer.queue for f in topology.consumers() if f.consumer}


def test_every_schedule_and_no_other():
    cell, _ = row("EventBridge Scheduler schedule")
    assert quoted(cell) == {f.name for f in topology.scheduled()}


def test_every_stack_created_secret():
    cell, _ = row("Secrets Manager secret")
    assert quoted(cell) == set(topology.SECRETS)


def test_what_the_functions_create_at_run_time_is_named():
    """Secrets and rules the functions create at run time are not stack resources; the table
    still names their prefixes, so an operator knows what a stage leaves behind."""
    created = OPERATIONS.read_text().split("## What gets created")[1].split("\n## ")[0]
    stage = "<stage>"
    for prefix in (
        topology.subscription_secrets_prefix(stage),
        f"switchboard-{stage}-{topology.SUBSCRIPTION_RULE_INFIX}",
        f"switchboard-{stage}-{topology.CAMPAIGN_RULE_INFIX}",
        topology.campaign_schedule_group(stage),  # its schedules are made at run time, the group by the stack
    ):
        assert prefix in created, prefix


def test_every_alarm_the_subscriptions_add_is_explained():
    from infra.aws.components.alarms import _kebab
    from infra.aws.components.functions import construct_id

    alarms = OPERATIONS.read_text().split("## Alarms")[1].split("\n## ")[0]
    delivery = construct_id("delivery")
    for alarm in (f"{delivery}DeadLetters", f"{delivery}QueueBacklog", f"{delivery}Errors"):
        assert f"| `{_kebab(alarm)}`" in alarms, alarm


def test_every_alarm_the_campaigns_add_is_explained():
    from infra.aws.components.alarms import _kebab
    from infra.aws.components.functions import construct_id

    alarms = OPERATIONS.read_text().split("## Alarms")[1].split("\n## ")[0]
    campaigns = construct_id("campaigns")
    for alarm in (
        f"{campaigns}DeadLetters",
        f"{campaigns}QueueBacklog",
        f"{campaigns}TimersDropped",
        f"{campaigns}Errors",
    ):
        assert f"| `{_kebab(alarm)}`" in alarms, alarm


WORK_ITEM = re.compile(r"\b(issue|ticket|work item|story|epic|jira)\s*#?\d+", re.IGNORECASE)


def test_no_heading_names_an_internal_work_item():
    documents = [REPOSITORY / "README.md", *sorted((REPOSITORY / "docs").rglob("*.md"))]
    headings = [
        f"{path.relative_to(REPOSITORY)}: {line}"
        for path in documents
        for line in path.read_text().splitlines()
        if line.startswith("#") and WORK_ITEM.search(line)
    ]
    assert not headings, headings


def readme_commands(prefix: str) -> list[str]:
    lines = (REPOSITORY / "README.md").read_text().splitlines()
    return [line.split("  #")[0].split(" > ")[0].strip() for line in lines if line.strip().startswith(prefix)]


def test_the_readmes_curl_reaches_the_port_the_hub_runs_on():
    local = [line for line in readme_commands("curl") if "127.0.0.1" in line or "localhost" in line]
    assert local, "the README shows how to call the local hub with curl"
    for line in local:
        assert "${SWITCHBOARD_PORT:-8080}" in line, line  # make dev listens on $SWITCHBOARD_PORT when set


def test_every_switchboard_command_in_the_readme_parses():
    from infra.local.cli import build_parser

    commands = readme_commands(".venv/bin/switchboard")
    assert len(commands) >= 10
    for command in commands:
        build_parser().parse_args(shlex.split(command)[1:])  # argparse exits (SystemExit) on an unknown command
