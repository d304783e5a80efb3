"""`switchboard campaigns list|show|validate|save|publish|fork|share|diff|start|runs|stop`: campaign
definitions, and their runs, through the admin API (docs/campaigns.md). Flows are read from JSON or YAML files (by their
suffix: .yaml/.yml is YAML, anything else JSON) holding `{"flow", "trigger"?, "name"?}`, a bare
flow `{"start", "steps"}`, or what `campaigns show` printed (it carries the campaign's id and
version, so `save` sends that version back and a save someone made meanwhile is refused)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, NoReturn

from infra.local.cli import (
    CliError,
    Refused,
    add_key,
    add_tenant,
    add_url,
    admin_call,
    problem_lines,
    table,
    whose,
)

BASE = "/admin/campaigns"


def add_campaign_commands(commands: Any) -> None:
    campaigns = commands.add_parser(
        "campaigns", help="campaigns: validate, save, publish, fork, share, diff; start, list and stop runs"
    )
    actions = campaigns.add_subparsers(
        dest="campaigns_command",
        required=True,
        metavar="ACTION",
        help="list, show, validate, save, publish, fork, share, diff, start, runs or stop",
    )
    listing = actions.add_parser("list", help="the campaigns this key may see in a tenant")
    add_tenant(listing)
    listing.set_defaults(run=run_list)

    show = actions.add_parser("show", help="print a campaign with its latest version (or --version) as JSON")
    show.add_argument("campaign", metavar="ID", help="a campaign id (cmp_...), as `list` shows it")
    show.add_argument("--version", type=int, help="this version instead of the latest")
    show.set_defaults(run=run_show)

    validate = actions.add_parser("validate", help="check a flow file with the hub, saving nothing")
    validate.add_argument("file", type=Path, metavar="FILE", help="a JSON or YAML file with the flow (and trigger)")
    add_tenant(validate)
    validate.set_defaults(run=run_validate)

    save = actions.add_parser(
        "save",
        help="create a campaign from FILE, or save FILE as a new version of one (--campaign, or a `show` output)",
    )
    save.add_argument("file", type=Path, metavar="FILE", help="a JSON or YAML file with the flow (and trigger)")
    save.add_argument("--name", help="the new campaign's name (default: the file's `name`)")
    save.add_argument("--campaign", metavar="ID", help="save a new version of this campaign (default: the file's `id`)")
    save.add_argument(
        "--expected-version",
        type=int,
        help="the version you edited (default: the file's `version`); a newer one saved meanwhile is refused (409)",
    )
    add_tenant(save)
    save.set_defaults(run=run_save)

    publish = actions.add_parser("publish", help="make a version live (drafts never run)")
    publish.add_argument("campaign", metavar="ID", help="a campaign id (cmp_...)")
    publish.add_argument("version", type=int, metavar="VERSION", help="the version to publish")
    publish.set_defaults(run=run_publish)

    fork = actions.add_parser("fork", help="copy a campaign into a new one of your own (in your tenant or --tenant)")
    fork.add_argument("campaign", metavar="ID", help="the campaign to fork (cmp_...)")
    fork.add_argument("--name", help="the fork's name (default: '<name> (fork)')")
    fork.add_argument("--version", type=int, help="the version to fork (default: the latest)")
    add_tenant(fork)
    fork.set_defaults(run=run_fork)

    share = actions.add_parser("share", help="give a key or a team viewer or editor access")
    share.add_argument("campaign", metavar="ID", help="a campaign id (cmp_...)")
    grantee = share.add_mutually_exclusive_group(required=True)
    grantee.add_argument("--principal", metavar="KEY_ID", help="a key id, as `switchboard keys list` shows it")
    grantee.add_argument("--team", help="a team of the campaign's tenant")
    share.add_argument("--access", choices=("viewer", "editor"), required=True, help="viewer reads; editor also saves")
    share.set_defaults(run=run_share)

    diff = actions.add_parser("diff", help="what changed between two versions")
    diff.add_argument("campaign", metavar="ID", help="a campaign id (cmp_...)")
    diff.add_argument("old", type=int, metavar="FROM", help="the earlier version")
    diff.add_argument("new", type=int, metavar="TO", help="the later version")
    diff.add_argument("--json", action="store_true", help="print the hub's JSON answer as it is")
    diff.set_defaults(run=run_diff)

    start = actions.add_parser("start", help="run the live version for contacts (one run each)")
    start.add_argument("campaign", metavar="ID", help="a published campaign's id (cmp_...)")
    start.add_argument(
        "contacts",
        nargs="+",
        metavar="CONTACT",
        help="contact ids (ct_..., as `switchboard events` shows them) or E.164 phones (+14155550100); up to 1000",
    )
    start.add_argument(
        "--request",
        help="an id of your own for this request: repeating the command with it starts no run twice (default: new)",
    )
    start.set_defaults(run=run_start)

    runs = actions.add_parser("runs", help="a campaign's runs, newest first: contact, version, state, step")
    runs.add_argument("campaign", metavar="ID", help="a campaign id (cmp_...)")
    runs.add_argument("--limit", type=int, default=50, help="at most this many runs (default 50)")
    runs.add_argument("--steps", action="store_true", help="also print each run's steps and their outcomes")
    runs.add_argument("--json", action="store_true", help="print the runs as the hub answered them")
    runs.set_defaults(run=run_runs)

    stop = actions.add_parser("stop", help="unpublish a campaign and stop every run in flight")
    stop.add_argument("campaign", metavar="ID", help="a campaign id (cmp_...)")
    stop.set_defaults(run=run_stop)

    for parser in actions.choices.values():
        add_key(parser)
        add_url(parser)


# --- files ------------------------------------------------------------------------------------


def read_campaign_file(path: Path) -> dict[str, Any]:
    """The file as `{"flow", "trigger"?, ...}` (a bare flow is wrapped)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise CliError(f"{path} is not valid YAML: {' '.join(str(exc).split())}") from None
    else:
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise CliError(f"{path} is not valid JSON: {exc} (a YAML file must end in .yaml or .yml)") from None
    if not isinstance(document, dict):
        raise CliError(f'{path} must hold an object: {{"flow": ..., "trigger"?: ...}} or a flow {{"start", "steps"}}')
    if "flow" not in document and "steps" in document:
        return {"flow": document}
    if "flow" not in document:
        raise CliError(f'{path} has no flow: write {{"flow": {{"start": ..., "steps": ...}}}} (docs/campaigns.md)')
    return document


