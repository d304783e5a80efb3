"""`switchboard`: run the hub locally and talk to it.

    switchboard dev                         start the hub on the embedded emulator
    switchboard send twilio [sms]           sign and post a realistic sample webhook
    switchboard events                      list what arrived (GET /admin/events)
    switchboard conversations               conversations routing has threaded
    switchboard timeline ct_...             one contact's events across channels
    switchboard sent                        auto-replies the local provider sandbox received
    switchboard calls                       live calls put through (call updates the sandbox received)
    switchboard routing rules get|put FILE  the rule set in force
    switchboard routing taxonomy get|put FILE
    switchboard routing simulate FILE       a proposed rule set against recent events
    switchboard keys create|list|revoke     manage admin API keys
    switchboard subscriptions create|list|show|pause|resume|rotate|delete
                                            partner subscriptions (signed webhooks to an endpoint)
    switchboard deliveries SUB_ID           a subscription's delivery attempts, newest first
    switchboard listen [--pattern FILE]     a local receiver, subscribed: prints each verified delivery
    switchboard campaigns list|show|validate|save|publish|fork|share|diff
                                            campaign definitions (flows from JSON or YAML files)
    switchboard sandbox reply --provider twilio --from +E164 --text "no"
                                            a customer's SMS to the hub, as the provider posts it
    switchboard sandbox calls|call-outcome  calls the hub placed, and what became of one
    switchboard schema [--check]            write (or check) the canonical event JSON Schema

Every error is one line on stderr saying what went wrong and what to do (exit status 2);
a refused rule set or taxonomy also lists each problem the hub named.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlencode

from infra.local.lambdas import InvalidDeliveryPolicy
from infra.local.runtime import (
    AdminKeyRefused,
    InvalidExample,
    LocalRuntime,
    StateDir,
    admin_key_problem,
    default_state_dir,
)

SCHEMA_PATH = Path("docs/schema/canonical-event.schema.json")
DEFAULT_PORT = 8080


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except CliError as error:
        return fail(str(error))
    except Exception as error:
        message = explain(error)
        if message is None:  # not an environment problem: a bug, which deserves its traceback
            raise
        return fail(message)


def fail(message: str) -> int:
    print(f"switchboard: {message}", file=sys.stderr)
    return 2


class CliError(Exception):
    pass


class Refused(CliError):
    """The hub answered a 4xx or 5xx."""

    def __init__(self, line: str, status: int, code: str | None, problems: list[dict[str, str]]) -> None:
        super().__init__(line)
        self.status, self.code, self.problems = status, code, problems


def explain(error: Exception) -> str | None:
    """One line for the errors the environment causes (AWS configuration, files), or None."""
    try:
        from botocore import exceptions as aws
    except ImportError:  # pragma: no cover - botocore comes with the CLI's dependencies
        aws = None
    if aws is not None:
        if isinstance(error, aws.NoRegionError):
            return "no AWS region is configured: pass --region (e.g. --region eu-west-1) or set AWS_DEFAULT_REGION"
        if isinstance(error, (aws.NoCredentialsError, aws.PartialCredentialsError)):
            return (
                "no AWS credentials found: set AWS_PROFILE (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), "
                "or run `aws configure` / `aws sso login`"
            )
        if isinstance(error, aws.ProfileNotFound):
            return f"{error}: check AWS_PROFILE against `aws configure list-profiles`"
        if isinstance(error, aws.ClientError):
            return explain_aws_refusal(error)
        if isinstance(error, aws.EndpointConnectionError) and "127.0.0.1" in str(error):
            return f"{error}: the local hub's AWS emulator is gone; start the hub again with `switchboard dev`"
        if isinstance(error, aws.BotoCoreError):
            return f"AWS call failed: {error}; check the network, --region and the credentials"
    if isinstance(error, OSError):
        where = f": {error.filename}" if error.filename else ""
        return f"{error.strerror or error}{where}"
    return None


def explain_aws_refusal(error: Any) -> str:
    details = error.response.get("Error", {})
    code, message = details.get("Code", "Error"), details.get("Message", str(error))
    operation = getattr(error, "operation_name", "a call")
    if code == "ValidationError" and "does not exist" in message:
        return f"{message}: check --stage and --region (the stack is Switchboard-<stage>, made by `npx cdk deploy`)"
    if code == "ResourceNotFoundException":
        return f"{message}: check --table, or --stage and --region"
    if code in ("ExpiredToken", "ExpiredTokenException", "UnrecognizedClientException", "InvalidClientTokenId"):
        return f"AWS refused the credentials ({code}: {message}): refresh them, e.g. `aws sso login`"
    if code.startswith("AccessDenied"):
        return f"AWS denied {operation} ({message}): use credentials allowed to call it"
    return f"AWS answered {code} to {operation}: {message}"


# --- the command tree (every option and subcommand has help: tests/unit/local/test_cli_help.py) -------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="switchboard",
        description="Switchboard webhook hub: run it locally and "
        "talk to it (a running hub, or a deployed stage for `keys`).",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="local state: admin key, demo connections, where the hub runs (default .switchboard/)",
    )
    commands = parser.add_subparsers(
        dest="command",
        required=True,
        metavar="COMMAND",
        help="what to do (`switchboard COMMAND --help` for its options)",
    )

    dev = commands.add_parser("dev", help="start the hub locally on the embedded AWS emulator")
    dev.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("SWITCHBOARD_PORT", str(DEFAULT_PORT))),
        help=f"port on 127.0.0.1 (default $SWITCHBOARD_PORT or {DEFAULT_PORT}; 0 picks a free one)",
    )
    dev.add_argument("--quiet", action="store_true", help="do not log each request")
    dev.add_argument(
        "--fresh",
        action="store_true",
        help="start empty: forget the events, keys, connections, rules... kept from earlier runs "
        "(the admin key and the demo connections' ids stay)",
    )
    dev.set_defaults(run=run_dev)

    send = commands.add_parser("send", help="post a signed sample webhook to the local hub")
    send.add_argument("provider", nargs="?", help="provider name, e.g. twilio (`--list` shows them)")
    send.add_argument("sample", nargs="?", help="sample name, e.g. sms (default: the provider's first)")
    send.add_argument("--list", action="store_true", help="list providers and their samples")
    add_url(send)
    send.set_defaults(run=run_send)

    events = commands.add_parser("events", help="list recent canonical events, newest first")
    events.add_argument("--limit", type=int, default=20, help="how many events (1-100, default 20)")
    events.add_argument("--type", help="only this event type, e.g. message.received (docs/events.md)")
    events.add_argument("--provider", help="only this provider's events, e.g. twilio")
    events.add_argument("--connection", help="only this connection's events (its id)")
    events.add_argument("--since", help="only events received at or after this ISO 8601 time")
    add_tenant(events)
    add_url(events)
    events.add_argument("--json", action="store_true", help="print the hub's JSON answer as it is")
    events.set_defaults(run=run_events)

    conversations = commands.add_parser("conversations", help="list conversations, most recently active first")
    conversations.add_argument("--status", help="only this status: open, assigned, waiting or resolved")
    conversations.add_argument("--assignee", help="only conversations assigned to this responder id")
    conversations.add_argument("--topic", help="only conversations about this topic")
    conversations.add_argument("--limit", type=int, default=20, help="how many conversations (1-100, default 20)")
    add_tenant(conversations)
    add_url(conversations)
    conversations.set_defaults(run=run_conversations)

    timeline = commands.add_parser("timeline", help="one contact's events across channels, newest first")
    timeline.add_argument("contact", help="a contact id (ct_...), as `events` and `conversations` show it")
    timeline.add_argument("--limit", type=int, default=20, help="how many events (1-100, default 20)")
    add_url(timeline)
    timeline.set_defaults(run=run_timeline)

    reply = commands.add_parser("reply", help="answer a customer on their own channel, in the conversation")
    reply.add_argument("conversation", help="a conversation id (cv_...), as `conversations` shows it")
    reply.add_argument("text", help="what to say")
    reply.add_argument("--channel", help="sms, whatsapp, messenger, instagram, x, telegram, slack, zendesk...")
    reply.add_argument("--visibility", choices=("public", "private"), help="a public reply or a private message")
    reply.add_argument("--in-reply-to", help="the customer's event id to answer (default: their latest message)")
    reply.add_argument("--wait", type=float, default=10.0, help="seconds to wait for the send's outcome (0: don't)")
    add_url(reply)
    reply.set_defaults(run=run_reply)

    sent = commands.add_parser("sent", help="auto-replies the local provider sandbox received (what customers got)")
    sent.set_defaults(run=run_sent)

    calls = commands.add_parser("calls", help="live calls put through: the call updates the provider sandbox received")
    calls.set_defaults(run=run_calls)
    notifications = commands.add_parser(
        "notifications", help="notifications sent locally (SMS, Slack, e-mail, webhooks), newest first"
    )
    notifications.add_argument("--limit", type=int, default=50, help="how many notifications (1-100, default 50)")
    add_url(notifications)
    add_tenant(notifications)
    notifications.set_defaults(run=run_notifications)

    routing = commands.add_parser("routing", help="the rule set, the taxonomy, and simulating a rule set")
    routing_commands = routing.add_subparsers(
        dest="routing_command", required=True, metavar="WHAT", help="rules, taxonomy or simulate"
    )
    for name, noun, hint in (
        ("rules", "rule set", "docs/examples/rules.json"),
        ("taxonomy", "taxonomy", "docs/examples/taxonomy.json"),
    ):
        item = routing_commands.add_parser(name, help=f"get or replace the {noun} in force ({hint} is a sample)")
        actions = item.add_subparsers(dest="action", required=True, metavar="ACTION", help="get or put")
        get = actions.add_parser(
            "get",
            help=f"print the {noun} in force as JSON (a file `put` takes"
            + ("; it carries the version, so a put refuses to overwrite a newer one)" if name == "rules" else ")"),
        )
        add_tenant(get)
        add_url(get)
        get.set_defaults(run=run_rules_get if name == "rules" else run_taxonomy_get)
        put = actions.add_parser("put", help=f"replace the {noun} with the one in FILE (validated by the hub)")
        put.add_argument("file", type=Path, metavar="FILE", help=f"JSON file with the {noun}, e.g. {hint}")
        if name == "rules":
            put.add_argument(
                "--expected-version",
                type=int,
                default=None,
                help="the version you edited (default: the `version` a file from `rules get` carries; a bare "
                "rule set replaces one in force only with this flag)",
            )
        add_tenant(put)
        add_url(put)
        put.set_defaults(run=run_rules_put if name == "rules" else run_taxonomy_put)
    simulate = routing_commands.add_parser(
        "simulate",
        help="what a proposed rule set would have done with recent events, next to what happened (changes nothing)",
    )
    simulate.add_argument("rules_file", type=Path, metavar="FILE", help="JSON file with the proposed rule set")
    simulate.add_argument("--limit", type=int, default=100, help="how many recent events to replay (1-100)")
    add_tenant(simulate)
    add_url(simulate)
    simulate.set_defaults(run=run_routing_simulate)

    keys = commands.add_parser("keys", help="create, list and revoke admin API keys")
    keys.add_argument("--stage", help="a deployed stage (reads the stack's outputs); default: the local hub")
    keys.add_argument("--table", help="the API keys table name, instead of --stage")
    keys.add_argument(
        "--region", help="AWS region of the deployed stage (default: AWS_DEFAULT_REGION or your AWS config)"
    )
    key_commands = keys.add_subparsers(
        dest="keys_command", required=True, metavar="ACTION", help="create, list or revoke"
    )
    create = key_commands.add_parser("create", help="create a key (it is shown once)")
    create.add_argument("--tenant", required=True, help="tenant the key belongs to ('*' for an operator)")
    create.add_argument("--name", required=True, help="who or what uses the key, e.g. ops or crm-sync")
    create.add_argument(
        "--role",
        required=True,
        choices=["admin", "staff", "partner"],
        help="admin: manage the tenant; staff: read it; partner: the provider catalogue and its own subscriptions",
    )
    create.set_defaults(run=run_keys_create)
    key_commands.add_parser("list", help="list keys (never the keys themselves)").set_defaults(run=run_keys_list)
    revoke = key_commands.add_parser("revoke", help="revoke a key at once")
    revoke.add_argument("key_id", help="the key's id, as `keys list` shows it")
    revoke.set_defaults(run=run_keys_revoke)

    add_subscription_commands(commands)
    from infra.local.campaigns_cli import add_campaign_commands  # it imports this module's helpers

    add_campaign_commands(commands)
    from infra.local.sandbox_cli import add_sandbox_commands  # it imports this module's helpers

    add_sandbox_commands(commands)

    schema = commands.add_parser("schema", help="write the canonical event JSON Schema under docs/")
    schema.add_argument("--check", action="store_true", help="fail if the committed schema differs")
    schema.set_defaults(run=run_schema)
    return parser


def add_subscription_commands(commands: Any) -> None:
    subscriptions = commands.add_parser(
        "subscriptions", help="partner subscriptions: signed webhooks of the events a pattern matches"
    )
    actions = subscriptions.add_subparsers(
        dest="subscriptions_command",
        required=True,
        metavar="ACTION",
        help="create, list, show, pause, resume, rotate or delete",
    )
    create = actions.add_parser("create", help="subscribe an endpoint (prints the signing secret, shown only once)")
    create.add_argument(
        "--url",
        dest="endpoint",
        metavar="URL",
        required=True,
        help="where deliveries go (locally: http://127.0.0.1:...)",
    )
    create.add_argument(
        "--pattern",
        required=True,
        help="an EventBridge event pattern: a JSON file, or the JSON itself, "
        'e.g. \'{"detail-type": ["message.received"]}\'',
    )
    create.add_argument("--description", default="", help="what the subscription is for")
    create.add_argument(
        "--ordered", action="store_true", help="deliver each conversation's events one at a time, in order"
    )
    add_tenant(create)
    create.set_defaults(run=run_subscriptions_create)
    listing = actions.add_parser("list", help="list subscriptions (a partner key: its own)")
    add_tenant(listing)
    listing.set_defaults(run=run_subscriptions_list)
    for name, text, run in (
        ("show", "print one subscription as JSON", run_subscriptions_show),
        ("pause", "stop deliveries; events meanwhile are held until resumed", run_subscriptions_pause),
        ("resume", "deliver again (also after the hub disabled it); held events are sent", run_subscriptions_resume),
        ("rotate", "a new signing secret; the old one keeps signing for a grace period", run_subscriptions_rotate),
        ("delete", "remove the subscription, its rule and its secret", run_subscriptions_delete),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument("subscription", metavar="ID", help="a subscription id (sub_...), as `list` shows it")
        action.set_defaults(run=run)
    for name, parser in actions.choices.items():
        add_key(parser)
        if name == "create":  # --url is the endpoint there
            parser.add_argument(
                "--hub-url", dest="url", help="hub base URL (default: $SWITCHBOARD_URL, else the local hub)"
            )
        else:
            add_url(parser)

    deliveries = commands.add_parser("deliveries", help="a subscription's delivery attempts, newest first")
    deliveries.add_argument("subscription", metavar="SUB_ID", help="a subscription id (sub_...)")
    deliveries.add_argument("--event", help="only this event's attempts (its id)")
    deliveries.add_argument("--limit", type=int, default=20, help="how many attempts (1-100, default 20)")
    add_key(deliveries)
    add_url(deliveries)
    deliveries.set_defaults(run=run_deliveries)

    listen = commands.add_parser(
        "listen",
        help="start a receiver on 127.0.0.1, subscribe it, verify and print each delivery (Ctrl-C deletes it)",
    )
    listen.add_argument(
        "--pattern", help="an event pattern (JSON file or JSON; default: every event of the key's tenant)"
    )
    listen.add_argument("--port", type=int, default=0, help="the receiver's port on 127.0.0.1 (default: a free one)")
    add_key(listen)
    add_tenant(listen)
    add_url(listen)
    listen.set_defaults(run=run_listen)


def add_key(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--key", help="the API key to use, e.g. a partner's (default: $SWITCHBOARD_ADMIN_KEY, else the local admin key)"
    )


def add_url(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", help="hub base URL (default: $SWITCHBOARD_URL, else the running local hub)")


def add_tenant(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tenant", help="the tenant to act on (default: the key's own; operator keys must pass it)")


def state_of(args: argparse.Namespace) -> StateDir:
    return StateDir(args.state_dir or default_state_dir())


# --- dev -------------------------------------------------------------------------------


def run_dev(args: argparse.Namespace) -> int:
    chosen = os.environ.get("SWITCHBOARD_ADMIN_KEY", "").strip()
    if chosen and (problem := admin_key_problem(chosen)):
        raise CliError(f"SWITCHBOARD_ADMIN_KEY {problem}; unset it to have one generated")
    log = None if args.quiet else (lambda line: print(f"[switchboard] {line}", flush=True))
    runtime = LocalRuntime(state_dir=args.state_dir or default_state_dir(), port=args.port, log=log, fresh=args.fresh)
    try:
        runtime.start()
    except (AdminKeyRefused, InvalidDeliveryPolicy) as exc:
        raise CliError(str(exc)) from None
    except InvalidExample as exc:
        raise CliError(
            f"the demo's routing set-up is invalid: {exc} (docs/examples/README.md has the format)"
        ) from None
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
        "  (from SWITCHBOARD_ADMIN_KEY)"
        if os.environ.get("SWITCHBOARD_ADMIN_KEY")
        else f"  (saved in {runtime.state.admin_key_file})",
        f"Console: {runtime.base_url}/console  (sign in with the admin API key)",
        f"State kept in {runtime.state.path} across restarts ({restored_line(runtime)}; `--fresh` starts empty)",
        f"Demo tenant '{runtime.demo['tenant']}' has one connection per provider:",
    ]
    for provider, entry in sorted(runtime.demo["connections"].items()):
        lines.append(f"  {provider:18} {runtime.base_url}/webhooks/{provider}/{entry['id']}")
    lines += [
        "and the sample routing set-up of docs/examples/ (rules, taxonomy, teams, responders).",
        "",
        "Try, in another terminal:",
        "  .venv/bin/switchboard send twilio sms        # a signed Twilio SMS webhook",
        "  .venv/bin/switchboard send meta whatsapp     # a signed WhatsApp message",
        "  .venv/bin/switchboard events                 # what arrived, from the event log",
        "  .venv/bin/switchboard conversations          # where routing put it, and who has it",
        "  .venv/bin/switchboard sent                   # auto-replies sent (to this machine's provider sandbox)",
        f"  curl -H 'Authorization: Bearer {runtime.admin_key}' {runtime.base_url}/admin/providers",
        "Press Ctrl-C to stop.",
    ]
    return "\n".join(lines)


def restored_line(runtime: LocalRuntime) -> str:
    if not runtime.restored:
        return "started empty"
    return f"restored, {runtime.replayed} journalled webhook(s) replayed"


# --- talking to a running hub ----------------------------------------------------------


def running_hub(state: StateDir, url: str | None) -> str:
    url = url or os.environ.get("SWITCHBOARD_URL")
    if url:
        return url.rstrip("/")
    runtime = state.read_json(state.runtime_file)
    if not runtime:
        raise CliError("no local hub is running: start one with `switchboard dev` (or `make dev`), or pass --url")
    return str(runtime["base_url"])


def admin_key(state: StateDir) -> str:
    key = os.environ.get("SWITCHBOARD_ADMIN_KEY", "").strip()
    if not key and state.admin_key_file.exists():
        key = state.admin_key_file.read_text().strip()
    if not key:
        raise CliError("no admin key: set SWITCHBOARD_ADMIN_KEY, or start the local hub once (`switchboard dev`)")
    return key


def http(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    # The URL is the hub's own (SWITCHBOARD_URL or the local runtime's), http or https.
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()
    except urllib.error.URLError as error:
        raise CliError(
            f"cannot reach {url} ({error.reason}): is the hub running? Start it with `switchboard dev`, or pass --url"
        ) from None
    except OSError as error:  # reset or timed out after connecting
        raise CliError(
            f"{method} {url} failed ({error}): is the hub running? Check the `switchboard dev` terminal"
        ) from None


def admin_call(
    args: argparse.Namespace, method: str, path: str, params: dict[str, Any] | None = None, body: Any = None
) -> Any:
    """One admin API call; the JSON answer, or a Refused saying what the hub said and what to do."""
    state = state_of(args)
    base = running_hub(state, getattr(args, "url", None))
    key = getattr(args, "key", None) or admin_key(state)
    query = urlencode({k: str(v) for k, v in (params or {}).items() if v not in (None, "")})
    headers = {"Authorization": f"Bearer {key}"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    status, _, raw = http(method, f"{base}{path}" + (f"?{query}" if query else ""), data, headers)
    if not 200 <= status < 300:
        raise refusal(method, path, status, raw, key, state)
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        raise CliError(
            f"{method} {path} answered {status} with something that is not JSON: "
            f"{raw[:120].decode(errors='replace')!r}; is --url a Switchboard hub?"
        ) from None


def refusal(method: str, path: str, status: int, raw: bytes, key: str, state: StateDir) -> Refused:
    try:
        answer = json.loads(raw) if raw else {}
    except ValueError:
        answer = {}
    error = answer.get("error") if isinstance(answer, dict) else None
    where = f"{method} {path} -> {status}"
    if not isinstance(error, dict):  # the API gateway's own answer: the authorizer, or no such route
        if status in (401, 403):
            shape = "" if key.startswith("sbk_") else " (a Switchboard key starts with sbk_)"
            return Refused(
                f"{where}: the hub refused the admin key{shape}: use the key `switchboard dev` printed "
                f"(saved in {state.admin_key_file}), or set SWITCHBOARD_ADMIN_KEY to a valid one",
                status,
                None,
                [],
            )
        text = (answer.get("message") if isinstance(answer, dict) else None) or raw[:200].decode(errors="replace")
        return Refused(f"{where}: {text}" + server_hint(status), status, None, [])
    code, message = error.get("code"), error.get("message", "")
    found_details = error.get("details")
    details = found_details if isinstance(found_details, dict) else {}
    problems = [p for p in details.get("problems", []) if isinstance(p, dict)]
    hint = {
        "version_conflict": ": someone saved a newer rule set; `switchboard routing rules get > FILE` and "
        "edit that, or pass --expected-version to replace it",
        "no_rule_set": ": start from docs/examples/rules.json with `switchboard routing rules put FILE`",
        "forbidden": ": use a key of that tenant with the role named, or an operator key (tenant '*')",
    }.get(code or "", server_hint(status))
    return Refused(f"{where} {code}: {message}{hint}", status, code, problems)


def server_hint(status: int) -> str:
    if status >= 500:
        return " (the hub failed: its log is in the `switchboard dev` terminal)"
    return ""


def problem_lines(problems: Sequence[dict[str, str]], strip: str = "") -> list[str]:
    lines = []
    for problem in problems:
        field = str(problem.get("field", "(body)"))
        lines.append(f"  {field.removeprefix(strip) or '(the file)'}: {problem.get('problem', 'invalid')}")
    return lines


def read_json_file(path: Path) -> Any:
    try:
        text = path.read_text()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise CliError(f"{path} is not valid JSON: {exc}") from None


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns as wide as their widest cell; the last one is not padded."""
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers) - 1)]
    return "\n".join(
        "  ".join([*(str(cell).ljust(w) for cell, w in zip(row[:-1], widths, strict=True)), str(row[-1])]).rstrip()
        for row in [headers, *rows]
    )


