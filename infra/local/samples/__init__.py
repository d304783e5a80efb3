"""Realistic, correctly signed sample webhooks: the sender side of each provider.

Used by `switchboard send <provider> [sample]` and by the tests. Each provider has a
module here (see base.py for what it defines); this package finds them, so adding a
provider's samples touches no shared file. Fresh random ids on every call make two
calls two distinct deliveries.
"""

from __future__ import annotations

import importlib
import pkgutil
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

from infra.local.samples.base import SignedRequest


def _sample_modules() -> dict[str, ModuleType]:
    found: dict[str, ModuleType] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name == "base" or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        found[module.PROVIDER] = module
    return dict(sorted(found.items()))


_MODULES = _sample_modules()
SAMPLES: dict[str, tuple[str, ...]] = {provider: module.SAMPLES for provider, module in _MODULES.items()}


def demo_credentials(provider: str) -> dict[str, str]:
    """Fresh random credentials shaped like the provider's real ones."""
    if provider not in _MODULES:
        raise ValueError(f"unknown provider {provider!r}; known: {', '.join(SAMPLES)}")
    return _MODULES[provider].demo_credentials()


def build_sample(
    provider: str, sample: str | None, credentials: dict[str, str], url: str, now: datetime | None = None
) -> SignedRequest:
    """A signed request for `provider`'s `sample` (None: the provider's default) to `url`."""
    if provider not in _MODULES:
        raise ValueError(f"unknown provider {provider!r}; known: {', '.join(SAMPLES)}")
    name = sample or SAMPLES[provider][0]
    if name not in SAMPLES[provider]:
        raise ValueError(f"no sample {name!r} for {provider}; known: {', '.join(SAMPLES[provider])}")
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return _MODULES[provider].build(name, credentials, url, now)


def sends_statuses(provider: str) -> bool:
    """Whether the provider's sample module can build its status webhook (or echo)."""
    return provider in _MODULES and hasattr(_MODULES[provider], "build_status")


def build_status(
    provider: str,
    credentials: dict[str, str],
    url: str,
    sent: dict[str, Any],
    state: str,
    reason: str | None = None,
    now: datetime | None = None,
) -> SignedRequest:
    """The provider's signed webhook reporting `state` (sent, delivered, read, failed) for a
    message its send API accepted: `sent` is the provider sandbox's record of it
    (`provider`, `to`, `text`, `message_id` (the provider's id), `details`)."""
    if not sends_statuses(provider):
        raise ValueError(f"{provider} has no status webhook sample")
    now = now or datetime.now(UTC)
    return _MODULES[provider].build_status(credentials, url, now, sent, state, reason)


def reply_providers() -> tuple[str, ...]:
    """Providers whose sample module builds a customer's SMS with given words (`build_reply`)."""
    return tuple(provider for provider, module in _MODULES.items() if hasattr(module, "build_reply"))


def build_reply(
    provider: str,
    credentials: dict[str, str],
    url: str,
    sender: str,
    text: str,
    to: str,
    now: datetime | None = None,
) -> SignedRequest:
    """The provider's inbound SMS webhook (its `build` sample's shape) from the customer `sender`
    to the business number `to`, saying `text`, signed with the connection's `credentials`."""
    if provider not in reply_providers():
        known = ", ".join(reply_providers())
        raise ValueError(f"{provider} has no customer reply sample; providers that have: {known}")
    return _MODULES[provider].build_reply(credentials, url, now or datetime.now(UTC), sender, text, to)


def places_calls(provider: str) -> bool:
    """Whether the provider's sample module builds the callbacks of a call its API placed."""
    return provider in _MODULES and hasattr(_MODULES[provider], "build_call_callbacks")


def build_call_callbacks(
    provider: str,
    credentials: dict[str, str],
    placed: dict[str, Any],
    outcome: str,
    digits: str | None = None,
    now: datetime | None = None,
) -> list[SignedRequest]:
    """The provider's signed callbacks, in order, for a call the sandbox recorded (`placed`: its
    record) that was `outcome` (answered, no-answer, busy, failed), with the keypad `digits`."""
    if not places_calls(provider):
        raise ValueError(f"{provider} places no calls in the sandbox")
    return _MODULES[provider].build_call_callbacks(credentials, placed, outcome, digits, now or datetime.now(UTC))


__all__ = [
    "SAMPLES",
    "SignedRequest",
    "build_call_callbacks",
    "build_reply",
    "build_sample",
    "build_status",
    "demo_credentials",
    "places_calls",
    "reply_providers",
    "sends_statuses",
]