def definition(document: dict[str, Any]) -> dict[str, Any]:
    body = {"flow": document["flow"]}
    if document.get("trigger") is not None:
        body["trigger"] = document["trigger"]
    return body


def raise_flow_problems(refused: Refused, path: Path) -> NoReturn:
    """A refused flow: one line saying so, then each problem with the field it names."""
    if refused.status != 400 or not refused.problems:
        raise refused
    count = len(refused.problems)
    raise CliError(
        "\n".join(
            [
                f"the hub refused {path} ({count} problem{'s' if count != 1 else ''}; nothing saved):",
                *problem_lines(refused.problems),
            ]
        )
    ) from None


# --- commands ---------------------------------------------------------------------------------


def run_list(args: argparse.Namespace) -> int:
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = admin_call(args, "GET", BASE, {"tenant": args.tenant, "limit": 100, "cursor": cursor})
        found += page["campaigns"]
        cursor = page.get("next_cursor")
        if not cursor:
            break
    if not found:
        print(f"no campaigns this key may see in tenant {whose(args)}: `switchboard campaigns save FILE --name NAME`")
        return 0
    rows = [
        (
            c["id"],
            c["name"],
            str(c["latest_version"]),
            str(c["published_version"] or "-"),
            c["access"],
            c["owner"]["name"],
            f"{c['forked_from']['campaign']} v{c['forked_from']['version']}" if c.get("forked_from") else "-",
        )
        for c in found
    ]
    print(table(("ID", "NAME", "LATEST", "LIVE", "ACCESS", "OWNER", "FORKED FROM"), rows))
    return 0


