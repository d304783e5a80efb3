"""Lazily created boto3 clients.

Clients are made on first use (not at import time, which would slow every cold
start, handshake included) and reused while the execution environment lives.
`reset_clients()` lets the local runtime and tests point them elsewhere.
"""

from __future__ import annotations

from functools import cache
from typing import Any


@cache
def client(service: str) -> Any:
    import boto3  # deferred: boto3 import costs ~100 ms of cold start

    return boto3.session.Session().client(service)


@cache
def resource(service: str) -> Any:
    import boto3

    return boto3.session.Session().resource(service)


def reset_clients() -> None:
    client.cache_clear()
    resource.cache_clear()