def whose(args: argparse.Namespace) -> str:
    """The tenant a listing was for: the one asked for, else the key's own."""
    if getattr(args, "tenant", None):
        return str(args.tenant)
    try:
        return str(admin_call(args, "GET", "/admin/whoami")["tenant"])
    except CliError:
        return "this key's tenant"


def filtered(filters: dict[str, str | None]) -> str:
    words = {
        "type": "of type",
        "provider": "from provider",
        "connection": "on connection",
        "since": "since",
        "status": "with status",
        "assignee": "assigned to",
        "topic": "about topic",
    }
    return " ".join(f"{words[name]} {value!r}" for name, value in filters.items() if value)


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
    if args.provider == "hubspot" and args.sample == "thread-message":
        # The webhook names only the thread and message: the customer's message goes into the provider
        # sandbox first, which the hub then fetches like HubSpot's Conversations API.
        from infra.local.samples.hubspot import thread_message

        message = json.dumps(thread_message(signed)).encode()
        posted, _, answer = http("POST", f"{sandbox_url(args, 'thread messages')}/_sandbox/hubspot/messages", message)
        if posted != 201:
            raise CliError(f"the provider sandbox refused the thread message: {posted} {answer.decode()[:200]}")
    status, _, body = http(signed.method, signed.url, signed.body, signed.headers)
    print(f"{signed.method} {signed.url}\n-> {status} {body.decode(errors='replace')[:500]}")
    return 0 if 200 <= status < 300 else 1


