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
import json
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
CACHE_SECONDS_ENV = "CREDENTIALS_CACHE_SECONDS"
# Ingest keeps its connections and their secrets as deployed (60 s), since a refused signature
# reads the secret again at once (switchboard_core.connections.CredentialStore): uncached, they
# were two of its six calls to the emulator per webhook. So a deleted connection is accepted for
# up to that long locally too, as on AWS; `ingest_cache_seconds` shortens it (the tests' hub).
INGEST_KEEPS_ITS_CACHE = "ingest"
LOCAL_ENVIRONMENT = {
    # No X-Ray daemon locally. Metrics stay on: Powertools never clears them when
    # disabled, so they would pile up in a long-running dev process. Their EMF lines
    # on stdout are what CloudWatch would read.
    "POWERTOOLS_TRACE_DISABLED": "true",
    # The send APIs' credentials (auto-replies, notifications, calls...) are read at every send, so
    # a set changed for a demo is used at once. Ingest is the exception (INGEST_KEEPS_ITS_CACHE).
    CACHE_SECONDS_ENV: "0",
    # Dev only: lets the SNS adapter trust the demo certificate the `sns` samples sign with
    # (infra/local/samples/sns.py). Never set by the CDK app.
    "SWITCHBOARD_SNS_DEV_CERT_DIR": str(dev_certificate_dir()),
    # Partner endpoints on this machine only (switchboard_core.endpoints: loopback, plain http
    # allowed); on AWS the variable is absent and only public https endpoints are accepted.
    "SWITCHBOARD_ENDPOINTS": "loopback",
}


# A faster delivery policy for demos and tests (JSON, keys of topology.delivery_policy(); the
# keys given replace topology's), e.g. {"retry_schedule_seconds": [0, 1, 2]}. Unset: the real schedule.
DELIVERY_POLICY_OVERRIDE_ENV = "SWITCHBOARD_DELIVERY_POLICY"


class InvalidDeliveryPolicy(ValueError):
    """A delivery policy for the local runtime that the functions would refuse."""


def delivery_policy_value(overrides: dict[str, Any]) -> str:
    """The DELIVERY_POLICY value: topology's policy with `overrides` in place of its keys,
    checked here with the model the functions load it with, so a bad one fails at start."""
    from pydantic import ValidationError

    from switchboard_core.errors import field_problems
    from switchboard_core.subscriptions.policy import DeliveryPolicy

    if not isinstance(overrides, dict):
        raise InvalidDeliveryPolicy(f"a delivery policy is a JSON object, not {type(overrides).__name__}")
    policy = {**topology.delivery_policy(), **overrides}
    try:
        DeliveryPolicy.model_validate(policy)
    except ValidationError as exc:
        problems = "; ".join(f"{p['field']}: {p['problem']}" for p in field_problems(exc))
        raise InvalidDeliveryPolicy(f"delivery policy: {problems}") from None
    return json.dumps(policy, separators=(",", ":"))


def delivery_policy_from_environment(environ: dict[str, str] | None = None) -> dict[str, Any] | None:
    """SWITCHBOARD_DELIVERY_POLICY as a dict, None when unset or blank."""
    raw = (os.environ if environ is None else environ).get(DELIVERY_POLICY_OVERRIDE_ENV, "").strip()
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise InvalidDeliveryPolicy(f"{DELIVERY_POLICY_OVERRIDE_ENV} is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InvalidDeliveryPolicy(f"{DELIVERY_POLICY_OVERRIDE_ENV} must be a JSON object")
    return value


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
    def __init__(
        self,
        names: dict[str, str],
        stage: str,
        extra_env: dict[str, str] | None = None,
        delivery_policy: dict[str, Any] | None = None,
        ingest_cache_seconds: int | None = None,
    ) -> None:
        self._names = dict(names)
        self._stage = stage
        self._extra = {**LOCAL_ENVIRONMENT, **(extra_env or {})}
        self._ingest_cache = None if ingest_cache_seconds is None else str(ingest_cache_seconds)
        # Only the functions that read DELIVERY_POLICY (admin, delivery) get the faster one.
        self._delivery_policy = None if delivery_policy is None else delivery_policy_value(delivery_policy)
        self._handlers: dict[str, Callable[[dict[str, Any], Any], Any]] = {}
        self._lock = threading.RLock()
        self._preloaded = {m for m in sys.modules if m.startswith("functions.")}
        # Every variable some function gets: none of them is set outside that function's turn.
        self._managed = {key for name in topology.FUNCTIONS for key in self.environment(name)}

    def set_public_base_url(self, url: str) -> None:
        """The gateway's URL, for functions that give providers the hub's URLs (known once it listens)."""
        with self._lock:
            self._names["public_url"] = url
            self._managed = {key for name in topology.FUNCTIONS for key in self.environment(name)}

    def environment(self, name: str) -> dict[str, str]:
        function = topology.FUNCTIONS[name]
        environment = {**topology.function_environment(function, self._names, self._stage), **self._extra}
        if name == INGEST_KEEPS_ITS_CACHE:
            environment.pop(CACHE_SECONDS_ENV, None)
            if self._ingest_cache is not None:
                environment[CACHE_SECONDS_ENV] = self._ingest_cache
        if self._delivery_policy is not None and topology.DELIVERY_POLICY_ENV in environment:
            environment[topology.DELIVERY_POLICY_ENV] = self._delivery_policy
        return environment

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
