"""switchboard_core.tracing: the X-Ray SDK is imported on a function's first traced invocation,
never at import, and a traced invocation still reaches the X-Ray daemon as Powertools sends it.

Each case runs in a fresh interpreter: the X-Ray SDK reads Lambda's environment once, when it
is imported, and a module imported by another test would hide an eager import."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]

HANDLER = """
import json, sys
from switchboard_core.tracing import LazyTracer

tracer = LazyTracer(patch_modules={patch_modules!r})

@tracer.capture_lambda_handler
def handler(event, context):
    if event.get("fail"):
        raise ValueError("refused")
    return {{"doubled": event["n"] * 2}}

report = {{"sdk_at_import": "aws_xray_sdk" in sys.modules}}
report["first"] = handler({{"n": 2}}, None)
report["second"] = handler({{"n": 5}}, None)
try:
    handler({{"fail": True}}, None)
except ValueError as error:
    report["error"] = str(error)
report["sdk_after_calls"] = "aws_xray_sdk" in sys.modules
if report["sdk_after_calls"]:
    from aws_xray_sdk.core import patcher
    report["patched"] = sorted(patcher._PATCHED_MODULES)
print(json.dumps(report))
"""


def run(environment: dict[str, str], patch_modules: list[str] | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "LAMBDA_", "AWS_XRAY", "_X_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(REPOSITORY / "layers" / "core" / "python"), str(REPOSITORY)])
    out = subprocess.run(
        [sys.executable, "-c", HANDLER.format(patch_modules=patch_modules)],
        capture_output=True,
        text=True,
        env={**env, **environment},
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_outside_lambda_the_handler_runs_untraced_and_the_sdk_is_never_imported():
    report = run({})
    assert report == {
        "sdk_at_import": False,
        "first": {"doubled": 4},
        "second": {"doubled": 10},
        "error": "refused",
        "sdk_after_calls": False,
    }


def test_disabled_by_powertools_variable_even_on_lambda(tmp_path):
    report = run({"LAMBDA_TASK_ROOT": str(tmp_path), "POWERTOOLS_TRACE_DISABLED": "true"})
    assert report["sdk_after_calls"] is False
    assert report["first"] == {"doubled": 4}


def test_on_lambda_each_invocation_is_a_subsegment_sent_to_the_xray_daemon(tmp_path):
    daemon = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    daemon.bind(("127.0.0.1", 0))
    daemon.settimeout(10)
    address = f"127.0.0.1:{daemon.getsockname()[1]}"
    try:
        report = run(
            {
                "LAMBDA_TASK_ROOT": str(tmp_path),
                "AWS_XRAY_DAEMON_ADDRESS": address,
                # As Lambda sets it per invocation: the trace the function's segment belongs to.
                "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
                "POWERTOOLS_SERVICE_NAME": "ingest",
            },
            patch_modules=["botocore"],
        )
        documents = []
        for _ in range(3):
            header, body = daemon.recv(65536).decode().split("\n", 1)
            assert json.loads(header) == {"format": "json", "version": 1}
            documents.append(json.loads(body))
    finally:
        daemon.close()

    # Built at the first invocation, not at import; botocore patched as asked.
    assert report["sdk_at_import"] is False
    assert report["sdk_after_calls"] is True
    assert report["patched"] == ["botocore"]
    assert report["first"] == {"doubled": 4} and report["second"] == {"doubled": 10}
    assert report["error"] == "refused"

    first, second, failed = documents
    assert {d["name"] for d in documents} == {"## handler"}
    assert {d["trace_id"] for d in documents} == {"1-5759e988-bd862e3fe1be46a994272793"}
    assert first["annotations"] == {"ColdStart": True, "Service": "ingest"}
    assert second["annotations"]["ColdStart"] is False
    assert first["metadata"]["ingest"]["handler response"] == {"doubled": 4}
    assert failed["fault"] is True
    assert failed["cause"]["exceptions"][0]["message"] == "refused"
