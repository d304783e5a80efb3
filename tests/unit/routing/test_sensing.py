"""Sensing: taxonomy matching on word boundaries, sentiment, urgency, location."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from switchboard_core.events import CanonicalEvent, Channel
from switchboard_core.routing.sensing import Entity, Sensor, Taxonomy, Topic, location_of, urgency_level
from tests.builders import canonical_event

TAXONOMY = Taxonomy(
    topics=[
        Topic(name="parts", phrases=["brake pad", "spare part", "windscreen wiper"]),
        Topic(name="breakdown", phrases=["broke down", "won't start", "flat tyre"]),
        Topic(name="billing", phrases=["invoice", "refund"]),
    ],
    entities={
        "parts": [Entity(name="Brake pad BP-200", aliases=["BP-200", "bp200"])],
        "dealers": [Entity(name="Nordauto Hamburg", aliases=["nordauto"])],
    },
)


def event(text: str, channel: Channel = Channel.SOCIAL, **attributes) -> CanonicalEvent:
    return canonical_event(
        "message.received",
        "1",
        received_at=datetime(2026, 11, 23, tzinfo=UTC),
        provider="meta",
        connection="con_1",
        channel=channel,
        text=text,
        attributes=attributes,
    )


@pytest.fixture(scope="module")
def sensor() -> Sensor:
    return Sensor(TAXONOMY)


def test_topics_and_entities_on_word_boundaries(sensor):
    sensed = sensor.sense(event("The BP-200 brake pads from Nordauto are awful and my refund never came"))
    assert sensed.topics == ["parts", "billing"]
    assert sensed.entities == {"parts": ["Brake pad BP-200"], "dealers": ["Nordauto Hamburg"]}
    assert sensor.sense(event("my invoicer sent a brake padding kit")).topics == []  # inside longer words
    assert sensor.sense(event("two invoices")).topics == ["billing"]  # a plural still counts


def test_negative_post_is_negative_and_urgent_sms_is_critical(sensor):
    complaint = sensor.sense(event("Worst brake pads ever, totally useless and dangerous!"))
    assert complaint.sentiment < -0.5 and complaint.urgency_level in {"high", "critical"}
    stranded = sensor.sense(
        event("Help! My car broke down on the A9, I'm stranded, please come asap", channel=Channel.TELEPHONY)
    )
    assert "breakdown" in stranded.topics and stranded.urgency_level == "critical"
    calm = sensor.sense(event("Thanks, the new wipers are great"))
    assert calm.sentiment > 0.3 and calm.urgency_level in {"low", "normal"}


def test_locations_from_payloads():
    assert location_of({"location": {"latitude": 53.55, "longitude": "9.99"}}).has_coordinates
    assert location_of({"latitude": 91, "longitude": 0}) is None
    twilio = location_of({"FromCity": "SAN FRANCISCO", "FromState": "CA", "FromZip": "94105", "FromCountry": "US"})
    assert (twilio.city, twilio.postal_code, twilio.has_coordinates) == ("SAN FRANCISCO", "94105", False)
    assert location_of({"text": "no place"}) is None


def test_bad_taxonomies_are_refused_naming_the_field():
    with pytest.raises(ValidationError) as caught:
        Taxonomy(topics=[Topic(name="x", phrases=["ok"]), {"name": "", "phrases": []}])
    fields = {".".join(map(str, e["loc"])) for e in caught.value.errors()}
    assert {"topics.1.name", "topics.1.phrases"} <= fields
    with pytest.raises(ValidationError):
        Topic(name="x", phrases=["  "])


def test_urgency_levels():
    assert [urgency_level(s) for s in (0.0, 0.2, 0.5, 0.8)] == ["low", "normal", "high", "critical"]


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_property_any_text_is_sensed_without_error(sensor, text):
    sensed = sensor.sense(event(text))
    assert -1.0 <= sensed.sentiment <= 1.0 and 0.0 <= sensed.urgency <= 1.0


@pytest.mark.parametrize(
    ("provider", "payload"), [("meta", "whatsapp-location.json"), ("telegram", "location-photo-group.json")]
)
def test_locations_from_recorded_provider_payloads(provider, payload):
    from pathlib import Path

    from switchboard_core.providers import get_adapter
    from switchboard_core.providers.base import WebhookRequest

    body = (Path(__file__).resolve().parents[2] / "events" / provider / payload).read_bytes()
    request = WebhookRequest(
        method="POST",
        url=f"https://hooks.example.com/webhooks/{provider}/con_1",
        headers={"content-type": "application/json"},
        body=body,
    )
    located = [location_of(d.attributes) for d in get_adapter(provider).normalise(request)]
    assert any(place is not None and place.has_coordinates for place in located)
