"""Contract: the committed JSON Schema and docs/events.md match the models."""

from __future__ import annotations

import json
import re
from pathlib import Path

from infra.local.cli import SCHEMA_PATH, schema_text
from switchboard_core.events import EVENT_TYPES, SCHEMA_VERSION, CanonicalEvent

ROOT = Path(__file__).resolve().parents[2]


def test_committed_schema_matches_the_models():
    committed = (ROOT / SCHEMA_PATH).read_text()
    assert committed == schema_text(), "docs/schema is stale: run `make schema` and commit the result"


def test_schema_names_every_required_field():
    schema = json.loads(schema_text())
    for name in (
        "id",
        "schema_version",
        "type",
        "provider",
        "connection",
        "tenant",
        "channel",
        "occurred_at",
        "received_at",
        "provider_event_id",
        "contact",
        "conversation_key",
        "text",
        "raw_ref",
    ):
        assert name in schema["properties"], name
    assert schema["properties"]["schema_version"]["const"] == SCHEMA_VERSION


def test_every_event_type_is_documented():
    documented = set(re.findall(r"^\| `([a-z_]+\.[a-z_]+)` \|", (ROOT / "docs/events.md").read_text(), re.M))
    assert documented == set(EVENT_TYPES), "docs/events.md's type table differs from EVENT_TYPES"


def test_a_published_event_validates_against_the_model():
    example = json.loads((ROOT / "docs/schema/example-event.json").read_text())
    assert CanonicalEvent.model_validate(example).type in EVENT_TYPES
