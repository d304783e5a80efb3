"""One local runtime (moto server, gateway, dispatcher) for the integration tests,
started on free loopback ports with its own state directory."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests import log_secrets
from tests.conftest import AWS_TEST_ENV, BusCapture, attach_bus_capture


@dataclass
class Hub:
    runtime: Any
    bus: BusCapture

    @property
    def url(self) -> str:
        return self.runtime.base_url

    def connection(self, provider: str) -> dict[str, Any]:
        return self.runtime.demo["connections"][provider]

    def webhook_url(self, provider: str) -> str:
        return f"{self.url}/webhooks/{provider}/{self.connection(provider)['id']}"

    def request(
        self,
        method: str,
        path_or_url: str,
        body: bytes | dict | None = None,
        headers: dict[str, str] | None = None,
        key: str | None = None,
    ) -> tuple[int, dict[str, str], Any]:
        url = path_or_url if path_or_url.startswith("http") else self.url + path_or_url
        headers = dict(headers or {})
        if isinstance(body, dict) and isinstance(body.get("credentials"), dict):
            # The admin function may store them in another process: the secrets scan learns them here.
            log_secrets.register(body["credentials"], f"credentials sent to {path_or_url}")
        if isinstance(body, dict):
            body = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
        if key:
            headers["Authorization"] = f"Bearer {key}"
        request = urllib.request.Request(url, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, response_headers, raw = response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            status, response_headers, raw = error.code, dict(error.headers), error.read()
        try:
            payload: Any = json.loads(raw) if raw else None
        except ValueError:
            payload = raw.decode(errors="replace")
        return status, response_headers, payload

    def admin(self, method: str, path: str, body: dict | None = None) -> tuple[int, Any]:
        status, _, payload = self.request(method, path, body, key=self.runtime.admin_key)
        return status, payload

    def logged_events(self, **params: str) -> list[dict[str, Any]]:
        from urllib.parse import urlencode

        status, payload = self.admin("GET", f"/admin/events?{urlencode(params)}")
        assert status == 200, payload
        return payload["events"]


# The delivery machinery on a fast clock: the real schedule's shape in seconds (eight
# attempts over ~15 s), a 1 s time-out, a breaker that cools down in a second or two.
FAST_DELIVERY_POLICY = {
    "retry_schedule_seconds": [0, 1, 1, 2, 2, 3, 3, 3],
    "retry_jitter": 0.2,
    "timeout_seconds": 1,
    "failing_after_seconds": 120,
    "disabled_after_seconds": 600,
    "breaker_failure_threshold": 5,
    "breaker_cooldown_seconds": 1,
    "breaker_max_cooldown_seconds": 2,
    "rotation_grace_seconds": 3600,
    "attempts_ttl_seconds": 86400,
}


def wait_for(check: Callable[[], Any], timeout: float = 15.0, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(interval)


@pytest.fixture(scope="package")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    from infra.local.runtime import LocalRuntime

    saved = dict(os.environ)
    os.environ.update(AWS_TEST_ENV)
    os.environ.pop("SWITCHBOARD_ADMIN_KEY", None)
    os.environ["SWITCHBOARD_DELIVERY_POLICY"] = json.dumps(FAST_DELIVERY_POLICY)
    runtime = LocalRuntime(state_dir=tmp_path_factory.mktemp("state"), port=0).start()
    try:
        yield Hub(runtime=runtime, bus=attach_bus_capture(runtime.names.bus, "integration-capture"))
    finally:
        runtime.stop()
        os.environ.clear()
        os.environ.update(saved)
        from switchboard_core import aws

        aws.reset_clients()
