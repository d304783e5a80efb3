"""The web console in a real headless browser (Debian's chromium driven by Playwright): sign-in,
the events list and its filters, connections (webhook URL, creation, rotation), keyboard use and
phone width. Every test fails if a page logged a console error (the `console` fixture)."""

from __future__ import annotations

import base64
import re
import secrets

import pytest

from tests.integration.conftest import Console, Hub, wait_for

pytestmark = pytest.mark.console


def send_sms(hub: Hub, text: str, sender: str = "+14155550190") -> None:
    """A customer's signed Twilio SMS to the demo connection, acknowledged. From a number no other
    module writes from: on a shared hub it would thread their messages into this conversation."""
    from infra.local.samples import build_reply

    signed = build_reply(
        "twilio", hub.connection("twilio")["credentials"], hub.webhook_url("twilio"), sender, text, "+14155550100"
    )
    status, _, payload = hub.request(signed.method, signed.url, signed.body, signed.headers)
    assert status == 200, payload


def send_sample(hub: Hub, provider: str) -> None:
    from infra.local.samples import build_sample

    signed = build_sample(provider, None, hub.connection(provider)["credentials"], hub.webhook_url(provider))
    status, _, payload = hub.request(signed.method, signed.url, signed.body, signed.headers)
    assert status in (200, 202, 204), payload


def standard_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def cell_texts(page, column: int) -> list[str]:
    return [text.strip() for text in page.locator(f"main table tbody tr td:nth-child({column})").all_inner_texts()]


def test_a_wrong_key_is_refused_and_nothing_is_kept(console: Console):
    page = console.open()
    page.fill("#api-key", "sbk_nope_" + secrets.token_urlsafe(24))
    page.click("button[type=submit]")
    page.get_by_role("alert").get_by_text("that key was not accepted").wait_for()
    assert page.evaluate("sessionStorage.length") == 0
    assert page.locator("#nav").is_hidden()
    console.drop_refusals("401", "403")


def test_the_key_stays_in_the_tab_only_and_never_shows(console: Console):
    page = console.sign_in(console.hub.runtime.admin_key)
    key = console.hub.runtime.admin_key
    assert page.evaluate("localStorage.length") == 0
    assert page.context.cookies() == []
    assert key not in page.content()
    page.get_by_role("button", name="Sign out").click()
    page.locator("#api-key").wait_for()
    assert page.evaluate("sessionStorage.length") == 0


def test_events_filter_by_provider_and_open_in_the_address(console: Console):
    hub = console.hub
    send_sms(hub, f"where is parcel {secrets.token_hex(3)}?")
    send_sample(hub, "slack")
    wait_for(lambda: {e["provider"] for e in hub.logged_events(limit="100")} >= {"twilio", "slack"})
    page = console.sign_in(hub.runtime.admin_key)

    page.select_option("select[name=provider]", "twilio")
    page.uncheck("input[name=live]")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url(re.compile(r"provider=twilio"))
    page.locator("main table tbody tr.clickable").first.wait_for()
    assert set(cell_texts(page, 2)) == {"twilio"}

    # The filter is in the address: a reload (or a shared link) shows the same list.
    page.goto(f"{hub.url}/console#/events?provider=slack&live=off")
    page.locator("main table tbody tr.clickable").first.wait_for()
    assert set(cell_texts(page, 2)) == {"slack"}
    assert page.locator("select[name=provider]").input_value() == "slack"


def test_the_live_list_shows_a_new_event_without_a_reload(console: Console):
    hub = console.hub
    page = console.sign_in(hub.runtime.admin_key)
    page.goto(f"{hub.url}/console#/events?provider=twilio")
    page.locator("main table").wait_for()
    words = f"live check {secrets.token_hex(4)}"
    send_sms(hub, words)
    page.locator("main table tbody").get_by_text(words).first.wait_for(timeout=30_000)


