"""What holds for every sender, against the sandbox over HTTP: 429 and 5xx answers are
transient (the queue retries them), every sender is registered, and the demo credentials
the local runtime seeds are what each sender accepts."""

from __future__ import annotations

import pytest

from switchboard_core.outbound import SENDERS, TransientFailure, get_sender, send
from switchboard_core.outbound.transport import http_transport
from tests.unit.outbound import (
    test_bandwidth_sender,
    test_discord_sender,
    test_freshdesk_sender,
    test_hubspot_sender,
    test_intercom_sender,
    test_meta_sender,
    test_plivo_sender,
    test_slack_sender,
    test_telegram_sender,
    test_telnyx_sender,
    test_twilio_sender,
    test_vonage_sender,
    test_x_sender,
    test_zendesk_sender,
)

CASES = {
    "twilio": (
        test_twilio_sender.credentials,
        lambda: test_twilio_sender.reply_address(
            test_twilio_sender.inbound({"From": "+14155550178", "To": "+14155550100"})
        ),
    ),
    "telegram": (test_telegram_sender.credentials, test_telegram_sender.customer_address),
    "slack": (test_slack_sender.credentials, test_slack_sender.customer_address),
    "meta": (test_meta_sender.credentials, lambda: test_meta_sender.address_of("whatsapp-text.json")),
    "telnyx": (test_telnyx_sender.credentials, test_telnyx_sender.customer_address),
    "x": (test_x_sender.credentials, test_x_sender.customer_address),
    "discord": (test_discord_sender.credentials, test_discord_sender.customer_address),
    "plivo": (test_plivo_sender.credentials, test_plivo_sender.customer_address),
    "bandwidth": (test_bandwidth_sender.credentials, test_bandwidth_sender.customer_address),
    "zendesk": (test_zendesk_sender.credentials, test_zendesk_sender.customer_address),
    "intercom": (test_intercom_sender.credentials, test_intercom_sender.customer_address),
    "freshdesk": (test_freshdesk_sender.credentials, test_freshdesk_sender.customer_address),
    "vonage": (test_vonage_sender.credentials, test_vonage_sender.customer_address),
    "hubspot": (test_hubspot_sender.credentials, test_hubspot_sender.customer_address),
}


def test_every_registered_sender_is_covered_here():
    assert set(CASES) == set(SENDERS)
    assert all(get_sender(provider).provider == provider for provider in SENDERS)


@pytest.mark.parametrize("status", [429, 500, 502, 503])
@pytest.mark.parametrize("provider", sorted(CASES))
def test_rate_limits_and_server_errors_are_transient(sandbox, provider: str, status: int) -> None:
    apis, url = sandbox
    make_credentials, make_address = CASES[provider]
    creds = make_credentials()
    apis.accept(provider, creds)
    apis.fail_next(provider, status)
    with pytest.raises(TransientFailure):
        send(make_address(), "hi", creds, http_transport, base_url=f"{url}/{provider}")
