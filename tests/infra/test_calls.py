"""The calls function on AWS: it gives Twilio the API's own URL to call back, and reads
only outbound credentials (never the connections' webhook secrets)."""

from __future__ import annotations

import json

import pytest

from infra import topology
from tests.infra.conftest import Synthesised

pytestmark = pytest.mark.infra


def test_the_calls_function_knows_the_api_url_it_gives_twilio(synth: Synthesised) -> None:
    function = synth.json["Resources"][synth.logical_id(synth.stack.functions.functions["calls"])]
    url = function["Properties"]["Environment"]["Variables"][topology.PUBLIC_BASE_URL_ENV]
    api_id = synth.stack.resolve(synth.stack.api.api.node.default_child.logical_id)
    assert url == {"Fn::GetAtt": [api_id, "ApiEndpoint"]}
    others = [name for name, spec in topology.FUNCTIONS.items() if not spec.public_url]
    for name in others:
        other = synth.json["Resources"][synth.logical_id(synth.stack.functions.functions[name])]
        assert topology.PUBLIC_BASE_URL_ENV not in other["Properties"]["Environment"]["Variables"]


def test_the_calls_function_reads_outbound_secrets_only(synth: Synthesised) -> None:
    role = synth.stack.resolve(synth.stack.functions.functions["calls"].role.node.default_child.logical_id)
    policies = [p for p in synth.resources("AWS::IAM::Policy").values() if {"Ref": role} in p["Properties"]["Roles"]]
    text = json.dumps(policies)
    assert "/outbound/" in text and "/connections/" not in text
    assert "secretsmanager:PutSecretValue" not in text


def test_a_stage_may_choose_the_hold_music(synth: Synthesised, synth_qa_destroy: Synthesised) -> None:
    from switchboard_core.calls import twiml

    assert topology.HOLD_MUSIC_ENV == twiml.HOLD_MUSIC_ENV

    def ingest_env(s: Synthesised) -> dict:
        return s.json["Resources"][s.logical_id(s.stack.functions.functions["ingest"])]["Properties"]["Environment"][
            "Variables"
        ]

    assert topology.HOLD_MUSIC_ENV not in ingest_env(synth)  # Twilio's own hold music
    assert ingest_env(synth_qa_destroy)[topology.HOLD_MUSIC_ENV] == "https://cdn.example.com/hold.mp3"


def test_hold_music_must_be_a_url() -> None:
    from infra.aws.config import StageConfig

    with pytest.raises(ValueError, match="hold_music_url"):
        StageConfig(hold_music_url="BusyStrings.mp3")


def test_the_calls_queue_takes_the_vonage_call_events_it_acts_on() -> None:
    from functions.calls.logic import VONAGE_LEG_EVENTS

    consumer = topology.FUNCTIONS["calls"].consumer
    assert consumer is not None and consumer.event_pattern is not None
    pattern = consumer.event_pattern
    assert f"{topology.EVENT_SOURCE_PREFIX}vonage" in pattern["source"]
    assert set(pattern["detail-type"]) >= VONAGE_LEG_EVENTS