def run_show(args: argparse.Namespace) -> int:
    print(json.dumps(admin_call(args, "GET", f"{BASE}/{args.campaign}", {"version": args.version}), indent=2))
    return 0


def run_validate(args: argparse.Namespace) -> int:
    body = definition(read_campaign_file(args.file))
    if args.tenant:
        body["tenant"] = args.tenant
    try:
        checked = admin_call(args, "POST", f"{BASE}/validate", body=body)
    except Refused as refused:
        raise_flow_problems(refused, args.file)
    trigger = "a trigger" if checked["trigger"] else "no trigger (started by runs)"
    print(f"{args.file} is valid for tenant {checked['tenant']}: {checked['steps']} steps, {trigger}")
    return 0


def run_save(args: argparse.Namespace) -> int:
    document = read_campaign_file(args.file)
    campaign = args.campaign or document.get("id")
    try:
        if campaign:
            expected = args.expected_version or document.get("version")
            if expected is None:
                raise CliError(
                    f"which version of {campaign} did you edit? Pass --expected-version N (`switchboard campaigns "
                    f"show {campaign}` prints the latest), or save the edited output of `campaigns show`"
                )
            saved = admin_call(
                args, "PUT", f"{BASE}/{campaign}", body=definition(document) | {"expected_version": expected}
            )
        else:
            name = args.name or document.get("name")
            if not name:
                raise CliError(f"a new campaign needs a name: pass --name, or give {args.file} a `name`")
            body = definition(document) | {"name": name}
            if args.tenant:
                body["tenant"] = args.tenant
            saved = admin_call(args, "POST", BASE, body=body)
    except Refused as refused:
        if refused.code == "version_conflict":
            raise CliError(
                f"{refused}: `switchboard campaigns show {campaign} > FILE`, apply your change there and save "
                "it, or fork the campaign to keep your version apart"
            ) from None
        raise_flow_problems(refused, args.file)
    print(
        f"saved {args.file} as campaign {saved['id']} ({saved['name']}) version {saved['version']}, a draft: "
        f"`switchboard campaigns publish {saved['id']} {saved['version']}` makes it live"
    )
    return 0


def run_publish(args: argparse.Namespace) -> int:
    published = admin_call(args, "POST", f"{BASE}/{args.campaign}/publish", body={"version": args.version})
    print(f"campaign {published['id']} ({published['name']}): version {published['published_version']} is live")
    return 0


def run_fork(args: argparse.Namespace) -> int:
    body = {"name": args.name, "tenant": args.tenant, "version": args.version}
    forked = admin_call(args, "POST", f"{BASE}/{args.campaign}/fork", body={k: v for k, v in body.items() if v})
    origin = forked["forked_from"]
    print(
        f"forked {origin['campaign']} version {origin['version']} as campaign {forked['id']} ({forked['name']}) "
        f"in tenant {forked['tenant']}: yours to edit and publish"
    )
    return 0


def run_share(args: argparse.Namespace) -> int:
    body = {"access": args.access} | ({"principal": args.principal} if args.principal else {"team": args.team})
    shared = admin_call(args, "POST", f"{BASE}/{args.campaign}/shares", body=body)
    who = f"key {args.principal}" if args.principal else f"team {args.team}"
    print(f"campaign {shared['id']} ({shared['name']}): {who} is now a {args.access}")
    return 0


def run_diff(args: argparse.Namespace) -> int:
    diff = admin_call(args, "GET", f"{BASE}/{args.campaign}/diff", {"from": args.old, "to": args.new})
    if args.json:
        print(json.dumps(diff, indent=2))
        return 0
    print("\n".join(diff_lines(diff)))
    return 0