def contact_ids(events: list[dict[str, Any]]) -> dict[str, str]:
    """event id -> contact id, from routing's derived events (they carry the contact routing
    resolved, and name the event they came from); replies name their source event too."""
    found: dict[str, str] = {}
    for event in events:
        attributes = event.get("attributes") or {}
        contact = attributes.get("contact")
        if isinstance(contact, dict) and contact.get("id"):
            found[event["id"]] = contact["id"]
            if attributes.get("source_event"):
                found.setdefault(str(attributes["source_event"]), contact["id"])
    for event in events:
        source = (event.get("attributes") or {}).get("source_event")
        if event["id"] not in found and source in found:
            found[event["id"]] = found[source]
    return found


def run_events(args: argparse.Namespace) -> int:
    filters = {name: getattr(args, name) for name in ("type", "provider", "connection", "since")}
    payload = admin_call(args, "GET", "/admin/events", {**filters, "tenant": args.tenant, "limit": args.limit})
    if args.json:
        print(json.dumps(payload, indent=2))
        return 0
    events = payload["events"]
    refuse_other_tenants(args, events)
    if not events:
        print(no_events_line(args, filters))
        return 0
    ids = contact_ids(events)
    if any(e["id"] not in ids for e in events) and args.provider != "routing":
        # Filtered past routing's events (which carry the contact id): read its latest ones too.
        derived = admin_call(
            args, "GET", "/admin/events", {"provider": "routing", "tenant": args.tenant, "limit": 100}
        )["events"]
        ids = contact_ids(derived + events)
    rows = [
        (
            e["received_at"][:19],
            e["provider"],
            e["type"],
            ids.get(e["id"], "-"),
            describe_contact(e["contact"]),
            (e.get("text") or "").replace("\n", " ")[:60],
        )
        for e in events
    ]
    print(table(("RECEIVED", "PROVIDER", "TYPE", "CONTACT ID", "FROM", "TEXT"), rows))
    return 0


