"""Provider registry.

Every module in this package (except `base` and private `_` modules) is one provider:
module `standard_webhooks` is provider `standard-webhooks`, and it defines one
ProviderAdapter subclass. The names come from the file listing, so adding a provider
touches no shared file, and a module is imported only when its provider is asked
for: the ingest path loads just the adapter a request is for.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from functools import cache

from switchboard_core.errors import NotFound
from switchboard_core.providers.base import ProviderAdapter

_NOT_PROVIDERS = {"base"}


def _module_names() -> dict[str, str]:
    modules = (info.name for info in pkgutil.iter_modules(__path__))
    return {name.replace("_", "-"): name for name in modules if name not in _NOT_PROVIDERS and not name.startswith("_")}


_MODULES = _module_names()
PROVIDER_NAMES: tuple[str, ...] = tuple(sorted(_MODULES))


@cache
def get_adapter(name: str) -> ProviderAdapter:
    module_name = _MODULES.get(name)
    if module_name is None:
        raise NotFound(
            f"unknown provider {name!r}; known providers: {', '.join(PROVIDER_NAMES)}", code="unknown_provider"
        )
    module = importlib.import_module(f"{__name__}.{module_name}")
    adapters = [
        cls
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, ProviderAdapter)
        and not inspect.isabstract(cls)
        and cls.__module__ == module.__name__
        and getattr(cls, "name", None) == name
    ]
    if len(adapters) != 1:
        raise RuntimeError(f"providers/{module_name}.py must define exactly one adapter named {name!r}")
    return adapters[0]()


def all_adapters() -> list[ProviderAdapter]:
    return [get_adapter(name) for name in PROVIDER_NAMES]
