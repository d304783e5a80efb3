"""Lazily created boto3 clients.

Clients are made on first use (not at import time, which would slow every cold
start, handshake included) and reused while the execution environment lives.
All of them come from one boto3 session: a new session loads botocore's endpoint
and service data again (~250 ms a client, measured in docs/decisions.md), a shared
one makes each further client in milliseconds.
`reset_clients()` lets the local runtime and tests point them elsewhere.
"""

from __future__ import annotations

import threading
from functools import cache
from typing import Any

# A boto3 session is not thread-safe (its clients are): clients are made one at a time.
_creating = threading.Lock()


@cache
def _session() -> Any:
    import boto3  # deferred: boto3 import costs ~100 ms of cold start

    return boto3.session.Session()


@cache
def client(service: str) -> Any:
    with _creating:
        return _session().client(service)


@cache
def resource(service: str) -> Any:
    with _creating:
        return _session().resource(service)


def reset_clients(*, keep_session: bool = False) -> None:
    """Forget the clients; the next ones read the endpoint and region from the environment
    again. The session, and the credentials it resolved, go too unless `keep_session`
    (tests that keep one set of credentials and only need fresh clients, cheaply)."""
    client.cache_clear()
    resource.cache_clear()
    if not keep_session:
        _session.cache_clear()