def refuse_other_tenants(args: argparse.Namespace, listed: list[dict[str, Any]]) -> None:
    """Never show one tenant's data under another's name: a hub that ignored --tenant (one
    from before it refused tenants a key may not read) is caught here."""
    others = sorted({str(item.get("tenant")) for item in listed} - {args.tenant}) if args.tenant else []
    if others:
        raise CliError(
            f"asked for tenant {args.tenant!r} but the hub listed tenant {others[0]!r}: this key may not "
            f"read tenant {args.tenant!r}; use a key of that tenant, or an operator key (tenant '*')"
        )


def no_events_line(args: argparse.Namespace, filters: dict[str, str | None]) -> str:
    from switchboard_core.events import EVENT_TYPES

    tenant = whose(args)
    if not any(filters.values()):
        return f"no events yet for tenant {tenant}: try `switchboard send twilio`"
    line = f"no events {filtered(filters)} for tenant {tenant}"
    if filters["type"] and filters["type"] not in EVENT_TYPES:
        line += f" ({filters['type']!r} is not an event type; they are listed in docs/events.md)"
    return line


def run_reply(args: argparse.Namespace) -> int:
    body = {"text": args.text, "channel": args.channel, "visibility": args.visibility, "in_reply_to": args.in_reply_to}
    path = f"/admin/conversations/{args.conversation}/messages"
    queued = admin_call(args, "POST", path, body={k: v for k, v in body.items() if v})
    print(f"queued {queued['message_id']} on {queued['channel']} to {queued['to']}")
    deadline = time.monotonic() + max(args.wait, 0)
    state = "queued"
    while time.monotonic() < deadline:
        listed = admin_call(args, "GET", path)
        mine = next((m for m in listed["messages"] if m.get("message_id") == queued["message_id"]), None)
        state = (mine or {}).get("state", state)
        if state not in ("queued", "sending"):
            reason = (mine or {}).get("reason")
            print(f"{state}" + (f": {reason}" if reason else ""))
            return 1 if state == "failed" else 0
        time.sleep(0.3)
    if args.wait:
        print(f"still {state} after {args.wait:g} s: `switchboard events --type message.status_updated` shows it later")
    return 0


