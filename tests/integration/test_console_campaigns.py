"""The console's Campaigns page in a real headless browser: the list and its filters, the flow as
a diagram with per-step counts, the visual diff of two versions, fork lineage, sharing, runs,
and a new version saved from the JSON editor (the API's problems shown first). Every test
fails if a page logged a console error (the `console` fixture)."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.integration.conftest import Console, Hub, wait_for

pytestmark = pytest.mark.console

# Version 1: ask, wait for the reply, thank, end. Version 2 (saved over it): the ask's text
# changed, "thanks" removed, "bye" added, and the wait's reply now leads to "bye".
VERSION_1: dict[str, Any] = {
    "start": "ask",
    "steps": {
        "ask": {"type": "send_message", "channel": "sms", "text": "Hi ${name}, how was it?", "next": "await"},
        "await": {"type": "wait_for_reply", "timeout": "PT1H", "next": "thanks", "on_timeout": "done"},
        "thanks": {"type": "send_message", "channel": "sms", "text": "Thanks!", "next": "done"},
        "done": {"type": "end"},
    },
}
VERSION_2: dict[str, Any] = {
    "start": "ask",
    "steps": {
        "ask": {"type": "send_message", "channel": "sms", "text": "Hello ${name}, how was it?", "next": "await"},
        "await": {"type": "wait_for_reply", "timeout": "PT1H", "next": "bye", "on_timeout": "done"},
        "bye": {"type": "send_message", "channel": "sms", "text": "Bye!", "next": "done"},
        "done": {"type": "end"},
    },
}


def created(hub: Hub, name: str, flow: dict[str, Any]) -> dict[str, Any]:
    status, made = hub.admin("POST", "/admin/campaigns", {"name": name, "flow": flow})
    assert status == 201, made
    return made


@pytest.fixture(scope="module")
def made(hub: Hub) -> Iterator[dict[str, Any]]:
    """A campaign with two versions, the second live with one run in flight, and a fork of its
    first version; another campaign whose name the filters leave out."""
    tag = f"cc{secrets.token_hex(3)}"
    original = created(hub, f"{tag} check-in", VERSION_1)
    path = f"/admin/campaigns/{original['id']}"
    status, saved = hub.admin("PUT", path, {"flow": VERSION_2, "expected_version": 1})
    assert status == 200 and saved["version"] == 2, saved
    status, published = hub.admin("POST", f"{path}/publish", {"version": 2})
    assert status == 200, published
    status, forked = hub.admin("POST", f"{path}/fork", {"version": 1, "name": f"{tag} check-in copy"})
    assert status == 201, forked
    other = created(hub, f"other {tag[::-1]}", VERSION_1)
    phone = "+1415555" + str(secrets.randbelow(10**4)).zfill(4)
    status, started = hub.admin("POST", f"{path}/runs", {"contacts": [phone]})
    assert status == 202, started

    def entered() -> bool:
        status, history = hub.admin("GET", f"{path}/versions")
        return status == 200 and history["versions"][1]["counts"]["ask"]["entered"] == 1

    assert wait_for(entered, timeout=30), hub.admin("GET", f"{path}/runs")
    yield {"tag": tag, "original": original, "fork": forked, "other": other}
    hub.admin("POST", f"{path}/stop")


def names_listed(page) -> list[str]:
    return [text.strip() for text in page.locator("main table tbody tr.clickable td:nth-child(1)").all_inner_texts()]


def test_the_list_filters_and_a_row_opens_the_flow_with_its_counts(console: Console, made):
    hub = console.hub
    page = console.sign_in_at(hub.runtime.admin_key, "#/campaigns")
    page.locator("main table tbody tr.clickable").first.wait_for()
    page.fill("input[name=q]", made["tag"])
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url(re.compile(rf"q={made['tag']}"))
    page.locator("main table tbody tr.clickable").first.wait_for()
    assert sorted(names_listed(page)) == sorted([made["original"]["name"], made["fork"]["name"]])

    page.select_option("select[name=status]", "live")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url(re.compile(r"status=live"))
    wait_for(lambda: names_listed(page) == [made["original"]["name"]], timeout=10)
    assert names_listed(page) == [made["original"]["name"]]

    # Keyboard: the row opens with Enter.
    page.locator("main table tbody tr.clickable").first.focus()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(made["original"]["id"]))
    flow = page.locator("main svg.flow").first
    flow.wait_for()
    steps = flow.locator("g.step")
    assert sorted(steps.evaluate_all("nodes => nodes.map(n => n.dataset.step)")) == ["ask", "await", "bye", "done"]
    assert "entered 1" in flow.locator("g.step[data-step=ask]").text_content()
    assert "entered 0" in flow.locator("g.step[data-step=bye]").text_content()
    # await leads to bye on a reply and to done on a time-out: three edges out of ask/await/bye.
    assert flow.locator("g.edge").count() == 4
    runs = page.locator("section[aria-labelledby=runs] table tbody tr.clickable")
    assert runs.count() == 1
    runs.first.focus()
    page.keyboard.press("Enter")
    page.get_by_role("heading", name=re.compile(r"^Run ")).wait_for()


def test_two_versions_side_by_side_with_their_changes_marked_and_the_fork_lineage(console: Console, made):
    hub = console.hub
    original, fork = made["original"], made["fork"]
    page = console.sign_in_at(hub.runtime.admin_key, f"#/campaigns/{original['id']}?from=1&to=2")
    before = page.locator("main svg.diff g[data-version='1']")
    after = page.locator("main svg.diff g[data-version='2']")
    after.wait_for()
    marked = "nodes => Object.fromEntries(nodes.map(n => [n.dataset.step, n.dataset.change || '']))"
    assert before.locator("g.step").evaluate_all(marked) == {
        "ask": "changed",
        "await": "changed",
        "thanks": "removed",
        "done": "",
    }
    assert after.locator("g.step").evaluate_all(marked) == {
        "ask": "changed",
        "await": "changed",
        "bye": "added",
        "done": "",
    }
    changes = page.locator("main ul.changes").inner_text()
    assert "text: Hi ${name}, how was it? → Hello ${name}, how was it?" in changes

    # Lineage: the original names its fork, and the fork links back to the version it came from.
    lineage = page.locator("section[aria-labelledby=lineage]")
    lineage.get_by_role("link", name=fork["name"]).click()
    page.wait_for_url(re.compile(fork["id"]))
    back = page.locator("section[aria-labelledby=lineage]").get_by_role("link", name=f"{original['name']} v1")
    back.wait_for()
    assert back.get_attribute("href") == f"#/campaigns/{original['id']}?version=1"
    assert page.locator("section[aria-labelledby=versions] table tbody tr").count() == 1


def test_a_version_saved_in_the_console_is_the_latest_through_the_api(console: Console, made):
    hub = console.hub
    campaign = made["other"]
    path = f"/admin/campaigns/{campaign['id']}"
    page = console.sign_in_at(hub.runtime.admin_key, f"#/campaigns/{campaign['id']}")
    editor = page.locator("textarea#definition")
    editor.wait_for()
    definition = json.loads(editor.input_value())
    assert definition["flow"]["steps"]["thanks"]["text"] == "Thanks!"

    # A reply that leads nowhere: refused, the API's problem named beside the editor, nothing saved.
    definition["flow"]["steps"]["await"]["next"] = "nowhere"
    editor.fill(json.dumps(definition))
    page.get_by_role("button", name="Save as version 2").click()
    page.get_by_role("alert").get_by_text("nowhere").first.wait_for()
    console.drop_refusals("400")
    assert hub.admin("GET", path)[1]["latest_version"] == 1

    words = f"Thank you kindly {secrets.token_hex(3)}"
    definition["flow"]["steps"]["await"]["next"] = "thanks"
    definition["flow"]["steps"]["thanks"]["text"] = words
    editor.fill(json.dumps(definition))
    page.get_by_role("button", name="Check").click()
    page.get_by_role("status").get_by_text("Valid").wait_for()
    page.get_by_role("button", name="Save as version 2").click()
    page.wait_for_url(re.compile(r"version=2"))
    page.get_by_role("heading", name=re.compile("version 2 of 2")).wait_for()
    status, latest = hub.admin("GET", path)
    assert status == 200 and latest["latest_version"] == 2 and latest["flow"]["steps"]["thanks"]["text"] == words
    assert latest["saved_by"]["name"] == "local-admin"

    # Shared with a colleague's key from the console: the API lists the share.
    from switchboard_core import aws
    from switchboard_core.principals import ApiKeyStore, Role

    keys = ApiKeyStore(aws.resource("dynamodb").Table(hub.runtime.names.table("api_keys")))
    _, colleague = keys.create(tenant="demo", name="console-colleague", role=Role.STAFF, now=datetime.now(UTC))
    page.fill("input[name=grantee]", colleague.key_id)
    page.select_option("select[name=access]", "editor")
    page.get_by_role("button", name="Share", exact=True).click()
    page.locator("section[aria-labelledby=shares] table tbody").get_by_text(colleague.key_id).wait_for()
    shares = hub.admin("GET", path)[1]["shares"]
    assert [(s["principal"], s["access"]) for s in shares] == [(colleague.key_id, "editor")]


def test_at_phone_width_a_campaign_opens_by_keyboard_without_sideways_scroll(phone: Console, hub: Hub, made):
    page = phone.page
    page.goto(f"{hub.url}/console#/campaigns?q={made['tag']}&status=live")
    page.keyboard.type(hub.runtime.admin_key)
    page.keyboard.press("Enter")
    row = page.locator("main table tbody tr.clickable").first
    row.wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    row.focus()
    page.keyboard.press("Enter")
    page.locator("main svg.flow").first.wait_for()
    page.locator("main svg.diff g[data-version='2']").wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


def test_a_partner_key_has_no_campaigns_page(console: Console):
    from switchboard_core import aws
    from switchboard_core.principals import ApiKeyStore, Role

    hub = console.hub
    keys = ApiKeyStore(aws.resource("dynamodb").Table(hub.runtime.names.table("api_keys")))
    partner, _ = keys.create(tenant="demo", name="console-partner", role=Role.PARTNER, now=datetime.now(UTC))
    page = console.sign_in_at(partner, "#/campaigns")
    # The shell offers a partner key its subscriptions only, whatever the address asked for.
    page.wait_for_selector("main[data-ready=partners]")
    assert page.locator("#nav a").all_inner_texts() == ["Partners"]
