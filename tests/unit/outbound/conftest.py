"""The provider sandbox (infra/local/provider_apis.py) on loopback, shared by the sender tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from infra.local.provider_apis import ProviderApis, serve
from switchboard_core.outbound.transport import http_transport


@pytest.fixture(scope="module")
def sandbox() -> Iterator[tuple[ProviderApis, str]]:
    apis = ProviderApis()
    server, url = serve(apis)
    yield apis, url
    server.shutdown()


__all__ = ["http_transport"]
