"""Calling the topology's Lambda handlers in-process, as Lambda would.

Each function reads the environment topology.function_environment gives it, as the
CDK app sets it. The functions' variables agree wherever their names meet (a table's
variable names the same table for everyone), so their union is set once for the process;
only the service name differs, and Powertools reads it when a handler module is imported,
so each import (a cold start) runs with its own. Invocations run one at a time: each
Lambda sandbox is its own process, but here all share one, and Powertools Metrics keeps
its metric set process-wide (two functions at once would flush each other's metrics).
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable
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
        self._import_lock = threading.Lock()
        self._invocation_lock = threading.Lock()
        self._preloaded = {m for m in sys.modules if m.startswith("functions.")}
        os.environ.update(self.shared_environment())

    def environment(self, name: str) -> dict[str, str]:
        function = topology.FUNCTIONS[name]
        return {**topology.function_environment(function, self._names, self._stage), **self._extra}

    def shared_environment(self) -> dict[str, str]:
        """Every function's variables but the service name; refuses names that disagree."""
        shared: dict[str, str] = {}
        for name in topology.FUNCTIONS:
            for key, value in self.environment(name).items():
                if key == SERVICE_NAME:
                    continue
                if shared.setdefault(key, value) != value:
                    raise ValueError(f"{key} differs between functions ({shared[key]!r}, {value!r})")
        return shared

    def _handler(self, name: str) -> Callable[[dict[str, Any], Any], Any]:
        with self._import_lock:
            if name not in self._handlers:
                module_name, attribute = topology.FUNCTIONS[name].handler.rsplit(".", 1)
                os.environ[SERVICE_NAME] = self.environment(name)[SERVICE_NAME]
                module = importlib.import_module(module_name)
                if module_name in self._preloaded:
                    # Imported by an earlier runtime in this process: start cold, as a new sandbox would.
                    module = importlib.reload(module)
                self._handlers[name] = getattr(module, attribute)
            return self._handlers[name]

    def invoke(self, name: str, event: dict[str, Any]) -> Any:
        function = topology.FUNCTIONS[name]
        handler = self._handler(name)
        with self._invocation_lock:
            context = LambdaContext(function_name=f"switchboard-{self._stage}-{name}",
                                    memory_limit_in_mb=function.memory_mb,
                                    timeout_seconds=function.timeout_seconds)
            return handler(event, context)
