"""The secrets-in-logs check (tests/log_secrets.py) fails a run that leaks: a small suite run in
a subprocess with the plugin, whose test registers a secret and prints it from a child process
(the local runtime's workers write to the stdout they inherit), must fail and name the leak
without showing the secret; the same suite printing only a masked form must pass."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests import log_secrets

REPOSITORY = Path(__file__).resolve().parents[2]
SECRET = "sk_live_" + "7f3a9c" * 5
SHOWN = "whsec_" + "b1d2e3" * 5

SUITE = """
import logging
import subprocess
import sys

import pytest

from tests.log_secrets import register

SECRET = {secret!r}
SHOWN = {shown_once!r}


def test_uses_a_secret():
    register(SECRET, "a deliberately leaked token")
    shown = {shown}
    subprocess.run([sys.executable, "-c", f"print({{shown!r}})"], check=True)
    logging.getLogger("switchboard").warning("authorised with %s", shown)


@pytest.mark.shows_secret_once
def test_shows_a_secret_to_its_owner_once(capsys):
    register(SHOWN, "a secret shown once by design")
    print(SHOWN)
    assert SHOWN in capsys.readouterr().out
"""


def run_suite(tmp_path: Path, shown: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_inner.py").write_text(SUITE.format(secret=SECRET, shown=shown, shown_once=SHOWN))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPOSITORY / "layers" / "core" / "python"), str(REPOSITORY)])
    env["TMPDIR"] = str(tmp_path)  # where a run that leaks keeps its output
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.log_secrets", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_secret_printed_by_a_subprocess_fails_the_run_without_showing_it(tmp_path):
    result = run_suite(tmp_path, "SECRET")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "2 passed" in result.stdout, result.stdout
    assert "a deliberately leaked token" in result.stdout and "test_uses_a_secret" in result.stdout, result.stdout
    assert log_secrets.mask(SECRET) in result.stdout
    assert SECRET not in result.stdout + result.stderr
    # What a test marked shows_secret_once reads itself is the command's answer, not a log.
    assert log_secrets.mask(SHOWN) not in result.stdout


def test_a_masked_secret_passes(tmp_path):
    result = run_suite(tmp_path, "SECRET[:4] + '****'")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "secrets in logs: none of" in result.stdout


def test_find_leaks_names_where_and_which():
    lines = ["\x00tests/a.py::t [Captured stdout call]\n", '{"token": "abcdefgh123"}\n', "\x00tests/b.py::u\n", "ok\n"]
    leaks = log_secrets.find_leaks(lines, {"abcdefgh123": "conn con_1", "zzzzzzzzzz": "other"})
    assert leaks == [("tests/a.py::t [Captured stdout call]", "conn con_1", "abcd...(11 chars)")]


def test_a_secret_inside_a_longer_word_is_not_a_leak():
    token = "a" * 32  # a test's Twilio auth token; test ids repeat letters too
    lines = ['{"call_sid": "CA' + token + '", "run": "run_' + token + '"}\n', f"Authorization: Basic {token}\n"]
    assert log_secrets.find_leaks(lines, {token: "twilio"}) == [("(before any test)", "twilio", "aaaa...(32 chars)")]
    assert log_secrets.find_leaks(lines[:1], {token: "twilio"}) == []


def test_registering_takes_every_string_of_a_document_and_skips_short_ones():
    before = log_secrets.registered()
    log_secrets.register('{"auth_token": "tok_0123456789", "sid": "x", "nested": ["pw_abcdefghij"]}', "t")
    added = set(log_secrets.registered()) - set(before)
    assert {"tok_0123456789", "pw_abcdefghij"} <= added and "x" not in added