def run_conversations(args: argparse.Namespace) -> int:
    filters = {name: getattr(args, name) for name in ("status", "assignee", "topic")}
    payload = admin_call(args, "GET", "/admin/conversations", {**filters, "tenant": args.tenant, "limit": args.limit})
    found = payload["conversations"]
    refuse_other_tenants(args, found)
    if not found:
        what = filtered(filters)
        print(
            f"no conversations {what + ' ' if what else 'yet '}for tenant {whose(args)}"
            + ("" if what else ": routing threads messages as they arrive (try `switchboard send twilio`)")
        )
        return 0
    rows = [
        (
            c["id"],
            c.get("contact_id") or "-",
            c["status"],
            c.get("assignee") or "-",
            c.get("queue") or "-",
            ",".join(c["channels"]) or "-",
            ",".join(c.get("topics", [])) or "-",
            ",".join(c.get("tags", [])) or "-",
            c["last_activity_at"][:19],
        )
        for c in found
    ]
    print(
        table(
            (
                "CONVERSATION",
                "CONTACT ID",
                "STATUS",
                "ASSIGNEE",
                "QUEUE",
                "CHANNELS",
                "TOPICS",
                "TAGS",
                "LAST ACTIVITY",
            ),
            rows,
        )
    )
    return 0


def sandbox_url(args: argparse.Namespace, kept: str) -> str:
    """The running local hub's provider sandbox; a clear error when no hub runs (`kept`: what it keeps)."""
    state = state_of(args)
    sandbox = state.read_json(state.runtime_file).get("provider_apis")
    if not sandbox:
        raise CliError(f"no local hub is running: start one with `switchboard dev` ({kept} are kept in its sandbox)")
    return str(sandbox)


def sandbox_records(sandbox: str, kind: str) -> list[dict[str, Any]]:
    """What the provider sandbox recorded: `messages` (SMS, Slack...) or `calls` (call updates)."""
    status, _, body = http("GET", f"{sandbox}/_sandbox/{kind}")
    if status != 200:
        raise CliError(f"the provider sandbox answered {status}; restart `switchboard dev`")
    return list(json.loads(body)[kind])


def run_sent(args: argparse.Namespace) -> int:
    messages = sandbox_records(sandbox_url(args, "auto-replies"), "messages")
    if not messages:
        print("no replies sent yet: a rule with an auto_reply action answers customers (docs/examples/README.md)")
        return 0
    rows = [(m["provider"], m["to"], m["message_id"][:24], m["text"][:90]) for m in messages]
    print(table(("PROVIDER", "TO", "MESSAGE ID", "TEXT"), rows))
    return 0


def run_calls(args: argparse.Namespace) -> int:
    from xml.etree import ElementTree as ET

    updates = sandbox_records(sandbox_url(args, "call updates"), "calls")
    if not updates:
        print("no live call put through yet: a rule that assigns calls, and responders with an sms contact point")
        return 0
    rows = []
    for update in updates:
        document = ET.fromstring(update["twiml"]) if update.get("twiml") else None  # noqa: S314 - the hub's own TwiML
        if document is not None and document.find("Dial/Number") is not None:
            action = f"dial {document.findtext('Dial/Number')}"
        elif document is not None and document.find("Record") is not None:
            action = "voicemail"
        elif update.get("provider") == "vonage":  # a Voice API call update: transfer to an NCCO
            action = vonage_call_action(update.get("body") or {})
        elif update.get("action"):  # a Telnyx Call Control command
            target = (update.get("body") or {}).get("to")
            action = f"{update['action']} {target}" if target else update["action"]
        else:
            action = update.get("status") or update.get("url") or "other"
        rows.append((update["provider"], update["call_sid"], action))
    print(table(("PROVIDER", "CALL", "ACTION"), rows))
    return 0


def vonage_call_action(body: dict[str, Any]) -> str:
    """A Vonage call update in a few words: `connect <number>`, `voicemail`, `talk`..."""
    destination = body.get("destination")
    ncco = destination.get("ncco") if isinstance(destination, dict) else None
    actions = [a for a in ncco if isinstance(a, dict)] if isinstance(ncco, list) else []
    for action in actions:
        if action.get("action") == "connect":
            numbers = [e.get("number") for e in action.get("endpoint") or [] if isinstance(e, dict)]
            return f"connect {' '.join(str(n) for n in numbers if n)}".strip()
    if any(a.get("action") == "record" for a in actions):
        return "voicemail"
    names = [str(a.get("action")) for a in actions]
    return f"{body.get('action', 'update')} {' '.join(names)}".strip()


