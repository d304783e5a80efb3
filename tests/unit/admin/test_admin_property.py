"""Property test over the OpenAPI document: no admin route answers 5xx to any request a
client can send. Schemathesis generates requests from docs/openapi.json (as served), valid
ones and invalid ones (wrong types, out-of-range values, missing and extra fields), for every
operation; some get a raw byte body, a body that is not UTF-8 or JSON nested far too deep
instead. Each goes through the admin handler in-process, as API Gateway's HTTP API event,
against moto, under one of the kinds of key the authorizer passes (or none).

`SWITCHBOARD_FUZZ_EXAMPLES` sets the examples per generation mode (`make fuzz`); the default
keeps the run under a minute and is derandomised, so `make test` is repeatable.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any
from urllib.parse import quote

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.generation.modes import GenerationMode

from functions.admin.handler import openapi_document
from tests.unit.admin.conftest import OPERATOR, admin_event
from tests.unit.admin.test_admin_api import ADMIN, OTHER, PARTNER, STAFF

FUZZ_EXAMPLES = os.environ.get("SWITCHBOARD_FUZZ_EXAMPLES")
EXAMPLES = int(FUZZ_EXAMPLES or 150)

DOCUMENT = openapi_document()
SCHEMA = schemathesis.openapi.from_dict(DOCUMENT)
OPERATIONS = sorted((path, method.upper()) for path, operations in DOCUMENT["paths"].items() for method in operations)
PRINCIPALS = st.sampled_from([ADMIN, STAFF, PARTNER, OTHER, OPERATOR, {}])
HOSTILE_BODIES = st.one_of(
    st.binary(max_size=64),  # bytes, mostly not UTF-8
    st.integers(33, 20_000).map(lambda n: "[" * n + "]" * n),  # nested past what can be stored
    st.integers(33, 3_000).map(lambda n: '{"a":' * n + "1" + "}" * n),
    st.text(max_size=64),  # text that is seldom JSON
    # half a UTF-16 pair, escaped: valid JSON, not storable text
    st.integers(0xD800, 0xDFFF).map(lambda c: '{"credentials": {"secret_token": "\\u' + f"{c:04x}" + '"}}'),
    st.integers(4_301, 6_000).map(lambda n: '{"limit": ' + "9" * n + "}"),  # past Python's int digits
)


def as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def request_of(case: Any, principal: dict[str, Any], hostile_body: Any) -> dict[str, Any]:
    """The HTTP API event for a generated case (path parameters percent-encoded, as in a URL)."""
    path = re.sub(r"\{(\w+)\}", lambda m: quote(as_text(case.path_parameters.get(m.group(1), "")), safe=""), case.path)
    query = {
        name: ",".join(map(as_text, value)) if isinstance(value, list) else as_text(value)
        for name, value in (case.query or {}).items()
        if value is not None
    }
    body: str | bytes | None = None
    if hostile_body is not None:
        body = hostile_body
    elif not isinstance(case.body, type(None)) and case.media_type:
        try:
            body = json.dumps(case.body)
        except (TypeError, ValueError):
            body = None
    if (
        body is None
        and case.method in ("POST", "PUT")
        and DOCUMENT["paths"][case.path][case.method.lower()].get("requestBody")
    ):
        body = "{}"
    return admin_event(case.method, path, body=body, query=query, principal=principal)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
def test_property_no_admin_route_answers_5xx(admin, mode):
    strategies = {
        operation: SCHEMA[operation[0]][operation[1]].as_strategy(generation_mode=mode) for operation in OPERATIONS
    }

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=FUZZ_EXAMPLES is None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(data=st.data())
    def one_request(data: st.DataObject) -> None:
        operation = data.draw(st.sampled_from(OPERATIONS), label="operation")
        case = data.draw(strategies[operation], label="case")
        hostile = (
            data.draw(st.none() | HOSTILE_BODIES, label="hostile body")
            if data.draw(st.integers(0, 4), label="hostile?") == 0
            else None
        )
        event = request_of(case, data.draw(PRINCIPALS, label="principal"), hostile)
        status, _, body = admin(event)
        assert status < 500, (event["requestContext"]["http"], event.get("body", "")[:200], body)
        if status >= 400:
            assert set(body) == {"error"} and body["error"]["code"] and body["error"]["message"], body
            for problem in body["error"].get("details", {}).get("problems", []):
                assert problem["field"] and problem["problem"], body

    one_request()
