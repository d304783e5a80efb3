"""What must hold before a campaign sends to a contact or calls them: the contact has not opted
out of the channel, it is not quiet hours where the contact lives, and the contact has not had
too many sends lately across every campaign. Pure: the caller reads the contact's consent and
counts its recent sends, and passes them in (`SendGuards`).
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from switchboard_core.routing.contact_points import QuietHours

# Every way a campaign reaches a contact: the send_message channels, and `call` for
# place_call and connect_call. `*` in an opt-out covers all of them.
CALL_CHANNEL = "call"
EVERY_CHANNEL = "*"
DEFAULT_QUIET_HOURS = QuietHours(start=time(21, 0), end=time(8, 0))


class FrequencyCap(BaseModel):
    """At most `max_sends` sends and calls to one contact in any `window`, across all campaigns."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_sends: int = Field(default=3, ge=1, le=1000)
    window: timedelta = Field(default=timedelta(days=1), gt=timedelta(0))
    max_postponements: int = Field(
        default=3, ge=0, le=100, description="a send the cap held back this many times in a row ends the run"
    )


class SendGuards(BaseModel):
    """The facts the guards need, read by the caller just before it advances a run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    opted_out: frozenset[str] = Field(
        default=frozenset(), description="channels the contact opted out of (sms, whatsapp, ..., call), or * for all"
    )
    quiet_hours: QuietHours | None = Field(default=DEFAULT_QUIET_HOURS, description="None: no quiet hours")
    cap: FrequencyCap = Field(default_factory=FrequencyCap)
    recent_sends: int = Field(default=0, ge=0, description="sends and calls to the contact in the cap's window")
    oldest_recent_send: AwareDatetime | None = Field(
        default=None, description="the oldest of those: the cap frees a slot when it leaves the window"
    )


class Verdict(BaseModel):
    model_config = ConfigDict(frozen=True)

    decision: Literal["go", "stop", "postpone"]
    reason: str | None = None
    until: AwareDatetime | None = None


GO = Verdict(decision="go")


def opted_out(guards: SendGuards, channel: str) -> bool:
    return EVERY_CHANNEL in guards.opted_out or channel in guards.opted_out


def next_local_time(after: datetime, at: time, zone: ZoneInfo) -> datetime:
    """The first moment strictly after `after` whose wall-clock time in `zone` is `at` (in UTC).
    A wall time that a DST change skips maps to the moment just after the gap (PEP 495 fold=0),
    so the answer always exists."""
    local = after.astimezone(zone)
    for days in range(3):  # today or tomorrow; a third day covers a wall time the gap swallowed
        day = local.date() + timedelta(days=days)
        candidate = datetime.combine(day, at, tzinfo=zone).astimezone(UTC)
        if candidate > after:
            return candidate
    raise AssertionError("unreachable: a wall time recurs within three days")  # pragma: no cover


def quiet_until(guards: SendGuards, zone: ZoneInfo, now: datetime) -> datetime | None:
    """When quiet hours end, if `now` is in them in the contact's zone; None otherwise."""
    quiet = guards.quiet_hours
    if quiet is None or not quiet.holds(now.astimezone(zone).time()):
        return None
    end = next_local_time(now, quiet.end, zone)
    # A quiet end inside a DST gap lands just after it, which is outside quiet hours; any other
    # end is outside them by definition.
    return end


def check_send(guards: SendGuards, channel: str, zone: ZoneInfo, now: datetime, cap_postponements: int) -> Verdict:
    """Whether a send (or call) may go now: stop on an opt-out, postpone in quiet hours (to their
    end) or over the frequency cap (until a slot frees up), go otherwise. `cap_postponements` is
    how many times the cap already held this send back: past the cap's limit the run stops."""
    if opted_out(guards, channel):
        return Verdict(decision="stop", reason=f"the contact opted out of {channel}")
    quiet_end = quiet_until(guards, zone, now)
    if quiet_end is not None:
        return Verdict(decision="postpone", reason="quiet_hours", until=quiet_end)
    if guards.recent_sends >= guards.cap.max_sends:
        if cap_postponements >= guards.cap.max_postponements:
            return Verdict(
                decision="stop",
                reason=f"frequency cap: held back {cap_postponements} times ({guards.cap.max_sends} per window)",
            )
        frees = (guards.oldest_recent_send or now) + guards.cap.window
        return Verdict(decision="postpone", reason="frequency_cap", until=max(frees, now + timedelta(minutes=1)))
    return GO
