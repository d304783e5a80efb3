"""Odd ids in the admin API's path parameters, for every operation in the OpenAPI document that
has one: path traversal (encoded and not), NUL, lone surrogates, RTL overrides, CR/LF, 10 KB ids,
injection-shaped text. Each one, under an operator's key and a tenant admin's, is a 4xx JSON
error (mostly 404: nothing of that id, never an object found by walking somewhere else) and
never a 5xx. Hostile bodies and queries are the schemathesis property test's
(test_admin_property.py); this covers ids it seldom draws.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from functions.admin.handler import openapi_document
from tests.hostile import HOSTILE_IDS
from tests.unit.admin.conftest import OPERATOR, admin_event
from tests.unit.admin.test_admin_api import ADMIN

DOCUMENT = openapi_document()
TEMPLATES = sorted(
    (path, method.upper()) for path, operations in DOCUMENT["paths"].items() if "{" in path for method in operations
)


def test_every_templated_admin_route_refuses_odd_ids_with_a_json_4xx(admin):
    assert len(TEMPLATES) >= 20
    answered = 0
    for path, method in TEMPLATES:
        for name, odd in HOSTILE_IDS.items():
            for value in (quote(odd, safe="", errors="surrogatepass"), odd):
                concrete = re.sub(r"\{\w+\}", lambda _, v=value: v, path)
                body = "{}" if method in ("POST", "PUT", "PATCH") else None
                for principal in (OPERATOR, ADMIN):
                    status, _, answer = admin(admin_event(method, concrete, body=body, principal=principal))
                    what = (method, path, name, principal["role"], status, answer)
                    if 200 <= status < 300 and method == "PUT" and odd in (".", ".."):
                        # PUT creates by name, and "." and ".." match the name pattern
                        # [A-Za-z0-9_.-]+ (a name URL clients cannot address: docs/security.md).
                        answered += 1
                        continue
                    assert 400 <= status < 500, what
                    assert answer["error"]["code"] and answer["error"]["message"], what
                    answered += 1
    assert answered == len(TEMPLATES) * len(HOSTILE_IDS) * 4
