"""AWS stubbed at botocore's last step: every client built in the process runs its whole
pipeline (parameter validation, serialising, SigV4 signing, parsing the answer, the event
hooks Powertools and our code register), and only the HTTP send is replaced by a canned
answer in each service's wire format. Neither moto nor a socket is involved, so what a
benchmark times is the caller's own CPU, as it would be on Lambda minus the network.

`install()` patches `botocore.endpoint.Endpoint._send` now; `install_on_import()` patches it
when botocore.endpoint is first imported, so a cold-start measurement that imports boto3
late (our handlers make their clients on first use) still counts that import.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import json
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

# What the stub answers, per operation; a benchmark sets ITEMS and SECRETS before the calls.
ITEMS: dict[str, dict[str, Any]] = {}  # DynamoDB GetItem: table name -> item (wire format)
SECRETS: dict[str, str] = {}  # Secrets Manager GetSecretValue: secret id -> SecretString
CALLS: Counter[str] = Counter()  # operation -> how many times it was called


@dataclass
class LambdaContext:
    """What a handler reads of its Lambda context."""

    function_name: str = "bench"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:bench"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"
    log_group_name: str = "/aws/lambda/bench"
    log_stream_name: str = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body


def _json_answer(target: str, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    operation = target.rsplit(".", 1)[-1]
    CALLS[operation] += 1
    if operation == "GetItem":
        item = ITEMS.get(body.get("TableName", ""))
        return 200, {}, json.dumps({"Item": item} if item is not None else {}).encode()
    if operation in ("PutItem", "UpdateItem", "DeleteItem"):
        return 200, {}, b"{}"
    if operation == "PutEvents":
        entries = [{"EventId": f"stub-{CALLS[operation]}-{n}"} for n, _ in enumerate(body.get("Entries", []))]
        return 200, {}, json.dumps({"FailedEntryCount": 0, "Entries": entries}).encode()
    if operation == "GetSecretValue":
        secret_id = body["SecretId"]
        answer = {"ARN": f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{secret_id}", "Name": secret_id}
        return 200, {}, json.dumps({**answer, "SecretString": SECRETS[secret_id], "VersionId": "v1"}).encode()
    raise NotImplementedError(f"the AWS stub has no answer for {target}")


def _send(self: Any, request: Any) -> Any:
    from botocore.awsrequest import AWSResponse

    headers = request.headers
    target = headers.get("X-Amz-Target")
    if target:
        if isinstance(target, bytes):
            target = target.decode()
        body = request.body
        if hasattr(body, "read"):
            body = body.read()
        document = json.loads(body or b"{}")
        status, answer_headers, content = _json_answer(target, document)
        answer_headers = {"Content-Type": "application/x-amz-json-1.1", **answer_headers}
    elif request.method == "PUT" and "s3" in request.url:
        CALLS["PutObject"] += 1
        status, answer_headers, content = 200, {"ETag": '"0123456789abcdef0123456789abcdef"'}, b""
    else:
        raise NotImplementedError(f"the AWS stub has no answer for {request.method} {request.url}")
    return AWSResponse(request.url, status, {"x-amzn-RequestId": "stub", **answer_headers}, _Raw(content))


def install() -> None:
    import botocore.endpoint

    botocore.endpoint.Endpoint._send = _send


class _PatchOnImport(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds botocore.endpoint as usual and patches it once it has run."""

    def __init__(self, name: str, patch: Callable[[ModuleType], None]) -> None:
        self._name, self._patch = name, patch
        self._loader: Any = None

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None) -> Any:
        if fullname != self._name:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None:
            self._loader, spec.loader = spec.loader, self
        return spec

    def create_module(self, spec: Any) -> Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        self._patch(module)
        sys.meta_path.remove(self)


def install_on_import() -> None:
    if "botocore.endpoint" in sys.modules:
        install()
        return

    def patch(module: ModuleType) -> None:
        module.Endpoint._send = _send

    sys.meta_path.insert(0, _PatchOnImport("botocore.endpoint", patch))
