"""Seeded fault injection on every AWS call a function makes, through botocore's event hooks.

Registered first on the process's one boto3 session (switchboard_core.aws), so every client and
resource the functions build carries it. While `active()` is on, a chosen fraction of calls fail
at the HTTP layer (`before-send`, so botocore's own retries see them as AWS's answers and absorb
some, as they would on AWS):

- throttle:       400 ThrottlingException (DynamoDB: ProvisionedThroughputExceededException, S3: 503 SlowDown)
- server_error:   500 InternalFailure or 503 ServiceUnavailable
- connect_timeout: ConnectTimeoutError, the request never reached AWS
- read_timeout:   ReadTimeoutError after AWS applied the request (the answer was lost: a retry
                  repeats a write that already happened, the hardest case for idempotency)
- partial_put:    PutEvents answers 200 with FailedEntryCount > 0: some entries are left off the
                  call and reported failed (botocore never retries these; the caller must)

botocore calls every `before-send` handler, moto's among them, and uses the first answer: behind
an injected throttle or 5xx, moto has applied the request all the same. So every kind but
connect_timeout is also "applied, answer lost" here: stricter than AWS for a throttle (never
applied there), as AWS may be for a 500 (InternalServerError: the write may have happened).

Each call is counted once: `calls`, `injected` (faults injected, retries included) and `surfaced`
(calls whose final outcome was an injected fault: the exception or PutEvents failure the
function's code saw). The harness's own calls (seeding, reading results) run with it off.
"""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

KINDS = ("throttle", "server_error", "connect_timeout", "read_timeout", "partial_put")


@dataclass
class FaultStats:
    calls: int = 0
    injected: Counter[str] = field(default_factory=Counter)
    surfaced: int = 0
    by_operation: Counter[str] = field(default_factory=Counter)

    @property
    def injected_total(self) -> int:
        return sum(self.injected.values())


