"""Secrets in logs: a pytest plugin that keeps every line of output the suite produces and, when
the run ends, looks in it for every secret the suite used. A secret found fails the run, naming
where it was found and which secret (by its source and a masked prefix, never the value).

What is kept: pytest's own capture of each test's setup, call and teardown (stdout and stderr at
the file-descriptor level, so the output of subprocesses that inherit them is in it: the local
runtime's workers, `switchboard` run in a subprocess; and the log records pytest captures), plus
whatever a test reads itself through capsys/capfd, plus files a test names with `scan_file` (a
subprocess whose output went to a pipe or a file). Everything is appended to one file that is
scanned at the end, so a secret registered after the line that leaked it is still found.

What is registered (`register`): every secret value written to or read from Secrets Manager in
this process (connection credentials inbound and outbound, partner and notification signing
secrets, the local runtime's demo seed), every API key made (`ApiKeyStore.create`: `switchboard
keys create`, the local runtime's admin key), the credentials a test sends to `/admin/connections`
through the integration hub (the admin function may run in a worker process), the tokens in
tests/events' samples and the local SNS signing certificate's private key. Tests and fixtures
register anything else they make with `register(value, source=...)` (the first-hour test
registers the admin key and demo credentials of the `switchboard dev` it runs in a subprocess,
and keeps that process's output).

Run without capture (`pytest -s`) nothing is kept, and the summary says nothing was scanned.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

REPOSITORY = Path(__file__).resolve().parents[1]
MIN_SECRET_CHARS = 8  # shorter values (a test's "x", AWS's "testing") would match ordinary text
NOT_SECRETS = {"testing", "test-secret"}  # moto's fake AWS credentials (tests/conftest.py's AWS_TEST_ENV)
# A test may deliberately show a secret to its owner, once, as the product does: `switchboard
# keys create` prints the new key, `switchboard subscriptions create` the signing secret. What
# such a test reads itself (capsys/capfd: the command's answer) is not scanned; its other output
# and its log records still are.
SHOWN_ONCE_MARKER = "shows_secret_once"
# Fields of stored credentials and signing secrets that are not secret: identifiers a provider
# puts in its URLs and bodies (which logs may name), public keys, a connection's signing scheme,
# and the expiry times of a rotated secret. Every other string in a stored secret is one.
NOT_SECRET_FIELDS = {
    # inbound: configuration and public material
    "algorithm",
    "encoding",
    "header",
    "header_name",
    "id_header",
    "organization_id",
    "prefix",
    "public_key",
    "signature_method",
    "template",
    "timestamp_header",
    "tolerance_seconds",
    "topic_arn",
    # outbound: account, sender and channel identifiers
    "account_id",
    "account_sid",
    "admin_id",
    "application_id",
    "auth_id",
    "author_id",
    "channel_account_id",
    "channel_id",
    "domain",
    "email",
    "from_number",
    "messaging_service_sid",
    "page_id",
    "sender_actor_id",
    "subdomain",
    "user_id",
    "whatsapp_phone_number_id",
    # rotation bookkeeping
    "previous_valid_until",
    "previous_expires_at",
}
SECRET_WRITES = {"CreateSecret", "PutSecretValue", "UpdateSecret"}

_registry: dict[str, str] = {}  # value -> where it came from
_state: dict[str, Any] = {"log": None, "scanned": False, "leaks": []}


def register(value: Any, source: str) -> None:
    """`value` (or every string inside it, when it is a dict, list or JSON text) is a secret."""
    for text in _strings(value):
        if len(text) >= MIN_SECRET_CHARS and text not in NOT_SECRETS:
            _registry.setdefault(text, source)


def registered() -> dict[str, str]:
    return dict(_registry)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for name, item in value.items():
            if name not in NOT_SECRET_FIELDS:
                yield from _strings(item)
    elif isinstance(value, list | tuple | set):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, bytes):
        yield from _strings(value.decode(errors="replace"))
    elif isinstance(value, str):
        stripped = value.strip()
        if stripped[:1] in ("{", "["):
            try:
                yield from _strings(json.loads(stripped))
                return
            except ValueError:
                pass
        yield value


def record_output(text: str, where: str, shown: Iterable[str] = ()) -> None:
    """Keep `text` (output of `where`) for the scan at the end of the run. `shown`: secrets this
    output displays to their owner by design (`switchboard dev`'s welcome shows its admin key),
    taken out before it is kept; any other secret in it is a leak."""
    log = _state["log"]
    if log is None or not text:
        return
    for secret in shown:
        if secret:
            text = text.replace(secret, "[shown by design]")
    log.write(f"\x00{where}\n")
    log.write(text if text.endswith("\n") else text + "\n")


def scan_file(path: Path, where: str, shown: Iterable[str] = ()) -> None:
    """Keep the text of a file a subprocess wrote its output to."""
    if path.exists():
        record_output(path.read_text(errors="replace"), where, shown)


def find_leaks(lines: Iterable[str], secrets: dict[str, str]) -> list[tuple[str, str, str]]:
    """(where, source, masked secret) for each secret found in `lines` (where-markers start with NUL),
    standing on its own (not inside a longer word)."""
    if not secrets:
        return []
    # A secret counts where it stands on its own: not where it is part of a longer word, as a
    # test's token "a" * 32 is part of a test's call id "CA" + "a" * 32.
    alternatives = "|".join(re.escape(s) for s in sorted(secrets, key=len, reverse=True))
    pattern = re.compile(rf"(?<![A-Za-z0-9_])(?:{alternatives})(?![A-Za-z0-9_])")
    found: dict[tuple[str, str], str] = {}
    where = "(before any test)"
    for line in lines:
        if line.startswith("\x00"):
            where = line[1:].rstrip("\n")
            continue
        for match in pattern.finditer(line):
            secret = match.group(0)
            found.setdefault((where, secret), secrets[secret])
    return [(where, source, mask(secret)) for (where, secret), source in found.items()]


def mask(secret: str) -> str:
    return f"{secret[:4]}...({len(secret)} chars)"


# --- where secrets come from -----------------------------------------------------------------


def register_static_secrets() -> None:
    """Secrets that exist before any test runs: tokens in tests/events, the SNS dev key. (And
    what is not a secret: the example key the CLI's own messages show, which tests also use.)"""
    from infra.local.runtime import KEY_SHAPE

    NOT_SECRETS.update(re.findall(r"sbk_[A-Za-z0-9_-]+", KEY_SHAPE))
    for sample in sorted((REPOSITORY / "tests" / "events").rglob("*.json")):
        try:
            document = json.loads(sample.read_text())
        except ValueError:
            continue
        for token in _token_fields(document):
            register(token, f"tests/events/{sample.parent.name}/{sample.name}")
    from infra.local.sns_dev import dev_certificate_dir

    for key_file in dev_certificate_dir().glob("*key*.pem"):
        # A private key that leaked would appear as the lines of its PEM body.
        for line in key_file.read_text().splitlines():
            if not line.startswith("-----"):
                register(line, f"SNS dev private key {key_file.name}")


def _token_fields(document: Any) -> Iterator[str]:
    if isinstance(document, dict):
        for name, value in document.items():
            if name.lower() in ("token", "secret", "password") and isinstance(value, str):
                yield value
            else:
                yield from _token_fields(value)
    elif isinstance(document, list):
        for item in document:
            yield from _token_fields(item)


def install_hooks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Register secrets as the code under test makes, stores and reads them, in this process."""
    from botocore.client import BaseClient

    from switchboard_core.principals import ApiKeyStore

    make_api_call = BaseClient._make_api_call

    def watched_api_call(self: Any, operation: str, params: dict[str, Any]) -> Any:
        if operation in SECRET_WRITES:
            register(params.get("SecretString"), f"Secrets Manager {operation} {params.get('Name') or ''}".strip())
        answer = make_api_call(self, operation, params)
        if operation == "GetSecretValue":
            register(answer.get("SecretString"), f"Secrets Manager {answer.get('Name', '')}")
        return answer

    monkeypatch.setattr(BaseClient, "_make_api_call", watched_api_call)
    create_key = ApiKeyStore.create

    def watched_create(self: Any, **kwargs: Any) -> Any:
        key, record = create_key(self, **kwargs)
        register(key, f"API key {record.key_id} ({record.role.value}, tenant {record.tenant})")
        return key, record

    monkeypatch.setattr(ApiKeyStore, "create", watched_create)


# --- the pytest hooks --------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{SHOWN_ONCE_MARKER}: the test checks a command shows a secret to its owner once (tests/log_secrets.py)",
    )
    if config.getoption("capture") == "no":
        return
    handle, path = tempfile.mkstemp(prefix="switchboard-test-output-", suffix=".log")
    _state["log"] = os.fdopen(handle, "w", encoding="utf-8", errors="replace")
    _state["path"] = path
    _state["monkeypatch"] = pytest.MonkeyPatch()
    install_hooks(_state["monkeypatch"])
    register_static_secrets()
    # What a test reads itself (capsys/capfd) never reaches the report: keep it as it is read.
    from _pytest.capture import CaptureFixture

    readouterr = CaptureFixture.readouterr

    def kept(self: Any) -> Any:
        result = readouterr(self)
        if not _state.get("shown_once"):
            record_output(str(result.out) + str(result.err), f"{_state.get('test', '?')} (read by the test)")
        return result

    _state["monkeypatch"].setattr(CaptureFixture, "readouterr", kept)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    _state["test"] = item.nodeid
    _state["shown_once"] = item.get_closest_marker(SHOWN_ONCE_MARKER) is not None
    yield
    _state["shown_once"] = False


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # Each report repeats the sections of the phases before it: keep only its own phase's.
    for title, text in report.sections:
        if title.endswith(f" {report.when}"):
            record_output(text, f"{report.nodeid} [{title}]")


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """Under pytest-xdist each worker scans its own output against the secrets it registered
    (they are made in the worker); the controller gathers what each found."""
    output = getattr(node, "workeroutput", {}) or {}
    _state.setdefault("worker_leaks", []).extend(tuple(leak) for leak in output.get("secret_leaks", []))
    _state["worker_secrets"] = _state.get("worker_secrets", 0) + int(output.get("secrets_registered", 0))
    _state["worker_scanned"] = _state.get("worker_scanned", False) or bool(output.get("secrets_scanned"))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    log = _state["log"]
    if log is None:
        return
    log.close()
    _state["log"] = None
    with open(_state["path"], encoding="utf-8", errors="replace") as lines:
        _state["leaks"] = find_leaks(lines, registered()) + list(_state.get("worker_leaks", []))
    _state["scanned"] = True
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: the controller reports and fails the run
        workeroutput["secret_leaks"] = [list(leak) for leak in _state["leaks"]]
        workeroutput["secrets_registered"] = len(_registry)
        workeroutput["secrets_scanned"] = True
    if not _state["leaks"]:
        os.unlink(_state["path"])
    elif session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    _state["monkeypatch"].undo()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _state["scanned"]:
        terminalreporter.write_line("secrets in logs: output not captured (-s), nothing scanned")
        return
    leaks = _state["leaks"]
    if not leaks:
        count = len(_registry) + _state.get("worker_secrets", 0)
        terminalreporter.write_line(f"secrets in logs: none of {count} secrets in the captured output")
        return
    terminalreporter.section("secrets in logs", red=True)
    terminalreporter.write_line(f"{len(leaks)} secret(s) found in the output kept in {_state['path']}:", red=True)
    for where, source, masked in leaks:
        terminalreporter.write_line(f"  {masked} from {source}: in {where}", red=True)
