"""The console function serves its static files and nothing else."""

from __future__ import annotations

import json

import pytest

from functions.console import handler as console


def get(path: str) -> dict:
    return console.handler({"rawPath": path, "requestContext": {"http": {"method": "GET"}}}, None)


@pytest.mark.parametrize("path", ["/console", "/console/"])
def test_the_index_is_the_console(path):
    answer = get(path)
    assert answer["statusCode"] == 200
    assert answer["headers"]["Content-Type"] == "text/html; charset=utf-8"
    assert '<script type="module" src="/console/js/app.js">' in answer["body"]


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/console/console.css", "text/css"),
        ("/console/js/app.js", "text/javascript"),
        ("/console/js/pages/events.js", "text/javascript"),
    ],
)
def test_assets_carry_their_type_and_the_security_headers(path, content_type):
    answer = get(path)
    assert answer["statusCode"] == 200 and answer["headers"]["Content-Type"].startswith(content_type)
    policy = answer["headers"]["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy and "unsafe-inline" not in policy
    assert answer["headers"]["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    "path",
    [
        "/console/../functions/console/handler.py",
        "/console/js/../../handler.py",
        "/console/%2e%2e/handler.py",
        "/console/handler.py",
        "/console/.hidden.js",
        "/console/JS/APP.JS",
        "/console/missing.js",
        "/console/js/app.js/",
        "/consolex",
        "/admin/whoami",
        "",
    ],
)
def test_anything_else_is_a_json_404(path):
    answer = get(path)
    assert answer["statusCode"] == 404
    body = json.loads(answer["body"])
    assert body["error"]["code"] == "not_found"


def test_every_page_the_shell_loads_ships_with_the_function():
    """app.js imports each page module by a literal path: each must exist under static/."""
    import re

    app = (console.STATIC_DIR / "js" / "app.js").read_text()
    pages = re.findall(r'import\("\./(pages/[a-z_-]+\.js)"\)', app)
    assert pages, "no page modules found in app.js"
    for page in pages:
        assert get(f"/console/js/{page}")["statusCode"] == 200, page


def test_no_script_sets_html_from_data():
    """The pages build the DOM with text nodes only (ui.js h()): no innerHTML, no eval."""
    for script in (console.STATIC_DIR / "js").rglob("*.js"):
        text = script.read_text()
        for forbidden in ("innerHTML", "outerHTML", "insertAdjacentHTML", "eval(", "new Function", "document.write"):
            assert forbidden not in text, f"{script.name} uses {forbidden}"


def test_the_key_is_kept_in_session_storage_only():
    import re

    for script in (console.STATIC_DIR / "js").rglob("*.js"):
        text = script.read_text()
        assert not re.search(r"localStorage\s*[.\[]|document\.cookie", text), script.name


def test_every_route_without_the_authorizer_says_why():
    from infra import topology

    assert {r.path for r in topology.ROUTES if r.function == "console"} == {"/console", "/console/{proxy+}"}
    for route in topology.ROUTES:
        assert route.authorized or len(route.public_because) > 40, route
