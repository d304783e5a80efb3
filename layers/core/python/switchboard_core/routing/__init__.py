"""The routing domain, shared by the functions that route, reply, escalate and administer it.

Contacts (identities, merges, consent), conversations (threading, status, SLA), the
routing configuration (rule sets, taxonomy, teams, responders) with its stores, and
the pure pieces the routing function and the admin API's simulation both use (rules,
sensing, assignment). Each function imports only the modules it needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from switchboard_core.events import CanonicalEvent

ROUTING_PROVIDER = "routing"  # routing's derived events are published as switchboard.routing
REPLIES_PROVIDER = "replies"  # auto-reply outcomes are published as switchboard.replies
CALLS_PROVIDER = "calls"  # live call patching's outcomes are published as switchboard.calls
NOTIFICATIONS_PROVIDER = "notifications"  # notification outcomes are published as switchboard.notifications
CAMPAIGNS_PROVIDER = "campaigns"  # campaign runs' events are published as switchboard.campaigns
CONVERSATIONAL_PREFIXES = ("message.received", "mention.", "comment.", "call.", "ticket.", "interaction.")
# The end of a <Dial> the hub made: call control's business (the calls function), not a new
# turn of the conversation to route again; it goes on the contact's timeline.
CALL_CONTROL_TYPES = frozenset({"call.dial_ended"})


def is_conversational(event: CanonicalEvent) -> bool:
    """Events that thread into a conversation and get routed (not routing's, the calls function's
    or the campaigns' own output: a campaign's message is the business talking, never a customer;
    nor the callbacks of a call the hub placed)."""
    return (
        event.provider not in (ROUTING_PROVIDER, CALLS_PROVIDER, CAMPAIGNS_PROVIDER)
        and event.type.startswith(CONVERSATIONAL_PREFIXES)
        and event.type not in CALL_CONTROL_TYPES
        and not placed_by_the_hub(event)
    )


def placed_by_the_hub(event: CanonicalEvent) -> bool:
    """A callback of a call the hub placed through a provider's API (a campaign's call, its
    keypad result, a leg it connected): the business calling out, never a customer's turn to
    open, route or assign a conversation with. Twilio says `Direction=outbound-api`; Vonage
    `direction: outbound`, and its input results (`dtmf`, no `status`) come only from such calls."""
    if not event.type.startswith("call."):
        return False
    attributes = event.attributes
    if event.provider == "twilio":
        return (_scalar(attributes.get("Direction")) or "").lower() == "outbound-api"
    if event.provider == "vonage":
        direction = (_scalar(attributes.get("direction")) or "").lower()
        return direction == "outbound" or (isinstance(attributes.get("dtmf"), dict) and "status" not in attributes)
    return False


def _scalar(value: object) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    return value if isinstance(value, str) else None
