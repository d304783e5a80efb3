"""The local runtime's Lambda sandboxes: processes that each load one function's handler and
run its invocations one at a time, as a Lambda execution environment does.

infra/local/workers.py starts this file once as the zygote, `python -I -S worker.py CONFIG` (no
site processing, so no editable install; no repository root, no PYTHONPATH): it imports the
libraries every function uses, then forks a sandbox for each spawn request it reads from its
pipe, so a new sandbox costs its own handler's import, not boto3's and Powertools' again.

A sandbox clears the environment it was forked with and takes the function's (nothing of the
hub's or of another function's), connects back to the hub's Unix socket, and puts on its path
what a Lambda task root and its layers hold: the core layer, the libraries as plain folders, and
the `functions` package with only this function's folder importable (a finder refuses every other
`functions.<name>`, which would not be in this function's asset on AWS). Over the socket
(multiprocessing.connection frames of JSON) it sends {"ready": true} or {"init_error": ...} once
the handler is imported (the cold start, Lambda's init phase), then one answer per request:
{"result": ...} or {"error": ...}. stdout and stderr are the hub's, so the function's log lines
show where they did in-process.

This file imports only the standard library at the top: it runs before anything else is on the path.
"""

from __future__ import annotations

import decimal
import importlib
import importlib.machinery
import importlib.util
import json
import os
import sys
import time
import traceback
import uuid
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any


@dataclass
class LambdaContext:
    function_name: str
    memory_limit_in_mb: int
    timeout_seconds: int
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "local"
    _started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_seconds - (time.monotonic() - self._started)) * 1000))


class OwnFunctionOnly:
    """A meta path finder for the `functions` package as this function's asset holds it: the
    package itself (functions/__init__.py of the tree) and this function's folder, nothing else."""

    def __init__(self, functions_dir: str, own: str) -> None:
        self.functions_dir = functions_dir
        self.own = own  # e.g. "functions.ingest"

    def find_spec(self, name: str, path: object = None, target: object = None) -> Any:
        if name == "functions":
            return importlib.util.spec_from_file_location(
                name, os.path.join(self.functions_dir, "__init__.py"), submodule_search_locations=[self.functions_dir]
            )
        if name.startswith("functions.") and name != self.own and not name.startswith(self.own + "."):
            raise ModuleNotFoundError(f"No module named {name!r} in this function's asset ({self.own} only)", name=name)
        return None


def _json_default(value: Any) -> Any:
    # As Lambda's Python runtime serialises a handler's result: Decimals (DynamoDB numbers) as numbers.
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _error(exc: BaseException) -> dict[str, Any]:
    return {"type": type(exc).__name__, "message": str(exc), "traceback": traceback.format_exc()}


def _start_coverage(settings: dict[str, Any] | None) -> Any:
    """Measure this process when the hub's process is measured (pytest --cov): coverage's data
    file beside the parent's, with a suffix of its own, which pytest-cov combines at the end."""
    if not settings:
        return None
    try:
        import coverage
    except ImportError:
        return None
    cov = coverage.Coverage(data_file=settings["data_file"], data_suffix=True, config_file=settings["config_file"])
    cov.start()
    return cov


def _apply(injection: dict[str, Any]) -> None:
    """Run a function from a file in this sandbox once its handler is imported (a test's fault
    injection): its module is loaded by path, so nothing outside the asset becomes importable."""
    spec = importlib.util.spec_from_file_location(f"_injected_{uuid.uuid4().hex}", injection["path"])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    getattr(module, injection["function"])(*injection.get("args", []))


# What every function imports, loaded once in the zygote so that a sandbox forked from it pays
# only its own handler's import. Libraries only: the project's code (functions/, the core layer)
# is imported in the sandbox, with its environment set, as Lambda's init phase would.
PRELOADED = (
    "boto3",
    "botocore.session",
    "botocore.client",
    "pydantic",
    "aws_lambda_powertools",
    "aws_lambda_powertools.logging",
    "aws_lambda_powertools.metrics",
    "aws_lambda_powertools.utilities.batch",
    "aws_lambda_powertools.utilities.typing",
    "aws_lambda_powertools.event_handler",
)


