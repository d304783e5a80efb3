"""Choosing a responder: skills then least loaded, round robin, or nearest available.

Pure functions over the responders passed in; the routing function loads them and
records the choice (with a conditional write on the responder's load, so capacity
holds under concurrency).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from switchboard_core.routing.contact_points import MAX_CONTACT_POINTS, ContactPoint, NotificationPreferences
from switchboard_core.routing.rules import AssignNearest, AssignToQueue, BusinessHours, SkillLevels
from switchboard_core.routing.sensing import Location

EARTH_RADIUS_KM = 6371.0088


@dataclass(frozen=True)
class Assignment:
    """Where routing put a conversation: a team (queue), and a responder when one was free."""

    team: str
    priority: int
    responder_id: str | None
    strategy: str | None
    distance_km: float | None = None
    # The responder's name as routing read it to choose (an auto-reply names the assignee).
    responder_name: str | None = None


class GeoPoint(BaseModel):
    model_config = ConfigDict(extra="forbid")

    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)


class Responder(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    tenant: str
    name: str = Field(min_length=1, max_length=200)
    teams: list[str] = Field(default_factory=list)
    skills: SkillLevels = Field(default_factory=dict, description="skill -> level 1..5")
    capacity: int = Field(default=5, ge=0, le=1000)
    load: int = Field(default=0, ge=0)
    available: bool = True
    location: GeoPoint | None = None
    working_hours: BusinessHours | None = None
    contact_points: list[ContactPoint] = Field(
        default_factory=list, max_length=MAX_CONTACT_POINTS, description="where notifications reach them"
    )
    notification_preferences: NotificationPreferences | None = None

    def can_take_work(self, at: datetime) -> bool:
        on_shift = self.working_hours is None or self.working_hours.holds(at)
        return self.available and on_shift and self.load < self.capacity

    def has_skills(self, required: dict[str, int]) -> bool:
        return all(self.skills.get(skill, 0) >= level for skill, level in required.items())


class Team(BaseModel):
    """A team (queue) that rules assign to; responders list the teams they work in."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str | None = Field(default=None, max_length=500)
    default_priority: int = Field(default=3, ge=1, le=5)
    working_hours: BusinessHours | None = None
    contact_points: list[ContactPoint] = Field(
        default_factory=list,
        max_length=MAX_CONTACT_POINTS,
        description="the team's on-call contact: escalations and unassigned conversations reach it",
    )


class Choice(BaseModel):
    responder: Responder
    strategy: str
    distance_km: float | None = None


def great_circle_km(a: GeoPoint | Location, b: GeoPoint | Location) -> float:
    """Haversine distance on a spherical Earth (mean radius): within 0.5% of the geodesic."""
    lat1, lon1, lat2, lon2 = map(math.radians, (a.latitude, a.longitude, b.latitude, b.longitude))  # type: ignore[arg-type]
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def choose_in_queue(
    target: AssignToQueue, responders: list[Responder], at: datetime, last_assigned: str | None = None
) -> Choice | None:
    candidates = [
        r for r in responders if target.team in r.teams and r.has_skills(target.skills) and r.can_take_work(at)
    ]
    if not candidates:
        return None
    if target.strategy == "round_robin":
        ordered = sorted(candidates, key=lambda r: r.id)
        after = [r for r in ordered if last_assigned is not None and r.id > last_assigned]
        return Choice(responder=(after or ordered)[0], strategy="round_robin")
    # Least loaded relative to capacity; then the stronger in the required skills; then id, for determinism.
    best = min(candidates, key=lambda r: (r.load / r.capacity, -sum(r.skills.get(s, 0) for s in target.skills), r.id))
    return Choice(responder=best, strategy="skills_least_loaded")


def choose_nearest(
    target: AssignNearest, responders: list[Responder], where: Location | None, at: datetime
) -> Choice | None:
    if where is None or not where.has_coordinates:
        return None
    scored = []
    for responder in responders:
        if responder.location is None or responder.skills.get(target.skill, 0) < 1 or not responder.can_take_work(at):
            continue
        if target.team and target.team not in responder.teams:
            continue
        distance = great_circle_km(where, responder.location)
        if target.max_distance_km is None or distance <= target.max_distance_km:
            scored.append((distance, responder.id, responder))
    if not scored:
        return None
    distance, _, responder = min(scored)
    return Choice(responder=responder, strategy="nearest", distance_km=round(distance, 2))
