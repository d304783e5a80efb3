"""How to reach a responder or a team: contact points and notification preferences.

A contact point is where a notification goes: an SMS to an E.164 number (sent through an
SMS connection's outbound credentials), a Slack user or channel (through a Slack
connection's), an e-mail address (SES), or a generic https webhook (signed per Standard
Webhooks, with the delivery machinery's SSRF rules). The model checks each one's shape when
it is saved; the admin function then checks what needs the world: that a named connection
exists in the tenant and fits the channel, and that a webhook's host resolves to an address
the hub may call.
"""

from __future__ import annotations

import re
from datetime import datetime, time
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

NotificationChannel = Literal["sms", "slack", "email", "webhook"]
CHANNELS: tuple[NotificationChannel, ...] = ("sms", "slack", "email", "webhook")
# Slack ids: users U.../W..., channels C..., private channels G..., DMs D...
SLACK_ID = re.compile(r"^[UWCGD][A-Z0-9]{2,20}$")
# Deliberately plain: one @, a dot in the domain, no spaces; SES refuses what it cannot send.
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
MAX_CONTACT_POINTS = 10


class ContactPoint(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: NotificationChannel
    to: str = Field(
        min_length=1,
        max_length=2048,
        description="E.164 phone (sms), Slack user or channel id (slack), address (email), https URL (webhook)",
    )
    connection: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="the connection whose outbound credentials send it (sms, slack); sms without one uses the "
        "tenant's first SMS connection with outbound credentials",
    )

    @model_validator(mode="after")
    def _fits_its_channel(self) -> ContactPoint:
        from switchboard_core.phones import delivered_e164

        if self.channel == "sms":
            if not self.to.startswith("+") or delivered_e164(self.to) != self.to:
                raise ValueError(f"to must be an E.164 phone number (+ and digits) for sms, got {self.to!r}")
        elif self.channel == "slack":
            if not SLACK_ID.match(self.to):
                raise ValueError(f"to must be a Slack user or channel id (U..., C..., G...) for slack, got {self.to!r}")
            if self.connection is None:
                raise ValueError("connection (a Slack connection's id) is required for slack")
        elif self.channel == "email":
            if not EMAIL.match(self.to):
                raise ValueError(f"to must be an e-mail address for email, got {self.to!r}")
        elif not self.to.startswith(("https://", "http://")):
            raise ValueError(f"to must be an https URL for webhook, got {self.to!r}")
        if self.connection is not None and self.channel not in ("sms", "slack"):
            raise ValueError(f"connection applies to sms and slack, not {self.channel}")
        return self


class QuietHours(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: time = Field(description="local time quiet hours begin, e.g. 22:00")
    end: time = Field(description="local time they end, e.g. 07:00 (the next morning when before start)")

    def holds(self, local: time) -> bool:
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end  # across midnight


class NotificationPreferences(BaseModel):
    """A responder's: which channels, when not to be disturbed, and what still gets through."""

    model_config = ConfigDict(extra="forbid")

    channels: list[NotificationChannel] | None = Field(
        default=None, description="the channels to use, in order of preference; default: every contact point"
    )
    time_zone: str = Field(default="UTC", description="IANA time zone of the quiet hours, e.g. Europe/Paris")
    quiet_hours: QuietHours | None = None
    urgent_only_outside_hours: bool = Field(
        default=False, description="outside working hours (or in quiet hours) only urgent notifications reach them"
    )

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    def is_quiet(self, at: datetime) -> bool:
        return self.quiet_hours is not None and self.quiet_hours.holds(at.astimezone(ZoneInfo(self.time_zone)).time())
