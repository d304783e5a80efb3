"""The console's Conversations page in a real headless browser: the queue filtered by status and
assignee, one conversation as a cross-channel timeline, a staff answer and a status change made
in the console and read back through the API, the API's refusal shown, keyboard and phone width.
Data comes in as signed webhooks; every test fails if the page logged a console error."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

import pytest

from tests.integration.conftest import Console, Hub, wait_for
from tests.integration.test_admin_routing import staff_key
from tests.integration.test_answers import conversation_of, fresh_phone
from tests.integration.test_routing_stories import post_twilio_sms

pytestmark = pytest.mark.console


@dataclass
class Queue:
    assignee: str  # a responder made for this module, so its queue holds only these conversations
    waiting: str  # a conversation moved to waiting with that assignee
    resolved: str  # one resolved with that assignee
    waiting_phone: str
    waiting_text: str


def opened(hub: Hub, text: str) -> tuple[str, str]:
    """A customer's SMS from a fresh number, and the conversation routing opened for it."""
    phone = fresh_phone()
    post_twilio_sms(hub, phone, text)
    conversation = wait_for(lambda: conversation_of(hub, phone), timeout=30)
    assert conversation, f"routing opened no conversation for {phone}"
    return phone, conversation


@pytest.fixture(scope="module")
def queue(hub: Hub):
    assignee = f"console-{secrets.token_hex(3)}"
    status, _ = hub.admin("PUT", f"/admin/responders/{assignee}", {"name": f"Console {assignee[-6:]}", "capacity": 3})
    assert status == 200
    waiting_text = f"My parcel {secrets.token_hex(3)} never arrived, I am upset"
    waiting_phone, waiting = opened(hub, waiting_text)
    _, resolved = opened(hub, f"Thanks, all sorted {secrets.token_hex(3)}")
    for conversation, state in ((waiting, "waiting"), (resolved, "resolved")):
        body = {"status": state, "assignee": assignee}
        status, moved = hub.admin("POST", f"/admin/conversations/{conversation}/status", body)
        assert status == 200 and moved["status"] == state, moved
    yield Queue(assignee, waiting, resolved, waiting_phone, waiting_text)
    hub.admin("DELETE", f"/admin/responders/{assignee}")


def conversation_rows(page) -> list[dict[str, str]]:
    """The queue as shown: status, assignee and id of each row."""
    page.locator("main table tbody tr").first.wait_for()
    rows = []
    for row in page.locator("main table tbody tr.clickable").all():
        cells = [c.strip() for c in row.locator("td").all_inner_texts()]
        rows.append({"status": cells[1], "assignee": cells[2], "id": cells[7]})
    return rows


def test_the_queue_filters_by_status_and_assignee(console: Console, queue: Queue):
    page = console.sign_in(console.hub.runtime.admin_key)
    page.goto(f"{console.hub.url}/console#/conversations")
    page.get_by_role("heading", name="Conversations").wait_for()
    page.select_option("select[name=status]", "waiting")
    page.select_option("select[name=assignee]", queue.assignee)
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url(re.compile(r"status=waiting.*assignee=|assignee=.*status=waiting"))
    rows = conversation_rows(page)
    assert [r["id"] for r in rows] == [queue.waiting]
    assert rows[0]["status"] == "waiting" and rows[0]["assignee"] == queue.assignee

    # The status links keep the assignee: the same person's resolved conversations.
    page.get_by_role("link", name="resolved", exact=True).click()
    page.wait_for_url(re.compile(r"status=resolved"))
    page.locator("main table tbody tr.clickable", has_text=queue.resolved).wait_for()
    assert [r["id"] for r in conversation_rows(page)] == [queue.resolved]
    assert page.locator("select[name=status]").input_value() == "resolved"


def test_the_queue_shows_a_new_conversation_without_a_reload(console: Console):
    page = console.sign_in(console.hub.runtime.admin_key)
    page.goto(f"{console.hub.url}/console#/conversations")
    page.locator("main table").wait_for()
    page.evaluate("window.notReloaded = true")
    _, conversation = opened(console.hub, f"Is my order {secrets.token_hex(3)} on its way?")
    page.locator("main table tbody tr.clickable", has_text=conversation).wait_for(timeout=30_000)
    assert page.evaluate("window.notReloaded") is True

    # With live off the queue stays as it was drawn.
    page.goto(f"{console.hub.url}/console#/conversations?live=off")
    page.locator("main table").wait_for()
    assert not page.locator("input[name=live]").is_checked()
    _, unseen = opened(console.hub, f"Where is parcel {secrets.token_hex(3)}?")
    page.wait_for_timeout(6_000)  # longer than a refresh period
    assert page.locator("main table tbody tr.clickable", has_text=unseen).count() == 0


