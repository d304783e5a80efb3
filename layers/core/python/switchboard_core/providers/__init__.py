"""Provider registry. Adapters are imported on first use, so the ingest path loads
only the provider a request is for."""

from __future__ import annotations

import importlib
from functools import cache

from switchboard_core.errors import NotFound
from switchboard_core.providers.base import ProviderAdapter

# provider name -> "module:class", relative to this package
_REGISTRY: dict[str, str] = {
    "twilio": "twilio:TwilioAdapter",
    "meta": "meta:MetaAdapter",
    "hubspot": "hubspot:HubSpotAdapter",
    "standard-webhooks": "standard_webhooks:StandardWebhooksAdapter",
}

PROVIDER_NAMES: tuple[str, ...] = tuple(sorted(_REGISTRY))


@cache
def get_adapter(name: str) -> ProviderAdapter:
    target = _REGISTRY.get(name)
    if target is None:
        raise NotFound(f"unknown provider {name!r}; known providers: {', '.join(PROVIDER_NAMES)}",
                       code="unknown_provider")
    module_name, class_name = target.split(":")
    module = importlib.import_module(f"{__name__}.{module_name}")
    return getattr(module, class_name)()


def all_adapters() -> list[ProviderAdapter]:
    return [get_adapter(name) for name in PROVIDER_NAMES]