def test_a_connection_made_and_rotated_in_the_console_is_what_the_api_answers(console: Console):
    hub = console.hub
    page = console.sign_in(hub.runtime.admin_key)
    page.goto(f"{hub.url}/console#/connections")
    page.get_by_role("heading", name="New connection").wait_for()
    page.select_option("select[name=provider]", "standard-webhooks")
    name = f"console-made {secrets.token_hex(3)}"
    page.fill("input[name=name]", name)
    # A malformed secret: the API's refusal, naming the problem, shown beside the form.
    page.fill("input[name='credential:secret']", "whsec_not base64!")
    page.get_by_role("button", name="Create connection").click()
    page.get_by_role("alert").get_by_text("not valid base64").wait_for()
    console.drop_refusals("400")

    first_secret = standard_secret()
    page.fill("input[name='credential:secret']", first_secret)
    page.get_by_role("button", name="Create connection").click()
    page.get_by_role("heading", name=re.compile(name)).wait_for()
    connection_id = page.url.rsplit("/", 1)[-1]

    status, made = hub.admin("GET", f"/admin/connections/{connection_id}")
    assert status == 200 and made["name"] == name and made["provider"] == "standard-webhooks"
    assert page.locator("#webhook-url").inner_text() == made["webhook_url"]

    second_secret = standard_secret()
    page.fill("input[name='credential:secret']", second_secret)
    page.fill("input[name=grace_seconds]", "600")
    page.get_by_role("button", name="Rotate credentials").click()
    page.get_by_role("status").get_by_text("Rotated").wait_for()
    status, rotated = hub.admin("GET", f"/admin/connections/{connection_id}")
    assert status == 200 and rotated["rotated_at"]
    # Typed once, sent once, never shown: not in the page, not left in the form.
    content = page.content()
    assert first_secret not in content and second_secret not in content
    assert page.locator("input[name='credential:secret']").input_value() == ""
    hub.admin("DELETE", f"/admin/connections/{connection_id}")


def test_keyboard_only_at_phone_width(phone: Console, hub: Hub):
    """Sign in, move between pages and open a connection with the keyboard, on a 390 px screen
    that never scrolls sideways."""
    page = phone.page
    # The events page held still (live=off): a refresh redrawn mid-walk would drop the focus.
    page.goto(f"{hub.url}/console#/events?live=off")
    page.keyboard.type(hub.runtime.admin_key)  # the key field has the focus on arrival
    page.keyboard.press("Enter")
    page.wait_for_selector("#nav a[aria-current=page]")
    page.wait_for_selector("main[data-ready]")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    connections = page.locator("#nav a[data-page=connections]")
    # Tab resumes where the key field was (in main), so it walks the events page, as many rows as
    # the shared hub has logged, before it wraps round to the navigation.
    for _ in range(400):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.dataset.page") == "connections":
            break
    assert page.evaluate("document.activeElement.dataset.page") == "connections", "Tab never reached Connections"
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"#/connections"))
    assert connections.get_attribute("aria-current") == "page"
    page.locator("main table tbody tr.clickable").first.focus()
    page.keyboard.press("Enter")
    page.locator("#webhook-url").wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


def test_an_event_opens_with_its_raw_request_and_what_consumed_it(console: Console):
    hub = console.hub
    words = f"detail check {secrets.token_hex(4)}"
    send_sms(hub, words)
    logged = wait_for(lambda: [e for e in hub.logged_events(provider="twilio", limit="50") if e.get("text") == words])
    assert logged
    event_id = logged[0]["id"]
    # Routing threads it: the detail then names the conversation.
    wait_for(
        lambda: any(c["consumer"] == "routing" for c in hub.admin("GET", f"/admin/events/{event_id}")[1]["consumed_by"])
    )

    page = console.sign_in(hub.runtime.admin_key)
    page.goto(f"{hub.url}/console#/events?provider=twilio&live=off")
    row = page.locator("main table tbody tr.clickable", has_text=words).first
    row.focus()
    page.keyboard.press("Enter")  # rows open from the keyboard
    page.wait_for_url(re.compile(rf"#/events/{event_id}$"))
    page.get_by_role("heading", name="Raw request").wait_for()
    canonical, raw = page.locator("main pre").all_inner_texts()[:2]
    assert event_id in canonical and words in canonical
    assert words.replace(" ", "+") in raw and "x-twilio-signature" in raw.lower()  # the form body as Twilio sent it
    assert hub.connection("twilio")["credentials"]["auth_token"] not in page.content()
    consumers = cell_texts(page, 1)
    assert "event_log" in consumers and "routing" in consumers
    page.get_by_role("link", name="conversation").first.wait_for()