def test_a_conversation_opens_with_enter_as_one_timeline(console: Console, queue: Queue):
    hub = console.hub
    page = console.sign_in(hub.runtime.admin_key)
    page.goto(f"{hub.url}/console#/conversations?assignee={queue.assignee}&status=waiting")
    row = page.locator("main table tbody tr.clickable", has_text=queue.waiting)
    row.focus()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(f"#/conversations/{queue.waiting}$"))
    timeline = page.locator("ol.timeline")
    timeline.get_by_text(queue.waiting_text).wait_for()
    facts = page.locator("dl.facts").inner_text()
    assert "routing reason" in facts and "waiting" in facts and queue.assignee in facts
    assert page.locator("svg.sentiment polyline, svg.sentiment circle").count() >= 1

    # Each entry is labelled by what it is and links to its event on the Events page.
    _, shown = hub.admin("GET", f"/admin/conversations/{queue.waiting}")
    _, entries = hub.admin("GET", f"/admin/contacts/{shown['contact_id']}/timeline?limit=20")
    sms = next(e for e in entries["events"] if e["text"] == queue.waiting_text)
    entry = timeline.locator("li", has=page.locator(f"a[href='#/events/{sms['event_id']}']"))
    assert entry.locator(".tag").first.inner_text() == "SMS"


def test_a_staff_answer_and_a_status_change_made_in_the_console_are_what_the_api_answers(
    console: Console, queue: Queue
):
    hub = console.hub
    page = console.sign_in(staff_key(hub))
    page.goto(f"{hub.url}/console#/conversations/{queue.waiting}")
    text = f"Sorry about that: a new parcel leaves today ({secrets.token_hex(3)})"
    page.get_by_label("Answer", exact=True).fill(text)
    page.get_by_role("button", name="Send answer").click()
    page.get_by_role("status").get_by_text(f"Queued on sms to {queue.waiting_phone}").wait_for()
    page.locator("ol.timeline li.kind-answer", has_text=text).wait_for()

    def answered() -> dict | None:
        _, listed = hub.admin("GET", f"/admin/conversations/{queue.waiting}/messages")
        return next((m for m in listed["messages"] if m["direction"] == "outbound" and m.get("text") == text), None)

    answer = wait_for(answered)
    assert answer and answer["author"]["role"] == "staff" and answer["channel"] == "sms"

    page.get_by_role("button", name="Close (resolved)").click()
    page.get_by_role("status").get_by_text("Now resolved").wait_for()
    assert hub.admin("GET", f"/admin/conversations/{queue.waiting}")[1]["status"] == "resolved"
    page.get_by_role("button", name="Reopen").click()
    page.get_by_role("status").get_by_text("Now open").wait_for()
    status, reopened = hub.admin("GET", f"/admin/conversations/{queue.waiting}")
    assert status == 200 and reopened["status"] == "open" and reopened["assignee"] == queue.assignee


def test_an_answer_the_api_refuses_shows_its_reason(console: Console):
    hub = console.hub
    phone, conversation = opened(hub, "Where is my order?")
    post_twilio_sms(hub, phone, "STOP")

    def opted_out() -> bool:
        status, _ = hub.admin("POST", f"/admin/conversations/{conversation}/messages", {"text": "Hello?"})
        return status == 409

    assert wait_for(opted_out, timeout=30, interval=0.5)
    page = console.sign_in(hub.runtime.admin_key)
    page.goto(f"{hub.url}/console#/conversations/{conversation}")
    page.get_by_label("Answer", exact=True).fill("Are you still there?")
    page.get_by_role("button", name="Send answer").click()
    page.get_by_role("alert").get_by_text(re.compile("409: .*opted out")).wait_for()
    console.drop_refusals("409")


def test_queue_and_conversation_at_phone_width(phone: Console, hub: Hub, queue: Queue):
    page = phone.page
    page.goto(f"{hub.url}/console")
    page.fill("#api-key", hub.runtime.admin_key)
    page.keyboard.press("Enter")
    page.wait_for_selector("#nav a[aria-current=page]")
    page.goto(f"{hub.url}/console#/conversations?assignee={queue.assignee}")
    page.locator("main table tbody tr.clickable", has_text=queue.resolved).wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.goto(f"{hub.url}/console#/conversations/{queue.waiting}")
    page.locator("ol.timeline").get_by_text(queue.waiting_text).wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