def run_notifications(args: argparse.Namespace) -> int:
    """notification.* from the event log, each with the text the channel got: SMS and Slack
    from the provider sandbox, e-mail from the emulator's SES (moto keeps what it sends),
    webhooks from the event itself (their body is the event's details)."""
    state = state_of(args)
    running = state.read_json(state.runtime_file)
    if not running.get("provider_apis"):
        raise CliError("no local hub is running: start one with `switchboard dev` (notifications are sent from it)")
    events = [
        e
        for kind in ("notification.sent", "notification.failed")
        for e in admin_call(args, "GET", "/admin/events", {"type": kind, "tenant": args.tenant, "limit": args.limit})[
            "events"
        ]
    ]
    refuse_other_tenants(args, events)
    if not events:
        print(
            "no notifications yet: routing.assigned, .unassigned and .escalated reach responders and teams with "
            "contact points (try `switchboard send telegram location`: the nearest field technician gets an SMS)"
        )
        return 0
    texts = sandbox_texts(running["provider_apis"]) | ses_texts(running.get("aws_endpoint"))
    rows = []
    for event in sorted(events, key=lambda e: e["received_at"], reverse=True)[: args.limit]:
        attributes = event["attributes"]
        outcome = "sent" if event["type"] == "notification.sent" else f"failed: {attributes.get('reason')}"
        recipient = attributes.get("responder") or f"team {attributes.get('team')}"
        to, text = texts.get(str(attributes.get("provider_message_id")), ("-", ""))
        if attributes.get("digest"):
            text = text or f"digest of {attributes.get('count')}"
        rows.append(
            (
                event["received_at"][:19],
                recipient,
                attributes.get("channel") or "-",
                to,
                outcome,
                text.replace("\n", " ")[:80],
            )
        )
    print(table(("SENT", "RECIPIENT", "CHANNEL", "TO", "OUTCOME", "TEXT"), rows))
    return 0


def sandbox_texts(sandbox: str) -> dict[str, tuple[str, str]]:
    return {m["message_id"]: (m["to"], m["text"]) for m in sandbox_records(sandbox, "messages")}


def ses_texts(endpoint: str | None) -> dict[str, tuple[str, str]]:
    """What the emulator's SES sent, by message id (moto's model data: its Message instances)."""
    if not endpoint:
        return {}
    status, _, body = http("GET", f"{endpoint}/moto-api/data.json")
    if status != 200:
        return {}
    messages = json.loads(body).get("ses", {}).get("Message", [])
    return {
        str(m.get("id")): (",".join((m.get("destinations") or {}).get("ToAddresses", [])), str(m.get("body", "")))
        for m in messages
        if isinstance(m, dict)
    }


def run_timeline(args: argparse.Namespace) -> int:
    payload = admin_call(args, "GET", f"/admin/contacts/{args.contact}/timeline", {"limit": args.limit})
    if not payload["events"]:
        print(f"nothing on {args.contact}'s timeline yet")
        return 0
    rows = [
        (
            e["occurred_at"][:19],
            e["channel"],
            e["provider"],
            e["type"],
            e.get("conversation") or "-",
            (e.get("text") or "").replace("\n", " ")[:60],
        )
        for e in payload["events"]
    ]
    print(table(("OCCURRED", "CHANNEL", "PROVIDER", "TYPE", "CONVERSATION", "TEXT"), rows))
    return 0


# --- routing: rule set, taxonomy, simulation -------------------------------------------


def run_rules_get(args: argparse.Namespace) -> int:
    # The whole answer, version included: `rules put` sends that version back, so a rule set
    # someone saved in between is refused (409) instead of silently overwritten.
    payload = admin_call(args, "GET", "/admin/routing/rules", {"tenant": args.tenant})
    print(json.dumps({"rule_set": payload["rule_set"], "version": payload["version"]}, indent=2))
    return 0


def run_rules_put(args: argparse.Namespace) -> int:
    document = read_json_file(args.file)
    saved_answer = isinstance(document, dict) and "rule_set" in document  # from `rules get`
    rule_set = document["rule_set"] if saved_answer else document
    expected = args.expected_version
    if expected is None and saved_answer:
        expected = document.get("version")
    elif expected is None:
        in_force = version_in_force(args)
        if in_force is not None:
            raise CliError(
                f"{args.file} is a bare rule set and version {in_force} is in force: edit the output of "
                f"`switchboard routing rules get` (it carries the version), or pass --expected-version {in_force} "
                "to replace it"
            )
    try:
        saved = admin_call(
            args,
            "PUT",
            "/admin/routing/rules",
            {"tenant": args.tenant},
            {"rule_set": rule_set, "expected_version": expected},
        )
    except Refused as refused:
        raise_file_problems(refused, args.file, "rule_set.")
    print(f"saved {args.file} as rule set version {saved['version']} ({saved['rules']} rules)")
    return 0


def version_in_force(args: argparse.Namespace) -> int | None:
    """The tenant's rule set version, or None before its first rule set."""
    try:
        return int(admin_call(args, "GET", "/admin/routing/rules", {"tenant": args.tenant})["version"])
    except Refused as refused:
        if refused.code != "no_rule_set":
            raise
        return None


def run_taxonomy_get(args: argparse.Namespace) -> int:
    payload = admin_call(args, "GET", "/admin/routing/taxonomy", {"tenant": args.tenant})
    print(json.dumps(payload["taxonomy"], indent=2))
    print(f"(version {payload['version']}; `switchboard routing taxonomy put FILE` replaces it)", file=sys.stderr)
    return 0


def run_taxonomy_put(args: argparse.Namespace) -> int:
    taxonomy = read_json_file(args.file)
    if isinstance(taxonomy, dict) and "taxonomy" in taxonomy:  # a saved GET answer works too
        taxonomy = taxonomy["taxonomy"]
    try:
        saved = admin_call(args, "PUT", "/admin/routing/taxonomy", {"tenant": args.tenant}, taxonomy)
    except Refused as refused:
        raise_file_problems(refused, args.file, "")
    print(f"saved {args.file} as taxonomy version {saved['version']} ({saved['phrases']} phrases)")
    return 0


def raise_file_problems(refused: Refused, path: Path, strip: str) -> NoReturn:
    """A 400 naming fields: one line saying the file was refused, then each problem with
    the field as the file names it."""
    if refused.status != 400 or not refused.problems:
        raise refused
    count = len(refused.problems)
    raise CliError(
        "\n".join(
            [
                f"the hub refused {path} ({count} problem{'s' if count != 1 else ''}; nothing changed):",
                *problem_lines(refused.problems, strip),
            ]
        )
    ) from None


def run_routing_simulate(args: argparse.Namespace) -> int:
    rule_set = read_json_file(args.rules_file)
    if isinstance(rule_set, dict) and "rule_set" in rule_set:
        rule_set = rule_set["rule_set"]
    try:
        report = admin_call(
            args,
            "POST",
            "/admin/routing/simulate",
            {"tenant": args.tenant},
            {"rule_set": rule_set, "limit": args.limit},
        )
    except Refused as refused:
        raise_file_problems(refused, args.rules_file, "rule_set.")
    print(simulation_text(report))
    return 0


