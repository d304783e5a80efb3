"""Notification texts: one Jinja2 template per event type and channel, rendered in Jinja2's
sandbox (templates cannot reach Python internals, so a template edited later, or a value a
customer wrote, cannot run code). Autoescape is off: SMS, Slack and plain-text e-mail are
not HTML (the Slack sender escapes Slack's own control characters itself).

The view a template sees is `NotificationView`: a short contact summary, the customer's
last message, topics, sentiment, urgency and, for a located request, the distance (km, one
decimal) and an OpenStreetMap link. SMS templates stay short (one or two segments).

A campaign's notify step (kind `campaign`) has its own templates: the campaign already
rendered the words staff wrote (`text`, shown whole, not excerpted like a customer's
message), so they only add the campaign's name, the urgency, the contact and where it came
from."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from pydantic import BaseModel

if TYPE_CHECKING:
    from jinja2 import Template
    from jinja2.sandbox import SandboxedEnvironment

SMS_MAX_CHARS = 320  # two SMS segments at most
MESSAGE_EXCERPT_CHARS = 140


class NotificationView(BaseModel):
    """What a template may show (every field rendered as plain text)."""

    kind: str  # assigned | unassigned | escalated | campaign
    recipient_name: str
    conversation: str | None = None
    team: str | None = None
    assignee: str | None = None
    contact: str = "a customer"
    message: str | None = None
    topics: list[str] = []
    sentiment: float | None = None
    urgency: str | None = None
    urgent: bool = False
    priority: int | None = None
    distance_km: float | None = None
    map_url: str | None = None
    overdue_minutes: int | None = None
    # A campaign's notify step: the campaign's rendered text and where it came from.
    text: str | None = None
    campaign: str | None = None
    campaign_name: str | None = None
    campaign_version: int | None = None
    run: str | None = None


_HEADLINE = (
    "{% if kind == 'assigned' %}New for you{% elif kind == 'escalated' %}ESCALATED"
    "{% else %}Unassigned in {{ team or 'the queue' }}{% endif %}"
    "{% if urgent %} (URGENT){% endif %}: {{ contact }}"
)
_LOCATION = (
    "{% if distance_km is not none %} {{ '%.1f' | format(distance_km) }} km away{% endif %}"
    "{% if map_url %} {{ map_url }}{% endif %}"
)

TEMPLATES: dict[str, str] = {
    "sms": _HEADLINE
    + "{% if message %} - \"{{ message | truncate(100, True, '...') }}\"{% endif %}"
    + _LOCATION
    + "{% if overdue_minutes %} SLA passed {{ overdue_minutes }} min ago.{% endif %}",
    "slack": "*"
    + _HEADLINE
    + "*\n"
    + "{% if message %}> {{ message }}\n{% endif %}"
    + "{% if topics %}Topics: {{ topics | join(', ') }}\n{% endif %}"
    + "{% if urgency %}Urgency: {{ urgency }}{% endif %}"
    + "{% if sentiment is not none %} · sentiment {{ '%.2f' | format(sentiment) }}{% endif %}\n"
    + "{% if distance_km is not none %}Distance: {{ '%.1f' | format(distance_km) }} km{% endif %}"
    + "{% if map_url %} · map: {{ map_url }}{% endif %}\n"
    + "{% if overdue_minutes %}SLA passed {{ overdue_minutes }} min ago\n{% endif %}"
    + "{% if conversation %}Conversation {{ conversation }}{% if team %} in {{ team }}{% endif %}{% endif %}",
    "email": "Hello {{ recipient_name }},\n\n"
    + _HEADLINE
    + "\n\n"
    + "{% if message %}Last message:\n  {{ message }}\n\n{% endif %}"
    + "{% if topics %}Topics: {{ topics | join(', ') }}\n{% endif %}"
    + "{% if urgency %}Urgency: {{ urgency }}\n{% endif %}"
    + "{% if sentiment is not none %}Sentiment: {{ '%.2f' | format(sentiment) }}\n{% endif %}"
    + "{% if priority %}Priority: {{ priority }}\n{% endif %}"
    + "{% if distance_km is not none %}Distance: {{ '%.1f' | format(distance_km) }} km\n{% endif %}"
    + "{% if map_url %}Map: {{ map_url }}\n{% endif %}"
    + "{% if overdue_minutes %}SLA passed {{ overdue_minutes }} minutes ago\n{% endif %}"
    + "{% if conversation %}\nConversation: {{ conversation }}{% if team %} (team {{ team }}){% endif %}\n{% endif %}",
    "subject": _HEADLINE,
    "campaign_sms": "[{{ campaign_name }}]{% if urgent %} URGENT{% endif %} {{ text }}",
    "campaign_slack": "*{{ campaign_name }}*{% if urgent %} (URGENT){% endif %}\n"
    "{{ text }}\n"
    "Contact: {{ contact }}{% if conversation %} · conversation {{ conversation }}{% endif %}\n"
    "Campaign {{ campaign }} v{{ campaign_version }}, run {{ run }}",
    "campaign_email": "Hello {{ recipient_name }},\n\n"
    "{{ text }}\n\n"
    "Contact: {{ contact }}\n"
    "{% if conversation %}Conversation: {{ conversation }}\n{% endif %}"
    "\nFrom the campaign {{ campaign_name }} ({{ campaign }}, version {{ campaign_version }}), run {{ run }}.",
    "campaign_subject": "{% if urgent %}URGENT: {% endif %}{{ campaign_name }}: {{ contact }}",
    "digest": "{{ count }} more notification{{ 's' if count != 1 else '' }} in the last {{ minutes }} min"
    "{% for line in lines %}\n- {{ line }}{% endfor %}"
    "{% if hidden %}\n... and {{ hidden }} more{% endif %}",
}


@cache
def environment() -> SandboxedEnvironment:
    # Jinja2 is imported by the first notification rendered, not at a cold start: a batch of
    # triggers that notify nobody (no contact point, quiet hours, already sent) never needs it.
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    # StrictUndefined: a template naming a field the view lacks fails loudly in tests, not silently blank.
    return SandboxedEnvironment(autoescape=False, undefined=StrictUndefined, keep_trailing_newline=False)


@cache
def _template(name: str) -> Template:
    return environment().from_string(TEMPLATES[name])


def render(channel: str, view: NotificationView) -> tuple[str, str]:
    """(subject, body) for `channel`; the subject is for e-mail (the others ignore it)."""
    values = view.model_dump()
    values["message"] = _excerpt(view.message)
    prefix = "campaign_" if view.kind == "campaign" else ""
    body = _template(prefix + (channel if channel in ("sms", "slack", "email") else "slack")).render(**values).strip()
    subject = _template(prefix + "subject").render(**values).strip()
    if channel == "sms" and len(body) > SMS_MAX_CHARS:
        body = body[: SMS_MAX_CHARS - 1] + "…"
    return subject, body


def render_digest(count: int, minutes: int, lines: list[str], shown: int = 10) -> str:
    return (
        _template("digest")
        .render(count=count, minutes=minutes, lines=lines[:shown], hidden=max(0, len(lines) - shown))
        .strip()
    )


def _excerpt(text: str | None) -> str | None:
    if not text:
        return None
    flat = " ".join(text.split())
    return flat if len(flat) <= MESSAGE_EXCERPT_CHARS else flat[: MESSAGE_EXCERPT_CHARS - 1] + "…"
