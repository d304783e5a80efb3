"""`switchboard`: run the hub locally and talk to it.

    switchboard dev                      start the hub on the embedded emulator
    switchboard send twilio [sms]        sign and post a realistic sample webhook
    switchboard events                   list what arrived (GET /admin/events)
    switchboard keys create|list|revoke  manage admin API keys
    switchboard schema [--check]         write (or check) the canonical event JSON Schema
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from infra.local.runtime import LocalRuntime, StateDir, default_state_dir

SCHEMA_PATH = Path("docs/schema/canonical-event.schema.json")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except CliError as error:
        print(f"switchboard: {error}", file=sys.stderr)
        return 2


class CliError(Exception):
    pass


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="switchboard", description="Switchboard webhook hub")
    parser.add_argument("--state-dir", type=Path, default=None, help="local state (default .switchboard/)")
    commands = parser.add_subparsers(dest="command", required=True)

    dev = commands.add_parser("dev", help="start the hub locally on the embedded AWS emulator")
    dev.add_argument("--port", type=int, default=int(os.environ.get("SWITCHBOARD_PORT", "8080")))
    dev.add_argument("--quiet", action="store_true", help="do not log each request")
    dev.set_defaults(run=run_dev)

    send = commands.add_parser("send", help="post a signed sample webhook to the local hub")
    send.add_argument("provider", nargs="?")
    send.add_argument("sample", nargs="?")
    send.add_argument("--list", action="store_true", help="list providers and their samples")
    send.add_argument("--url", help="hub base URL (default: the running local hub)")
    send.set_defaults(run=run_send)

    events = commands.add_parser("events", help="list recent canonical events")
    events.add_argument("--limit", type=int, default=20)
    for name in ("type", "provider", "connection", "since", "tenant"):
        events.add_argument(f"--{name}")
    events.add_argument("--url", help="hub base URL (default: the running local hub)")
    events.add_argument("--json", action="store_true", help="print the raw JSON")
    events.set_defaults(run=run_events)

    conversations = commands.add_parser("conversations", help="list conversations (routing)")
    for name in ("status", "assignee", "topic", "tenant"):
        conversations.add_argument(f"--{name}")
    conversations.add_argument("--limit", type=int, default=20)
    conversations.add_argument("--url", help="hub base URL (default: the running local hub)")
    conversations.set_defaults(run=run_conversations)

    timeline = commands.add_parser("timeline", help="one contact's events across channels, newest first")
    timeline.add_argument("contact", help="a contact id (ct_...), as routing events show it")
    timeline.add_argument("--limit", type=int, default=20)
    timeline.add_argument("--url", help="hub base URL (default: the running local hub)")
    timeline.set_defaults(run=run_timeline)

    sent = commands.add_parser("sent", help="auto-replies the local provider sandbox received (what customers got)")
    sent.set_defaults(run=run_sent)

    routing = commands.add_parser("routing", help="routing rule sets")
    routing_commands = routing.add_subparsers(dest="routing_command", required=True)
    simulate = routing_commands.add_parser("simulate", help="a proposed rule set against recent events")
    simulate.add_argument("rules_file", type=Path, help="JSON file with the proposed rule set")
    simulate.add_argument("--limit", type=int, default=100)
    simulate.add_argument("--url", help="hub base URL (default: the running local hub)")
    simulate.set_defaults(run=run_routing_simulate)

    keys = commands.add_parser("keys", help="create, list and revoke admin API keys")
    keys.add_argument("--stage", help="a deployed stage (reads the stack's outputs); default: the local hub")
    keys.add_argument("--table", help="the API keys table name, instead of --stage")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    create = key_commands.add_parser("create")
    create.add_argument("--tenant", required=True, help="tenant the key belongs to ('*' for an operator)")
    create.add_argument("--name", required=True)
    create.add_argument("--role", required=True, choices=["admin", "staff", "partner"])
    create.set_defaults(run=run_keys_create)
    key_commands.add_parser("list").set_defaults(run=run_keys_list)
    revoke = key_commands.add_parser("revoke")
    revoke.add_argument("key_id")
    revoke.set_defaults(run=run_keys_revoke)

    schema = commands.add_parser("schema", help="write the canonical event JSON Schema under docs/")
    schema.add_argument("--check", action="store_true", help="fail if the committed schema differs")
    schema.set_defaults(run=run_schema)
    return parser


def state_of(args: argparse.Namespace) -> StateDir:
    return StateDir(args.state_dir or default_state_dir())


# --- dev -------------------------------------------------------------------------------

def run_dev(args: argparse.Namespace) -> int:
    log = None if args.quiet else (lambda line: print(f"[switchboard] {line}", flush=True))
    runtime = LocalRuntime(state_dir=args.state_dir or default_state_dir(), port=args.port, log=log)
    try:
        runtime.start()
    except OSError as exc:
        raise CliError(f"cannot listen on 127.0.0.1:{args.port} ({exc}); set SWITCHBOARD_PORT") from None
    print(welcome(runtime), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("\nstopping", flush=True)
    finally:
        runtime.stop()
    return 0


def welcome(runtime: LocalRuntime) -> str:
    lines = [
        f"Switchboard is running at {runtime.base_url}  (AWS emulator: {runtime.emulator.endpoint})",
        f"Admin API key: {runtime.admin_key}",
        "  (from SWITCHBOARD_ADMIN_KEY)" if os.environ.get("SWITCHBOARD_ADMIN_KEY")
        else f"  (saved in {runtime.state.admin_key_file})",
        f"Demo tenant '{runtime.demo['tenant']}' has one connection per provider:",
    ]
    for provider, entry in sorted(runtime.demo["connections"].items()):
        lines.append(f"  {provider:18} {runtime.base_url}/webhooks/{provider}/{entry['id']}")
    lines += [
        "",
        "Try, in another terminal:",
        "  .venv/bin/switchboard send twilio sms        # a signed Twilio SMS webhook",
        "  .venv/bin/switchboard send meta whatsapp     # a signed WhatsApp message",
        "  .venv/bin/switchboard events                 # what arrived, from the event log",
        "  .venv/bin/switchboard sent                   # auto-replies sent (to this machine's provider sandbox)",
        f"  curl -H 'Authorization: Bearer {runtime.admin_key}' {runtime.base_url}/admin/providers",
        "Press Ctrl-C to stop.",
    ]
    return "\n".join(lines)


# --- talking to a running hub ----------------------------------------------------------

def running_hub(state: StateDir, url: str | None) -> str:
    url = url or os.environ.get("SWITCHBOARD_URL")
    if url:
        return url.rstrip("/")
    runtime = state.read_json(state.runtime_file)
    if not runtime:
        raise CliError("no local hub is running (start one with `switchboard dev`), or pass --url")
    return runtime["base_url"]


def admin_key(state: StateDir) -> str:
    key = os.environ.get("SWITCHBOARD_ADMIN_KEY", "").strip()
    if not key and state.admin_key_file.exists():
        key = state.admin_key_file.read_text().strip()
    if not key:
        raise CliError("no admin key: set SWITCHBOARD_ADMIN_KEY or start the local hub once")
    return key


def http(method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - the hub's own URL
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()
    except urllib.error.URLError as error:
        raise CliError(f"cannot reach {url}: {error.reason}") from None


def run_send(args: argparse.Namespace) -> int:
    from infra.local.samples import SAMPLES, build_sample

    if args.list or not args.provider:
        for provider, samples in sorted(SAMPLES.items()):
            print(f"{provider:18} {', '.join(samples)}   (default: {samples[0]})")
        return 0 if args.list else 2
    if args.provider not in SAMPLES:
        raise CliError(f"unknown provider {args.provider!r}; try: {', '.join(sorted(SAMPLES))}")
    if args.sample and args.sample not in SAMPLES[args.provider]:
        raise CliError(f"no sample {args.sample!r} for {args.provider}; try: {', '.join(SAMPLES[args.provider])}")
    state = state_of(args)
    base = running_hub(state, args.url)
    demo = state.read_json(state.demo_file)
    entry = demo.get("connections", {}).get(args.provider)
    if not entry:
        raise CliError(f"no demo {args.provider} connection in {state.demo_file}; start `switchboard dev` first")
    url = f"{base}/webhooks/{args.provider}/{entry['id']}"
    signed = build_sample(args.provider, args.sample, entry["credentials"], url)
    status, _, body = http(signed.method, signed.url, signed.body, signed.headers)
    print(f"{signed.method} {signed.url}\n-> {status} {body.decode(errors='replace')[:500]}")
    return 0 if 200 <= status < 300 else 1


def run_events(args: argparse.Namespace) -> int:
    from urllib.parse import urlencode

    state = state_of(args)
    base = running_hub(state, args.url)
    params = {k: v for k in ("type", "provider", "connection", "since", "tenant")
              if (v := getattr(args, k))}
    params["limit"] = str(args.limit)
    status, _, body = http("GET", f"{base}/admin/events?{urlencode(params)}",
                           headers={"Authorization": f"Bearer {admin_key(state)}"})
    if status != 200:
        raise CliError(f"GET /admin/events -> {status}: {body.decode(errors='replace')}")
    payload = json.loads(body)
    if args.json:
        print(json.dumps(payload, indent=2))
        return 0
    events = payload["events"]
    if not events:
        print("no events yet: try `switchboard send twilio`")
    for event in events:
        who = describe_contact(event["contact"])
        text = (event.get("text") or "").replace("\n", " ")[:60]
        print(f"{event['received_at'][:19]}  {event['provider']:17} {event['type']:24} {who:22} {text}")
    return 0


def admin_get(args: argparse.Namespace, path: str, params: dict[str, str]) -> dict[str, Any]:
    from urllib.parse import urlencode

    state = state_of(args)
    base = running_hub(state, args.url)
    query = urlencode({k: v for k, v in params.items() if v})
    status, _, body = http("GET", f"{base}{path}" + (f"?{query}" if query else ""),
                           headers={"Authorization": f"Bearer {admin_key(state)}"})
    if status != 200:
        raise CliError(f"GET {path} -> {status}: {body.decode(errors='replace')}")
    return json.loads(body)


def run_conversations(args: argparse.Namespace) -> int:
    params = {k: getattr(args, k) for k in ("status", "assignee", "topic", "tenant")}
    payload = admin_get(args, "/admin/conversations", {**params, "limit": str(args.limit)})
    if not payload["conversations"]:
        print("no conversations yet: routing threads messages as they arrive")
    for c in payload["conversations"]:
        print(f"{c['id']}  {c['status']:8} {c.get('assignee') or '-':12} {c.get('queue') or '-':12} "
              f"{','.join(c['channels']):20} {','.join(c.get('topics', [])) or '-':16} {c['last_activity_at'][:19]}")
    return 0


def run_sent(args: argparse.Namespace) -> int:
    state = state_of(args)
    sandbox = state.read_json(state.runtime_file).get("provider_apis")
    if not sandbox:
        raise CliError("no local hub is running (start one with `switchboard dev`)")
    status, _, body = http("GET", f"{sandbox}/_sandbox/messages")
    if status != 200:
        raise CliError(f"the provider sandbox answered {status}")
    messages = json.loads(body)["messages"]
    if not messages:
        print("no replies sent yet: add a rule with an auto_reply action (docs/operations.md)")
    for message in messages:
        print(f"{message['provider']:10} to {message['to']:24} {message['message_id'][:24]:24} {message['text'][:70]}")
    return 0


def run_timeline(args: argparse.Namespace) -> int:
    payload = admin_get(args, f"/admin/contacts/{args.contact}/timeline", {"limit": str(args.limit)})
    for entry in payload["events"]:
        text = (entry.get("text") or "").replace("\n", " ")[:60]
        print(f"{entry['occurred_at'][:19]}  {entry['channel']:9} {entry['provider']:17} {entry['type']:24} {text}")
    return 0


def run_routing_simulate(args: argparse.Namespace) -> int:
    try:
        rule_set = json.loads(args.rules_file.read_text())
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read a rule set from {args.rules_file}: {exc}") from None
    state = state_of(args)
    base = running_hub(state, args.url)
    body = json.dumps({"rule_set": rule_set, "limit": args.limit}).encode()
    status, _, answer = http("POST", f"{base}/admin/routing/simulate", body,
                             {"Authorization": f"Bearer {admin_key(state)}", "Content-Type": "application/json"})
    if status != 200:
        raise CliError(f"POST /admin/routing/simulate -> {status}: {answer.decode(errors='replace')}")
    report = json.loads(answer)
    for row in report["events"]:
        proposed, actual = row["proposed"], row["actual"] or {}
        mark = "*" if row["changed"] else " "
        print(f"{mark} {row['provider']:17} {row['type']:22} would: {proposed['queue'] or '-'}/"
              f"{proposed['assignee'] or '-'} ({proposed['reason']})  was: {actual.get('queue') or '-'}/"
              f"{actual.get('assignee') or '-'}")
    print(f"{report['compared']} compared with what happened, {report['changed']} would change")
    return 0


def describe_contact(contact: dict[str, Any]) -> str:
    handles = [h.get("handle") or h.get("id") for h in contact.get("handles", [])]
    crm = [f"{provider}:{ident}" for provider, ident in contact.get("crm_ids", {}).items()]
    return contact.get("phone") or contact.get("email") or next(iter(handles + crm), None) or "-"


# --- keys ------------------------------------------------------------------------------

def key_store(args: argparse.Namespace) -> Any:
    from switchboard_core import aws
    from switchboard_core.principals import ApiKeyStore

    table = args.table
    if not table and args.stage:
        table = stack_output(f"Switchboard-{args.stage}", "apikeys")
    if not table:
        state = state_of(args)
        runtime = state.read_json(state.runtime_file)
        if not runtime:
            raise CliError("no local hub is running; pass --stage or --table for a deployed hub")
        from infra.local.emulator import aws_environment

        os.environ.update(aws_environment(runtime["aws_endpoint"]))
        aws.reset_clients()
        table = runtime["tables"]["table:api_keys"]
    return ApiKeyStore(aws.resource("dynamodb").Table(table))


def stack_output(stack: str, contains: str) -> str:
    from switchboard_core import aws

    outputs = aws.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0].get("Outputs", [])
    for output in outputs:
        if contains in output["OutputKey"].lower():
            return output["OutputValue"]
    raise CliError(f"stack {stack} has no output whose name contains {contains!r}")


def run_keys_create(args: argparse.Namespace) -> int:
    from switchboard_core.principals import Role

    key, record = key_store(args).create(tenant=args.tenant, name=args.name, role=Role(args.role),
                                         now=datetime.now(UTC))
    print(f"created key {record.key_id} for {record.name} ({record.role.value}, tenant {record.tenant}):")
    print(key)
    print("It is shown only now; store it somewhere safe.")
    return 0


def run_keys_list(args: argparse.Namespace) -> int:
    for record in key_store(args).list():
        state = f"revoked {record.revoked_at:%Y-%m-%d}" if record.revoked_at else "active"
        print(f"{record.key_id}  {record.role.value:8} {record.tenant:12} {record.name:24} {state}")
    return 0


def run_keys_revoke(args: argparse.Namespace) -> int:
    from switchboard_core.errors import HubError

    try:
        record = key_store(args).revoke(args.key_id, datetime.now(UTC))
    except HubError as error:
        raise CliError(error.message) from None
    print(f"revoked {record.key_id} ({record.name})")
    return 0


# --- schema ----------------------------------------------------------------------------

def schema_text() -> str:
    from switchboard_core.events import json_schema

    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


def run_schema(args: argparse.Namespace) -> int:
    text = schema_text()
    if args.check:
        if not SCHEMA_PATH.exists() or SCHEMA_PATH.read_text() != text:
            print(f"{SCHEMA_PATH} is out of date: run `switchboard schema`", file=sys.stderr)
            return 1
        print(f"{SCHEMA_PATH} is up to date")
        return 0
    SCHEMA_PATH.parent.mkdir(parents=True, exist_ok=True)
    SCHEMA_PATH.write_text(text)
    print(f"wrote {SCHEMA_PATH}")
    return 0