def simulation_text(report: dict[str, Any]) -> str:
    """Per event: '*' where the proposal changes something, what it would do, what happened."""
    lines = []
    for row in report["events"]:
        proposed, actual = row["proposed"], row.get("actual")
        mark = "*" if row["changed"] else " "
        lines.append(
            f"{mark} {row.get('occurred_at', '')[:19]}  {row['provider']} {row['type']}"
            + (f"  topics: {','.join(row['topics'])}" if row.get("topics") else "")
        )
        lines.append(f"    would: {outcome_text(proposed)}  ({proposed['reason']})")
        if actual is None:
            lines.append(f"    was:   not compared: {row.get('not_compared') or 'no outcome recorded'}")
        else:
            changes = row.get("changes") or []
            lines.append(
                f"    was:   {outcome_text(actual)}  ({actual.get('reason') or actual.get('action')})"
                + (f"  changes: {', '.join(changes)}" if changes else "")
            )
    total = len(report["events"])
    summary = (
        f"{total} customer event{'s' if total != 1 else ''}: {report['compared']} compared with what "
        f"happened, {report['changed']} would change"
    )
    if report.get("not_compared"):
        summary += f", {report['not_compared']} not compared (outcome unknown, see above)"
    if report.get("not_routed"):
        summary += f"; {report['not_routed']} had no rule set in force"
    lines.append(summary)
    return "\n".join(lines)


def outcome_text(outcome: dict[str, Any]) -> str:
    text = f"{outcome.get('queue') or '-'}/{outcome.get('assignee') or '-'}"
    if "tags" in outcome:
        text += f"  tags: {','.join(map(str, outcome['tags'] or [])) or '-'}"
    if "auto_reply_rule" in outcome:
        text += f"  reply: {outcome['auto_reply_rule'] or '-'}"
    return text


def describe_contact(contact: dict[str, Any]) -> str:
    handles = [h.get("handle") or h.get("id") for h in contact.get("handles", [])]
    crm = [f"{provider}:{ident}" for provider, ident in contact.get("crm_ids", {}).items()]
    return contact.get("phone") or contact.get("email") or next(iter(handles + crm), None) or "-"


# --- partner subscriptions -------------------------------------------------------------

# What `listen` subscribes to without --pattern: every event of the key's tenant.
EVERY_EVENT = {"source": [{"prefix": "switchboard."}]}


def read_pattern(value: str) -> Any:
    """An event pattern given as JSON on the command line, or as a file holding it."""
    if value.lstrip().startswith("{"):
        try:
            return json.loads(value)
        except ValueError as exc:
            raise CliError(f"--pattern is not valid JSON: {exc}") from None
    return read_json_file(Path(value))


def raise_pattern_problems(refused: Refused) -> NoReturn:
    """A refused subscription, with each problem the hub named (field: problem) on its own line
    when there are several (the message itself names the first)."""
    if len(refused.problems) > 1:
        raise CliError("\n".join([str(refused), *problem_lines(refused.problems)])) from None
    raise refused


def subscription_line(subscription: dict[str, Any]) -> str:
    return f"{subscription['id']} ({subscription['status']}, tenant {subscription['tenant']}) -> {subscription['url']}"


def run_subscriptions_create(args: argparse.Namespace) -> int:
    body = {
        "url": args.endpoint,
        "event_pattern": read_pattern(args.pattern),
        "description": args.description,
        "ordered": args.ordered,
    }
    if args.tenant:
        body["tenant"] = args.tenant
    try:
        created = admin_call(args, "POST", "/admin/subscriptions", body=body)
    except Refused as refused:
        raise_pattern_problems(refused)
    print(f"created subscription {subscription_line(created)}")
    print(f"signing secret (shown only now): {created['secret']}")
    print("verify deliveries with the standardwebhooks library and this secret (docs/partners.md)")
    return 0


def run_subscriptions_list(args: argparse.Namespace) -> int:
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = admin_call(args, "GET", "/admin/subscriptions", {"tenant": args.tenant, "limit": 100, "cursor": cursor})
        found += page["subscriptions"]
        cursor = page.get("next_cursor")
        if not cursor:
            break
    refuse_other_tenants(args, found)
    if not found:
        print(f"no subscriptions for tenant {whose(args)}: `switchboard subscriptions create` or `switchboard listen`")
        return 0
    rows = [
        (
            s["id"],
            s["status"],
            s["url"],
            json.dumps(s["event_pattern"], separators=(",", ":"))[:60],
            "yes" if s["ordered"] else "no",
            s.get("description") or "-",
        )
        for s in found
    ]
    print(table(("ID", "STATUS", "URL", "PATTERN", "ORDERED", "DESCRIPTION"), rows))
    return 0


def run_subscriptions_show(args: argparse.Namespace) -> int:
    print(json.dumps(admin_call(args, "GET", f"/admin/subscriptions/{args.subscription}"), indent=2))
    return 0


def run_subscriptions_pause(args: argparse.Namespace) -> int:
    paused = admin_call(args, "POST", f"/admin/subscriptions/{args.subscription}/pause")
    print(f"paused {subscription_line(paused)}: events are held until `switchboard subscriptions resume`")
    return 0


def run_subscriptions_resume(args: argparse.Namespace) -> int:
    resumed = admin_call(args, "POST", f"/admin/subscriptions/{args.subscription}/resume")
    line = f"resumed {subscription_line(resumed)}: {resumed['resent']} held event(s) sent again"
    if resumed["missing_events"]:
        line += f"; {len(resumed['missing_events'])} held event(s) are no longer in the event log"
    print(line)
    return 0


def run_subscriptions_rotate(args: argparse.Namespace) -> int:
    rotated = admin_call(args, "POST", f"/admin/subscriptions/{args.subscription}/rotate")
    print(f"new signing secret for {rotated['id']} (shown only now): {rotated['secret']}")
    print(f"the previous secret keeps signing too until {rotated['previous_secret_valid_until']}")
    return 0


def run_subscriptions_delete(args: argparse.Namespace) -> int:
    admin_call(args, "DELETE", f"/admin/subscriptions/{args.subscription}")
    print(f"deleted {args.subscription}")
    return 0


def run_deliveries(args: argparse.Namespace) -> int:
    page = admin_call(
        args,
        "GET",
        f"/admin/subscriptions/{args.subscription}/deliveries",
        {"event_id": args.event, "limit": args.limit},
    )
    attempts = page["attempts"]
    if not attempts:
        print(f"no delivery attempts yet for {args.subscription}" + (f" and event {args.event}" if args.event else ""))
        return 0
    rows = [
        (
            a["at"][:19],
            a["event_id"],
            str(a["attempt"]),
            a["outcome"],
            str(a["status_code"]) if a.get("status_code") is not None else (a.get("error") or "-"),
            f"{a['latency_ms']} ms",
            (a.get("next_attempt_at") or "-")[:19],
            a["trigger"],
            (a.get("response_excerpt") or "").replace("\n", " ")[:40],
        )
        for a in attempts
    ]
    print(table(("AT", "EVENT", "#", "OUTCOME", "RESULT", "LATENCY", "NEXT ATTEMPT", "TRIGGER", "RESPONSE"), rows))
    return 0


