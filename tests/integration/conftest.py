"""One local runtime (moto server, gateway, dispatcher) for the integration tests,
started on free loopback ports with its own state directory."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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


INGEST_CACHE_SECONDS = 2


@pytest.fixture(scope="package")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    from infra.local.runtime import LocalRuntime

    saved = dict(os.environ)
    os.environ.update(AWS_TEST_ENV)
    os.environ.pop("SWITCHBOARD_ADMIN_KEY", None)
    os.environ["SWITCHBOARD_DELIVERY_POLICY"] = json.dumps(FAST_DELIVERY_POLICY)
    # Ingest's connection cache as deployed but shorter: a deleted connection is refused within
    # seconds (test_cli.py), and every webhook still goes through the cache.
    runtime = LocalRuntime(
        state_dir=tmp_path_factory.mktemp("state"), port=0, ingest_cache_seconds=INGEST_CACHE_SECONDS
    ).start()
    try:
        yield Hub(runtime=runtime, bus=attach_bus_capture(runtime.names.bus, "integration-capture"))
    finally:
        runtime.stop()
        os.environ.clear()
        os.environ.update(saved)
        from switchboard_core import aws

        aws.reset_clients()


# --- the web console in a real headless browser (Debian's chromium, driven by Playwright) ---

CHROMIUM = os.environ.get("SWITCHBOARD_CHROMIUM", "/usr/bin/chromium")
# Without the background-networking flags chromium keeps trying Google's hosts, which this
# closed network refuses; --no-sandbox because CI runs as root.
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One chromium per test module. `make test` installs Debian's chromium (`make browser`):
    a machine without it fails here, saying so, rather than skipping the console's tests."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"no chromium at {CHROMIUM}: run `make browser` (Debian's chromium) or set SWITCHBOARD_CHROMIUM")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class Console:
    """A browser tab on the hub's /console, with every console error and uncaught exception kept."""

    page: Any
    hub: Hub
    errors: list[str]

    def open(self, hash_path: str = "") -> Any:
        self.page.goto(f"{self.hub.url}/console{hash_path}")
        return self.page

    def sign_in(self, key: str) -> Any:
        self.open()
        self.page.fill("#api-key", key)
        self.page.click("button[type=submit]")
        self.page.wait_for_selector("#nav a[aria-current=page]")
        return self.page

    def drop_refusals(self, *statuses: str) -> None:
        """Forget the browser's failed-resource lines for refusals a test provoked on purpose. The
        browser may log one after the page has shown the refusal, so wait (up to 5 s) for it
        first: dropped too early, it arrived later and failed the test's teardown."""
        for _ in range(100):
            if any(status in error for error in self.errors for status in statuses):
                break
            self.page.wait_for_timeout(50)
        self.errors[:] = [error for error in self.errors if not any(status in error for status in statuses)]

    def sign_in_at(self, key: str, hash_path: str = "") -> Any:
        """Sign in on the page itself, so the shell renders it once (no second navigation)."""
        page = self.open(hash_path)
        page.fill("#api-key", key)
        page.click("button[type=submit]")
        page.wait_for_selector("#nav a[aria-current=page]")
        return page


@contextmanager
def console_tab(browser: Any, hub: Hub, **options: Any) -> Iterator[Console]:
    """A fresh tab (its own sessionStorage) whose console errors fail the test at its end."""
    context = browser.new_context(**options)
    page = context.new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))
    try:
        yield Console(page=page, hub=hub, errors=errors)
    finally:
        context.close()
    # A refused API call the test provoked on purpose shows in the page, and in the browser's log
    # as a failed resource: tests that expect one clear `errors` themselves.
    assert not errors, errors


@pytest.fixture
def console(browser: Any, hub: Hub) -> Iterator[Console]:
    with console_tab(browser, hub, viewport={"width": 1280, "height": 900}) as tab:
        yield tab


@pytest.fixture
def phone(browser: Any, hub: Hub) -> Iterator[Console]:
    """The console on a 390 px phone screen."""
    with console_tab(browser, hub, viewport={"width": 390, "height": 844}, is_mobile=True) as tab:
        yield tab
