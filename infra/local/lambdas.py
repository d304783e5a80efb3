"""Calling the topology's Lambda handlers in-process, as Lambda would.

Each function sees only the environment topology.function_environment gives it, as the
CDK app sets it: while one function is imported or invoked, the process environment
holds that function's variables and none of another's, so a handler that reads a
variable its function does not get fails here as it would on AWS. Invocations (and
imports, which are cold starts) therefore run one at a time; each Lambda sandbox is its
own process, but here all share one, and Powertools Metrics keeps its metric set
process-wide too (two functions at once would flush each other's metrics).
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from infra import topology
from infra.local.sns_dev import dev_certificate_dir

SERVICE_NAME = "POWERTOOLS_SERVICE_NAME"
LOCAL_ENVIRONMENT = {
    # No X-Ray daemon locally. Metrics stay on: Powertools never clears them when
    # disabled, so they would pile up in a long-running dev process. Their EMF lines
    # on stdout are what CloudWatch would read.
    "POWERTOOLS_TRACE_DISABLED": "true",
    "CREDENTIALS_CACHE_SECONDS": "0",
    # Dev only: lets the SNS adapter trust the demo certificate the `sns` samples sign with
    # (infra/local/samples/sns.py). Never set by the CDK app.
    "SWITCHBOARD_SNS_DEV_CERT_DIR": str(dev_certificate_dir()),
    # Partner endpoints on this machine only (switchboard_core.endpoints: loopback, plain http
    # allowed); on AWS the variable is absent and only public https endpoints are accepted.
    "SWITCHBOARD_ENDPOINTS": "loopback",
}


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


class LocalFunctions:
    def __init__(self, names: dict[str, str], stage: str, extra_env: dict[str, str] | None = None) -> None:
        self._names = names
        self._stage = stage
        self._extra = {**LOCAL_ENVIRONMENT, **(extra_env or {})}
        self._handlers: dict[str, Callable[[dict[str, Any], Any], Any]] = {}
        self._lock = threading.RLock()
        self._preloaded = {m for m in sys.modules if m.startswith("functions.")}
        # Every variable some function gets: none of them is set outside that function's turn.
        self._managed = {key for name in topology.FUNCTIONS for key in self.environment(name)}

    def environment(self, name: str) -> dict[str, str]:
        function = topology.FUNCTIONS[name]
        return {**topology.function_environment(function, self._names, self._stage), **self._extra}

    @contextmanager
    def _environment_of(self, name: str) -> Iterator[None]:
        """The process environment as function `name` has it on AWS, for the duration."""
        with self._lock:
            saved = {key: os.environ[key] for key in self._managed if key in os.environ}
            for key in self._managed:
                os.environ.pop(key, None)
            os.environ.update(self.environment(name))
            try:
                yield
            finally:
                for key in self._managed:
                    os.environ.pop(key, None)
                os.environ.update(saved)

    def _handler(self, name: str) -> Callable[[dict[str, Any], Any], Any]:
        if name not in self._handlers:
            module_name, attribute = topology.FUNCTIONS[name].handler.rsplit(".", 1)
            module = importlib.import_module(module_name)
            if module_name in self._preloaded:
                # Imported by an earlier runtime in this process: start cold, as a new sandbox would.
                module = importlib.reload(module)
            self._handlers[name] = getattr(module, attribute)
        return self._handlers[name]

    def invoke(self, name: str, event: dict[str, Any]) -> Any:
        function = topology.FUNCTIONS[name]
        with self._environment_of(name):
            handler = self._handler(name)
            context = LambdaContext(
                function_name=f"switchboard-{self._stage}-{name}",
                memory_limit_in_mb=function.memory_mb,
                timeout_seconds=function.timeout_seconds,
            )
            return handler(event, context)