class Receiver:
    """A webhook receiver on 127.0.0.1 that verifies each delivery with the public
    `standardwebhooks` library (as a partner would), prints it and answers 200; a
    delivery whose signature does not verify is refused with 401 (the hub retries it)."""

    MAX_BODY = 1024 * 1024

    def __init__(self, port: int, out: Any = None) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self._secret_known = threading.Event()
        self._webhook: Any = None
        self._out = out or sys.stdout
        self.received: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # the name http.server calls
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(min(length, Receiver.MAX_BODY))
                status = receiver.receive(body, {k.lower(): v for k, v in self.headers.items()})
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:  # each delivery is printed by receive()
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/webhook"

    def use_secret(self, secret: str) -> None:
        from standardwebhooks.webhooks import Webhook

        self._webhook = Webhook(secret)
        self._secret_known.set()

    def receive(self, body: bytes, headers: dict[str, str]) -> int:
        from standardwebhooks.webhooks import WebhookVerificationError

        # A delivery may come before the subscription's answer (and its secret) did.
        if not self._secret_known.wait(timeout=10):
            return 503
        try:
            self._webhook.verify(body, headers, json_parse=False)
        except (WebhookVerificationError, ValueError) as exc:  # ValueError: a malformed header or body
            print(f"refused a delivery (401): the signature does not verify ({exc})", file=self._out, flush=True)
            return 401
        try:
            payload = json.loads(body)
        except ValueError:
            print("refused a delivery (400): signed, but its body is not JSON", file=self._out, flush=True)
            return 400
        self.received.append(payload)
        print(delivery_line(payload, headers), file=self._out, flush=True)
        return 200

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def delivery_line(payload: Any, headers: dict[str, str]) -> str:
    data = payload.get("data") if isinstance(payload, dict) else None
    data = data if isinstance(data, dict) else {}
    contact = data.get("contact") if isinstance(data.get("contact"), dict) else {}
    summary = " ".join(
        part
        for part in (
            data.get("provider"),
            describe_contact(contact) if contact else None,
            repr((data.get("text") or "").replace("\n", " ")[:60]) if data.get("text") else None,
        )
        if part
    )
    stamp = str(payload.get("timestamp") or "")[:19] if isinstance(payload, dict) else ""
    event_type = payload.get("type") if isinstance(payload, dict) else None
    return f"{stamp}  {event_type}  {data.get('id') or headers.get('webhook-id')}  {summary}"


def wait_for_interrupt() -> None:
    """Until Ctrl-C, or SIGTERM (`kill`, a closed terminal's process manager): either way the
    caller unsubscribes, so a stopped `listen` leaves no subscription behind."""
    import signal

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        while True:
            time.sleep(3600)
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_listen(args: argparse.Namespace) -> int:
    pattern = read_pattern(args.pattern) if args.pattern else EVERY_EVENT
    try:
        receiver = Receiver(args.port)
    except OSError as exc:
        raise CliError(f"cannot listen on 127.0.0.1:{args.port} ({exc}); pass another --port") from None
    try:
        body: dict[str, Any] = {"url": receiver.url, "event_pattern": pattern, "description": "switchboard listen"}
        if args.tenant:
            body["tenant"] = args.tenant
        try:
            created = admin_call(args, "POST", "/admin/subscriptions", body=body)
        except Refused as refused:
            raise_pattern_problems(refused)
        receiver.use_secret(created["secret"])
        print(f"listening on {receiver.url} as subscription {created['id']} (tenant {created['tenant']})", flush=True)
        print("each delivery is verified with standardwebhooks and printed; Ctrl-C stops and unsubscribes", flush=True)
        try:
            wait_for_interrupt()
        except KeyboardInterrupt:
            pass
        admin_call(args, "DELETE", f"/admin/subscriptions/{created['id']}")
        print(f"\nunsubscribed ({created['id']} deleted); {len(receiver.received)} delivery(ies) received", flush=True)
    finally:
        receiver.stop()
    return 0


# --- keys ------------------------------------------------------------------------------


def key_store(args: argparse.Namespace) -> Any:
    from switchboard_core import aws
    from switchboard_core.principals import ApiKeyStore

    if args.region:
        os.environ["AWS_REGION"] = os.environ["AWS_DEFAULT_REGION"] = args.region
        aws.reset_clients()
    table_name = args.table
    if not table_name and args.stage:
        table_name = stack_output(f"Switchboard-{args.stage}", "apikeys")
    if not table_name:
        state = state_of(args)
        runtime = state.read_json(state.runtime_file)
        if not runtime:
            raise CliError(
                "no local hub is running: start one with `switchboard dev`, or pass --stage (and "
                "--region) for a deployed hub"
            )
        from infra.local.emulator import aws_environment

        os.environ.update(aws_environment(runtime["aws_endpoint"]))
        aws.reset_clients()
        table_name = runtime["tables"]["table:api_keys"]
    return ApiKeyStore(aws.resource("dynamodb").Table(table_name))


def stack_output(stack: str, contains: str) -> str:
    from switchboard_core import aws

    outputs = aws.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0].get("Outputs", [])
    for output in outputs:
        if contains in output["OutputKey"].lower():
            return str(output["OutputValue"])
    raise CliError(f"stack {stack} has no output whose name contains {contains!r}: redeploy it, or pass --table")


def run_keys_create(args: argparse.Namespace) -> int:
    from switchboard_core.principals import Role

    key, record = key_store(args).create(
        tenant=args.tenant, name=args.name, role=Role(args.role), now=datetime.now(UTC)
    )
    print(f"created key {record.key_id} for {record.name} ({record.role.value}, tenant {record.tenant}):")
    print(key)
    print("It is shown only now; store it somewhere safe.")
    return 0


def run_keys_list(args: argparse.Namespace) -> int:
    records = key_store(args).list()
    if not records:
        print("no keys yet: `switchboard keys create --tenant T --name N --role admin` makes one")
        return 0
    rows = [
        (r.key_id, r.role.value, r.tenant, r.name, f"revoked {r.revoked_at:%Y-%m-%d}" if r.revoked_at else "active")
        for r in records
    ]
    print(table(("KEY ID", "ROLE", "TENANT", "NAME", "STATE"), rows))
    return 0


def run_keys_revoke(args: argparse.Namespace) -> int:
    from switchboard_core.errors import HubError

    try:
        record = key_store(args).revoke(args.key_id, datetime.now(UTC))
    except HubError as error:
        raise CliError(f"{error.message}: `switchboard keys list` shows the key ids") from None
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