def zygote(config: dict[str, Any]) -> None:
    """Preload the libraries, then fork one sandbox per spawn request until the hub goes away."""
    import signal

    sys.path.extend(config["site_packages"])
    for module in PRELOADED:
        try:
            importlib.import_module(module)
        except ImportError:
            pass  # a sandbox that needs it reports the error itself
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # sandboxes are reaped by the kernel
    requests = Connection(config["read_fd"], writable=False)
    while True:
        try:
            request = json.loads(requests.recv_bytes())
        except EOFError:
            return
        if "stop" in request:
            return
        sys.stdout.flush()
        sys.stderr.flush()
        if os.fork() == 0:
            requests.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            try:
                sandbox(request["spawn"])
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(0)


def sandbox(config: dict[str, Any]) -> None:
    """One function's execution environment: its variables, its path, its handler, its invocations."""
    from multiprocessing.connection import Client

    os.environ.clear()
    os.environ.update(config["environment"])
    if config.get("nice"):
        os.nice(config["nice"])
    hub = Client(config["address"], family="AF_UNIX", authkey=bytes.fromhex(config["authkey"]))
    hub.send_bytes(json.dumps({"token": config["token"], "pid": os.getpid()}).encode())
    sys.path[:0] = config["code_paths"]
    sys.meta_path.insert(0, OwnFunctionOnly(config["functions_dir"], config["package"]))
    cov = _start_coverage(config.get("coverage"))
    module_name, attribute = config["handler"].rsplit(".", 1)
    try:
        handler = getattr(importlib.import_module(module_name), attribute)
        for injection in config.get("injections", []):
            _apply(injection)
    except Exception as exc:  # noqa: BLE001 - an init error is the answer (Runtime.ImportModuleError on AWS)
        hub.send_bytes(json.dumps({"init_error": _error(exc)}).encode())
        return
    hub.send_bytes(b'{"ready": true}')
    profile = _Profile(config.get("profile_dir"), config["handler"])
    try:
        while True:
            try:
                request = json.loads(hub.recv_bytes())
            except (EOFError, OSError):
                return  # the hub went away
            if "stop" in request:
                return
            context = LambdaContext(**config["context"])
            profile.enable()
            try:
                answer = json.dumps({"result": handler(request["event"], context)}, default=_json_default)
            except Exception as exc:  # noqa: BLE001 - the handler's error goes back to the caller, as Lambda's does
                answer = json.dumps({"error": _error(exc)})
            profile.disable()
            sys.stdout.flush()
            hub.send_bytes(answer.encode())
    finally:
        profile.save()
        if cov is not None:
            cov.stop()
            cov.save()
        hub.close()


class _Profile:
    """cProfile over the invocations only (not the import), on the process's CPU time, written to
    DIR/<function>-<pid>.pstats every 20 invocations and at the end; off without a directory
    (SWITCHBOARD_PROFILE_FUNCTIONS, infra/local/workers.py)."""

    SAVE_EVERY = 20

    def __init__(self, directory: str | None, handler: str) -> None:
        self._profiler: Any = None
        self._invocations = 0
        if directory:
            import cProfile

            self._profiler = cProfile.Profile(time.process_time)
            function = handler.split(".")[1] if handler.startswith("functions.") else handler
            self._path = os.path.join(directory, f"{function}-{os.getpid()}.pstats")

    def enable(self) -> None:
        if self._profiler is not None:
            self._profiler.enable()

    def disable(self) -> None:
        if self._profiler is not None:
            self._profiler.disable()
            self._invocations += 1
            if self._invocations % self.SAVE_EVERY == 0:
                self.save()

    def save(self) -> None:
        if self._profiler is not None and self._invocations:
            self._profiler.dump_stats(self._path)


if __name__ == "__main__":
    zygote(json.loads(sys.argv[1]))
