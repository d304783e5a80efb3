"""`switchboard sandbox reply|calls|call-outcome`: play the customer's side against the local hub.

* `reply --provider twilio --from +E164 --text "no" [--connection ID]`: the provider's inbound SMS
  webhook (its sample module's `build` shape, `samples.build_reply`), from that customer, to the
  connection's own number, signed with the connection's inbound credentials, posted to the hub's
  webhook for that connection (default: the demo tenant's connection of the provider) - as if the
  customer had answered a campaign's message;
* `calls`: the calls the hub placed (a campaign's place_call / connect_call) that the provider
  sandbox recorded;
* `call-outcome CALL_ID answered|no-answer|busy|failed [--digits 1]`: what became of one, posted
  to the hub as the provider's signed callbacks (the keypad result, then the final status).
"""

from __future__ import annotations

import argparse
import json
import re
from typing import Any

from infra.local.cli import CliError, add_url, http, running_hub, sandbox_url, state_of, table

E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
DEFAULT_BUSINESS_NUMBER = "+14155550100"  # the samples' business number, when the connection names none


def add_sandbox_commands(commands: Any) -> None:
    from infra.local.provider_apis import CALL_OUTCOMES
    from infra.local.samples import reply_providers

    sandbox = commands.add_parser(
        "sandbox", help="the customer's side of the local provider sandbox: replies and call outcomes"
    )
    actions = sandbox.add_subparsers(
        dest="sandbox_command", required=True, metavar="ACTION", help="reply, calls or call-outcome"
    )
    reply = actions.add_parser("reply", help="post a customer's SMS to the hub, as the provider would")
    reply.add_argument("--provider", required=True, choices=reply_providers(), help="whose inbound SMS webhook to send")
    reply.add_argument(
        "--from", dest="sender", metavar="+E164", required=True, help="the customer's number, E.164 (+14155550178)"
    )
    reply.add_argument("--text", required=True, help="what the customer writes")
    reply.add_argument("--connection", help="the tenant's connection of that provider (default: the demo tenant's)")
    add_url(reply)
    reply.set_defaults(run=run_sandbox_reply)

    calls = actions.add_parser("calls", help="calls the hub placed (campaign calls), as the sandbox recorded them")
    calls.set_defaults(run=run_sandbox_calls)

    outcome = actions.add_parser(
        "call-outcome", help="say what became of a placed call: the provider's callbacks go to the hub"
    )
    outcome.add_argument("call_id", help="the call's id (CA... or a Vonage uuid), as `sandbox calls` shows it")
    outcome.add_argument("outcome", choices=CALL_OUTCOMES, help="answered, no-answer, busy or failed")
    outcome.add_argument("--digits", help="the keys the contact pressed (a call that gathers input)")
    outcome.set_defaults(run=run_sandbox_call_outcome)


def run_sandbox_reply(args: argparse.Namespace) -> int:
    from infra.local.samples import build_reply

    if not E164.match(args.sender):
        raise CliError(f"--from {args.sender!r} is not an E.164 number: write it as +<country><number>")
    if not args.text.strip():
        raise CliError("--text is empty: say what the customer writes")
    state = state_of(args)
    base = running_hub(state, args.url)
    connection_id = args.connection or _demo_connection(state, args.provider)
    inbound, outbound = _connection_credentials(state, args.provider, connection_id)
    url = f"{base}/webhooks/{args.provider}/{connection_id}"
    business = outbound.get("from_number") or DEFAULT_BUSINESS_NUMBER
    signed = build_reply(args.provider, inbound, url, args.sender, args.text, business)
    status, _, body = http(signed.method, signed.url, signed.body, signed.headers)
    print(f"{signed.method} {signed.url}\n-> {status} {body.decode(errors='replace')[:300]}")
    return 0 if 200 <= status < 300 else 1


def _demo_connection(state: Any, provider: str) -> str:
    entry = state.read_json(state.demo_file).get("connections", {}).get(provider)
    if not entry:
        raise CliError(f"no demo {provider} connection in {state.demo_file}: start `switchboard dev` first")
    return str(entry["id"])


def _connection_credentials(state: Any, provider: str, connection_id: str) -> tuple[dict[str, str], dict[str, str]]:
    """The connection's inbound credentials (to sign with) and outbound ones (its own number), read
    from the running local hub's emulator; a clear error for a connection of another provider."""
    import os

    from infra import topology
    from infra.local.emulator import aws_environment
    from infra.local.runtime import LOCAL_STAGE
    from switchboard_core import aws
    from switchboard_core.connections import ConnectionStore, CredentialStore
    from switchboard_core.errors import HubError

    runtime = state.read_json(state.runtime_file)
    if not runtime:
        raise CliError("no local hub is running: start one with `switchboard dev` (or `make dev`)")
    os.environ.update(aws_environment(runtime["aws_endpoint"]))
    aws.reset_clients()
    try:
        connection = ConnectionStore(aws.resource("dynamodb").Table(runtime["tables"]["table:connections"])).get(
            connection_id
        )
    except HubError:
        raise CliError(f"no connection {connection_id!r} on the local hub: `switchboard dev` prints them") from None
    if connection.provider != provider:
        raise CliError(f"connection {connection_id} is a {connection.provider} connection, not {provider}")
    secrets = aws.client("secretsmanager")
    inbound = CredentialStore(secrets, topology.secrets_prefix(LOCAL_STAGE), max_age_seconds=0).get(connection_id)
    outbound: dict[str, str] = {}
    if connection.outbound_configured_at is not None:
        stored = CredentialStore(secrets, topology.outbound_secrets_prefix(LOCAL_STAGE), max_age_seconds=0)
        outbound = stored.get(connection_id).current
    return inbound.current, outbound


def run_sandbox_calls(args: argparse.Namespace) -> int:
    sandbox = sandbox_url(args, "placed calls")
    status, _, body = http("GET", f"{sandbox}/_sandbox/placed_calls")
    if status != 200:
        raise CliError(f"the provider sandbox answered {status}; restart `switchboard dev`")
    placed = json.loads(body)["placed_calls"]
    if not placed:
        print("no calls placed yet: a campaign's place_call or connect_call step places one (docs/campaigns.md)")
        return 0
    rows = [(c["provider"], c["call_id"], c["to"], c.get("from_") or "-", _what(c)) for c in placed]
    print(table(("PROVIDER", "CALL ID", "TO", "FROM", "RUNS"), rows))
    return 0


def _what(placed: dict[str, Any]) -> str:
    """What the call runs, in a few words: its verbs (TwiML) or actions (NCCO)."""
    if placed.get("twiml"):
        return " ".join(re.findall(r"<(Say|Play|Gather|Dial|Number)\b", placed["twiml"]))
    return " ".join(str(action.get("action")) for action in placed.get("ncco") or [])


def run_sandbox_call_outcome(args: argparse.Namespace) -> int:
    sandbox = sandbox_url(args, "placed calls")
    order: dict[str, Any] = {"call_id": args.call_id, "outcome": args.outcome}
    if args.digits is not None:
        order["digits"] = args.digits
    status, _, body = http("POST", f"{sandbox}/_sandbox/call_outcome", json.dumps(order).encode())
    answer = json.loads(body or b"{}")
    if status != 200:
        raise CliError(f"the provider sandbox refused: {answer.get('error', status)}")
    print(f"{answer['provider']} call {answer['call_id']}: callbacks posted, the hub answered {answer['hub_statuses']}")
    return 0 if all(200 <= s < 300 for s in answer["hub_statuses"]) else 1