class _RawBody:
    """What botocore reads an HTTP response body from."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body

    def read(self, *_: Any) -> bytes:
        body, self._body = self._body, b""
        return body


class _ShortCircuit:
    """A response object for a `before-call` answer (only its status is read)."""

    status_code = 200


class FaultInjector:
    def __init__(self, rate: float, seed: int, kinds: tuple[str, ...] = KINDS) -> None:
        self.rate = rate
        self.kinds = kinds
        self.stats = FaultStats()
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._on = False
        self._local = threading.local()
        self._protocols: dict[str, str] = {}
        self._installed_on: set[int] = set()

    # --- switching ---

    def install(self) -> None:
        """Register the hooks on switchboard_core.aws's session (before clients are built from it)."""
        from switchboard_core import aws

        events = aws._session().events
        if id(events) in self._installed_on:
            return
        self._installed_on.add(id(events))
        events.register_first("provide-client-params.*.*", self._before_params)
        events.register_first("before-call.*.*", self._before_call)
        events.register_first("before-send.*.*", self._before_send)
        events.register_first("after-call.*.*", self._after_call)
        events.register_first("after-call-error.*.*", self._after_call_error)
        aws.reset_clients(keep_session=True)  # clients built from now on copy the hooks

    @contextmanager
    def active(self) -> Iterator[None]:
        self._on = True
        try:
            yield
        finally:
            self._on = False

    def _draw(self, kinds: tuple[str, ...]) -> str | None:
        with self._lock:
            if not self._on or not kinds or self._random.random() >= self.rate:
                return None
            return self._random.choice(kinds)

    # --- hooks ---

    def _before_params(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        """PutEvents: leave some entries off the call, to be reported failed in its answer."""
        self._local.failed_entries = None
        if model.name != "PutEvents" or "partial_put" not in self.kinds or not self._on:
            return
        entries = list(params.get("Entries") or [])
        if not entries or self._draw(("partial_put",)) is None:
            return
        with self._lock:
            count = self._random.randint(1, len(entries))
            failed = sorted(self._random.sample(range(len(entries)), count))
        self._local.failed_entries = (len(entries), failed)
        kept = [entry for i, entry in enumerate(entries) if i not in failed]
        # Nothing left to send: before-call answers for AWS (an empty call would not validate).
        params["Entries"] = kept or entries
        self._note("partial_put", "eventbridge.PutEvents")

    def _before_call(self, model: Any, **_: Any) -> Any:
        self._local.injected_last = False
        self._local.service = model.service_model.service_id.hyphenize()
        self._protocols[self._local.service] = model.service_model.protocol
        if self._on:
            with self._lock:
                self.stats.calls += 1
        pending = getattr(self._local, "failed_entries", None)
        if pending and len(pending[1]) == pending[0]:
            return _ShortCircuit(), {"FailedEntryCount": 0, "Entries": []}  # filled in by _after_call
        return None

    def _before_send(self, request: Any, event_name: str, **kwargs: Any) -> Any:
        self._local.injected_last = False
        retriable = tuple(k for k in self.kinds if k != "partial_put")
        kind = self._draw(retriable)
        if kind is None:
            return None
        service = getattr(self._local, "service", event_name.split(".")[1])
        operation = f"{service}.{event_name.split('.')[-1]}"
        self._note(kind, operation)
        self._local.injected_last = True
        if kind == "connect_timeout":
            from botocore.exceptions import ConnectTimeoutError

            raise ConnectTimeoutError(endpoint_url=request.url)
        if kind == "read_timeout":
            from botocore.exceptions import ReadTimeoutError
            from moto.core.models import botocore_stubber

            botocore_stubber(event_name=event_name, request=request, **kwargs)  # applied, answer lost
            raise ReadTimeoutError(endpoint_url=request.url)
        return self._error_response(request, service, kind)

    def _after_call(self, http_response: Any, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        pending = getattr(self._local, "failed_entries", None)
        self._local.failed_entries = None
        if pending and model.name == "PutEvents" and http_response.status_code < 300:
            total, failed = pending
            kept = iter(parsed.get("Entries") or [])
            entries = []
            for i in range(total):
                if i in failed:
                    entries.append({"ErrorCode": "ThrottlingException", "ErrorMessage": "injected partial failure"})
                else:
                    entries.append(next(kept))
            parsed["Entries"] = entries
            parsed["FailedEntryCount"] = int(parsed.get("FailedEntryCount") or 0) + len(failed)
            with self._lock:
                self.stats.surfaced += 1
            return
        if http_response.status_code >= 300 and getattr(self._local, "injected_last", False):
            with self._lock:
                self.stats.surfaced += 1

    def _after_call_error(self, exception: BaseException, **_: Any) -> None:
        self._local.failed_entries = None
        if getattr(self._local, "injected_last", False):
            with self._lock:
                self.stats.surfaced += 1

    # --- helpers ---

    def _note(self, kind: str, operation: str) -> None:
        with self._lock:
            self.stats.injected[kind] += 1
            self.stats.by_operation[operation] += 1

    def _error_response(self, request: Any, service: str, kind: str) -> Any:
        from botocore.awsrequest import AWSResponse

        if kind == "throttle":
            if service == "s3":
                status, code = 503, "SlowDown"
            elif service == "dynamodb":
                status, code = 400, "ProvisionedThroughputExceededException"
            else:
                status, code = 400, "ThrottlingException"
        else:
            with self._lock:
                status, code = self._random.choice(((500, "InternalFailure"), (503, "ServiceUnavailable")))
        message = f"injected {kind}"
        protocol = self._protocols.get(service, "json")
        if protocol in ("json", "rest-json"):
            body = json.dumps({"__type": code, "message": message}).encode()
            headers = {"Content-Type": "application/x-amz-json-1.1", "x-amzn-ErrorType": code}
        elif protocol == "query":
            body = (
                f"<ErrorResponse><Error><Type>Receiver</Type><Code>{code}</Code><Message>{message}</Message>"
                "</Error><RequestId>injected</RequestId></ErrorResponse>"
            ).encode()
            headers = {"Content-Type": "text/xml"}
        else:  # rest-xml (S3), ec2
            body = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>".encode()
            headers = {"Content-Type": "application/xml"}
        return AWSResponse(request.url, status, headers, _RawBody(body))


@contextmanager
def no_retry_sleep() -> Iterator[None]:
    """botocore's retries without their waits (legacy mode sleeps up to seconds per retry):
    the same attempts, in a fraction of the time."""
    import botocore.endpoint  # both retry modes sleep here

    class _Clock:
        def __getattr__(self, name: str) -> Any:
            import time

            return getattr(time, name)

        @staticmethod
        def sleep(_: float) -> None:
            return None

    saved = botocore.endpoint.time
    botocore.endpoint.time = _Clock()
    try:
        yield
    finally:
        botocore.endpoint.time = saved