def diff_lines(diff: dict[str, Any]) -> list[str]:
    lines = [f"campaign {diff['campaign']}: version {diff['from']} -> {diff['to']}"]
    if diff.get("start"):
        lines.append(f"  start: {diff['start']['from']} -> {diff['start']['to']}")
    steps = diff["steps"]
    lines += [f"  + step {step}" for step in steps["added"]]
    lines += [f"  - step {step}" for step in steps["removed"]]
    for changed in steps["changed"]:
        lines.append(f"  ~ step {changed['step']}")
        lines += [f"      {f['field']}: {json.dumps(f['from'])} -> {json.dumps(f['to'])}" for f in changed["fields"]]
    if diff.get("trigger"):
        lines.append("  ~ trigger")
        fields = diff["trigger"]["fields"]
        lines += [f"      {f['field']}: {json.dumps(f['from'])} -> {json.dumps(f['to'])}" for f in fields]
    if len(lines) == 1:
        lines.append("  no changes")
    return lines


def run_start(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"contacts": args.contacts}
    if args.request:
        body["request"] = args.request
    try:
        accepted = admin_call(args, "POST", f"{BASE}/{args.campaign}/runs", body=body)
    except Refused as refused:
        if refused.code == "not_published":
            raise CliError(f"{refused} (`switchboard campaigns publish {args.campaign} VERSION`)") from None
        if refused.status != 400 or not refused.problems:
            raise
        lines = ["the hub refused the contacts (nothing started):"]
        for problem in refused.problems:
            field = str(problem.get("field", ""))
            index = field.removeprefix("contacts.")
            given = f" ({args.contacts[int(index)]})" if index.isdigit() and int(index) < len(args.contacts) else ""
            lines.append(f"  {field}{given}: {problem.get('problem', 'invalid')}")
        raise CliError("\n".join(lines)) from None
    count = accepted["accepted"]
    print(
        f"campaign {accepted['campaign']} version {accepted['version']}: {count} run{'s' if count != 1 else ''} "
        f"requested (request {accepted['request']}); `switchboard campaigns runs {accepted['campaign']}` follows them"
    )
    return 0


def run_runs(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise CliError("--limit must be at least 1")
    found: list[dict[str, Any]] = []
    cursor = None
    while len(found) < args.limit:
        page = admin_call(
            args, "GET", f"{BASE}/{args.campaign}/runs", {"limit": min(100, args.limit - len(found)), "cursor": cursor}
        )
        found += page["runs"]
        cursor = page.get("next_cursor")
        if not cursor:
            break
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    if not found:
        print(f"campaign {args.campaign} has no runs yet: `switchboard campaigns start {args.campaign} CONTACT...`")
        return 0
    rows = [
        (
            run["id"],
            run["contact"]["id"] + (f" ({run['contact']['phone']})" if run["contact"].get("phone") else ""),
            str(run["version"]),
            run["state"] + (f" ({run['waiting_for']})" if run.get("waiting_for") else ""),
            run["current_step"] or "-",
            last_outcome(run),
            run["started_at"],
        )
        for run in found
    ]
    lines = table(("RUN", "CONTACT", "VERSION", "STATE", "STEP", "LAST", "STARTED"), rows).splitlines()
    if not args.steps:
        print("\n".join(lines))
        return 0
    print(lines[0])
    for line, run in zip(lines[1:], found, strict=True):
        print(line)
        for step in run["steps_done"]:
            reason = f" ({step['reason']})" if step.get("reason") else ""
            print(f"    {step['at']}  {step['step']}: {step['outcome']}{reason}")
        if run.get("end_reason"):
            print(f"    ended: {run['end_reason']}")
    return 0


def last_outcome(run: dict[str, Any]) -> str:
    if not run["steps_done"]:
        return "-"
    last = run["steps_done"][-1]
    return f"{last['step']}: {last['outcome']}"


def run_stop(args: argparse.Namespace) -> int:
    stopped = admin_call(args, "POST", f"{BASE}/{args.campaign}/stop")
    count = stopped["stopping"]
    print(
        f"campaign {stopped['campaign']} stopped: no version is live and its trigger is off the bus; "
        f"{count} run{'s' if count != 1 else ''} in flight asked to stop "
        f"(`switchboard campaigns publish {stopped['campaign']} VERSION` starts it again)"
    )
    if stopped.get("more_in_flight"):
        print("more runs are in flight: each stops on its next timer, reply or report, before it sends anything")
    return 0
