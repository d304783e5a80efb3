"""Sensing: what a message is about, how it feels, how urgent it is, and where.

- Topics and entities: an admin-edited taxonomy of phrases, matched in one pass over
  the text with an Aho-Corasick automaton (pyahocorasick), so the cost grows with the
  text, not with the number of phrases. Matches must start and end on word boundaries.
- Sentiment: VADER's compound score (vaderSentiment), -1 (negative) to +1 (positive).
- Urgency: urgent words, negative sentiment and the channel, as a 0..1 score and a level.
- Location: coordinates from payloads that carry them (WhatsApp and Telegram location
  messages, latitude/longitude in attributes) and Twilio's caller city/state/zip.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from switchboard_core.events import CanonicalEvent, Channel

Urgency = Literal["low", "normal", "high", "critical"]
_WORD = re.compile(r"\w", re.UNICODE)

URGENT_WORDS = (
    "urgent",
    "urgently",
    "asap",
    "emergency",
    "immediately",
    "right now",
    "stranded",
    "stuck",
    "broke down",
    "broken down",
    "accident",
    "danger",
    "dangerous",
    "unsafe",
    "help",
    "fire",
    "smoke",
    "leak",
    "injured",
)


class Topic(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    phrases: list[str] = Field(min_length=1, max_length=10_000)

    @field_validator("phrases")
    @classmethod
    def _non_blank(cls, phrases: list[str]) -> list[str]:
        cleaned = [p.strip() for p in phrases]
        if any(not p for p in cleaned):
            raise ValueError("phrases must not be blank")
        return cleaned


class Entity(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    aliases: list[str] = Field(default_factory=list, max_length=1000)


class Taxonomy(BaseModel):
    """Topics with phrases, and entity dictionaries (products, parts, dealers, locations...)."""

    model_config = ConfigDict(extra="forbid")

    topics: list[Topic] = Field(default_factory=list)
    entities: dict[str, list[Entity]] = Field(default_factory=dict, description="dictionary name -> entities")

    def phrases(self) -> Iterable[tuple[str, str, str]]:
        """(phrase, kind, name) for every phrase: kind is 'topic' or 'entity:<dictionary>'."""
        for topic in self.topics:
            for phrase in topic.phrases:
                yield phrase, "topic", topic.name
        for dictionary, entities in self.entities.items():
            for entity in entities:
                for phrase in (entity.name, *entity.aliases):
                    yield phrase, f"entity:{dictionary}", entity.name


class Location(BaseModel):
    latitude: float | None = None
    longitude: float | None = None
    city: str | None = None
    region: str | None = None
    postal_code: str | None = None
    country: str | None = None

    @property
    def has_coordinates(self) -> bool:
        return self.latitude is not None and self.longitude is not None


class Sensed(BaseModel):
    topics: list[str] = Field(default_factory=list)
    entities: dict[str, list[str]] = Field(default_factory=dict)
    sentiment: float = 0.0
    urgency: float = 0.0
    urgency_level: Urgency = "normal"
    location: Location | None = None


class Sensor:
    """Built once per taxonomy version and reused for every event."""

    def __init__(self, taxonomy: Taxonomy) -> None:
        import ahocorasick

        self._automaton = ahocorasick.Automaton()
        for phrase, kind, name in taxonomy.phrases():
            key = phrase.lower()
            existing = self._automaton.get(key, (len(key), []))
            self._automaton.add_word(key, (len(key), existing[1] + [(kind, name)]))
        urgent = ahocorasick.Automaton()
        for word in URGENT_WORDS:
            urgent.add_word(word, (len(word), [("urgent", word)]))
        if len(self._automaton):
            self._automaton.make_automaton()
        urgent.make_automaton()
        self._urgent = urgent

    @cached_property
    def _vader(self) -> Any:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        return SentimentIntensityAnalyzer()

    def matches(self, text: str, automaton: Any | None = None) -> list[tuple[str, str]]:
        """(kind, name) of every whole-word phrase in `text`, in order of appearance."""
        automaton = automaton if automaton is not None else self._automaton
        if not text or not len(automaton):
            return []
        lowered = text.lower()
        found: list[tuple[str, str]] = []
        for end, (length, payloads) in automaton.iter(lowered):
            start = end - length + 1
            if not (_boundary_before(lowered, start) and _boundary_after(lowered, end + 1)):
                continue  # inside a longer word: "pad" in "padded" (a plural "pads" still counts)
            found.extend(payloads)
        return found

    def sense(self, event: CanonicalEvent) -> Sensed:
        text = event.text or ""
        topics: list[str] = []
        entities: dict[str, list[str]] = {}
        for kind, name in self.matches(text):
            if kind == "topic":
                topics.append(name)
            else:
                entities.setdefault(kind.removeprefix("entity:"), []).append(name)
        sentiment = round(self._vader.polarity_scores(text)["compound"], 4) if text else 0.0
        urgency = urgency_score(len(self.matches(text, self._urgent)), sentiment, event.channel)
        return Sensed(
            topics=list(dict.fromkeys(topics)),
            entities={k: list(dict.fromkeys(v)) for k, v in entities.items()},
            sentiment=sentiment,
            urgency=urgency,
            urgency_level=urgency_level(urgency),
            location=location_of(event.attributes),
        )


def _boundary_before(text: str, start: int) -> bool:
    return start == 0 or not _WORD.match(text[start - 1])


def _boundary_after(text: str, after: int) -> bool:
    if after >= len(text) or not _WORD.match(text[after]):
        return True
    return text[after] == "s" and (after + 1 >= len(text) or not _WORD.match(text[after + 1]))


def urgency_score(urgent_words: int, sentiment: float, channel: Channel) -> float:
    """0..1: urgent words weigh most, then negative feeling, then a live channel."""
    score = min(urgent_words, 3) * 0.25 + max(0.0, -sentiment) * 0.25
    if channel is Channel.TELEPHONY:
        score += 0.1  # someone texting or calling now expects an answer now
    return round(min(score, 1.0), 3)


def urgency_level(score: float) -> Urgency:
    if score >= 0.75:
        return "critical"
    if score >= 0.45:
        return "high"
    if score >= 0.1:
        return "normal"
    return "low"


def location_of(attributes: dict[str, Any]) -> Location | None:
    """Coordinates or a caller's place, wherever the provider put them in attributes."""
    candidates = [
        attributes,
        attributes.get("location"),
        (attributes.get("message") or {}).get("location") if isinstance(attributes.get("message"), dict) else None,
    ]
    for source in candidates:
        if not isinstance(source, dict):
            continue
        keys = {str(k).lower(): v for k, v in source.items()}  # Twilio sends Latitude/Longitude
        lat = _number(keys.get("latitude", keys.get("lat")))
        lon = _number(keys.get("longitude", keys.get("lng", keys.get("lon"))))
        if lat is not None and lon is not None and -90 <= lat <= 90 and -180 <= lon <= 180:
            return Location(latitude=lat, longitude=lon)
    city, region = attributes.get("FromCity"), attributes.get("FromState")
    postal, country = attributes.get("FromZip"), attributes.get("FromCountry")
    if any(isinstance(v, str) and v for v in (city, region, postal)):
        return Location(city=city or None, region=region or None, postal_code=postal or None, country=country or None)
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None
