"""Screenshots of the web console for the docs: `make screenshots` (or
`python -m tests.console_screenshots [--out docs/console]`).

Starts a local hub on free ports with its own state, sends it a few signed webhooks from
several providers (and one with a bad signature), then signs in with headless chromium
(Debian's, driven by Playwright) and saves one PNG per page, plus the events list at phone
width. Exits 1 if a page logged a console error."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.conftest import AWS_TEST_ENV

PAGES = (
    ("events", "#/events"),
    ("event", "#/events/{first_event}"),
    ("connections", "#/connections"),
    ("connection", "#/connections/{twilio}"),
    ("conversations", "#/conversations"),
    ("conversation", "#/conversations/{conversation}"),
    ("routing", "#/routing/rules"),
    ("responders", "#/routing/teams"),
    ("campaigns", "#/campaigns"),
    ("campaign", "#/campaigns/{campaign}"),
    ("partners", "#/partners"),
    ("subscription", "#/partners/{subscription}"),
)
PROVIDER_SAMPLES = (("twilio", None), ("slack", None), ("meta", "whatsapp"), ("zendesk", None), ("telegram", None))


def post(url: str, body: bytes, headers: dict[str, str], method: str = "POST") -> int:
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def admin(runtime: Any, path: str, body: dict[str, Any] | None = None, method: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {runtime.admin_key}", "Content-Type": "application/json"}
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(runtime.base_url + path, data=data, method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def seed_configuration(runtime: Any, receiver: Any) -> dict[str, str]:
    """A campaign with two versions, the second live with a run; a subscription to `receiver`."""
    from tests.integration.test_console_campaigns import VERSION_1, VERSION_2

    campaign = admin(runtime, "/admin/campaigns", {"name": "check-in after a visit", "flow": VERSION_1})
    path = f"/admin/campaigns/{campaign['id']}"
    admin(runtime, path, {"flow": VERSION_2, "expected_version": 1}, method="PUT")
    admin(runtime, f"{path}/publish", {"version": 2})
    admin(runtime, f"{path}/runs", {"contacts": ["+14155550199"]})
    subscription = admin(
        runtime,
        "/admin/subscriptions",
        {
            "url": receiver.url,
            "event_pattern": {"detail-type": ["message.received"]},
            "description": "orders desk: every message received",
        },
    )
    receiver.secret = subscription["secret"]
    return {"campaign": campaign["id"], "subscription": subscription["id"]}


def seed(runtime: Any) -> dict[str, str]:
    from infra.local.samples import build_reply, build_sample

    connections = runtime.demo["connections"]
    url = lambda provider: f"{runtime.base_url}/webhooks/{provider}/{connections[provider]['id']}"  # noqa: E731
    for provider, sample in PROVIDER_SAMPLES:
        signed = build_sample(provider, sample, connections[provider]["credentials"], url(provider))
        post(signed.url, signed.body, signed.headers, signed.method)
    for text in ("Hi, is my order #4417 on its way?", "It arrived broken, I want a refund"):
        signed = build_reply(
            "twilio", connections["twilio"]["credentials"], url("twilio"), "+14155550142", text, "+14155550100"
        )
        post(signed.url, signed.body, signed.headers, signed.method)
    # One refused request, so the connection page's chart has a rejection to show.
    signed = build_sample("twilio", None, connections["twilio"]["credentials"], url("twilio"))
    post(signed.url, signed.body, {**signed.headers, "X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"}, signed.method)
    deadline = time.monotonic() + 30
    events: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        events = admin(runtime, "/admin/events?limit=100")["events"]
        if len({e["provider"] for e in events}) >= len(PROVIDER_SAMPLES):
            break
        time.sleep(0.5)
    first = next(e["id"] for e in events if e["provider"] == "twilio")
    conversation = ""
    while time.monotonic() < deadline + 30:  # the event page shows what consumed it: wait for routing
        routed = [c for c in admin(runtime, f"/admin/events/{first}")["consumed_by"] if c["consumer"] == "routing"]
        if routed:
            conversation = routed[0]["ref"]["conversation_id"] or ""
            break
        time.sleep(0.5)
    return {"twilio": connections["twilio"]["id"], "first_event": first, "conversation": conversation}


def shoot(base_url: str, key: str, names: dict[str, str], out: Path) -> list[str]:
    from playwright.sync_api import sync_playwright

    from tests.integration.conftest import CHROMIUM, CHROMIUM_ARGS

    errors: list[str] = []
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for width, suffix, pages in ((1280, "", PAGES), (390, "-phone", PAGES[:1])):
            context = browser.new_context(viewport={"width": width, "height": 900})
            page = context.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(f"{base_url}/console")
            page.fill("#api-key", key)
            page.click("button[type=submit]")
            page.wait_for_selector("#nav a[aria-current=page]")
            for name, hash_path in pages:
                # A full load each time (the key stays in the tab's sessionStorage), then the page's own
                # "drawn" mark, so no screenshot catches a page still loading.
                page.goto("about:blank")
                page.goto(f"{base_url}/console{hash_path.format(**names)}")
                page.wait_for_selector("main[data-ready]")
                page.wait_for_timeout(300)
                page.screenshot(path=str(out / f"{name}{suffix}.png"), full_page=True)
                print(f"  {out / f'{name}{suffix}.png'}")
            context.close()
        browser.close()
    return errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="docs/console", help="where the PNGs go (default docs/console)")
    args = parser.parse_args(argv)
    os.environ.update(AWS_TEST_ENV)
    os.environ.pop("SWITCHBOARD_ADMIN_KEY", None)
    from infra.local.runtime import LocalRuntime

    with tempfile.TemporaryDirectory() as state:
        from tests.integration.test_partner_subscriptions import Receiver

        runtime = LocalRuntime(state_dir=Path(state), port=0).start()
        receiver = Receiver().start()
        try:
            names = seed_configuration(runtime, receiver) | seed(runtime)
            errors = shoot(runtime.base_url, runtime.admin_key, names, Path(args.out))
        finally:
            receiver.stop()
            runtime.stop()
    if errors:
        print("console errors:", *errors, sep="\n  ", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
