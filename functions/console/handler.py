"""Console: the web console's static pages, served at /console by the hub's HTTP API.

The pages hold no data and no secret. Script in the browser signs in with an admin API key
(kept in the tab's sessionStorage only) and calls the admin API with it, so what a page shows
or changes follows that key's principal exactly as the API decides.

Only files under static/ with a known extension are served; anything else is a JSON 404.
Every answer carries a Content-Security-Policy that allows only the console's own script,
styles and the admin API (no inline script, no third-party origin, no framing).
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

STATIC_DIR = Path(__file__).resolve().parent / "static"
CONSOLE_PREFIX = "/console"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
# Lower-case names, folders and one known extension: no "..", no hidden files, no query tricks.
SAFE_PATH = re.compile(r"^(?:[a-z0-9_-]+/)*[a-z0-9_-]+\.(?:html|js|css|svg)$")
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # The files change with each deploy and are small: revalidate rather than serve a stale page.
    "Cache-Control": "no-cache",
}


def asset_path(request_path: str) -> str | None:
    """The static file a request path names ("/console" and "/console/" are the index), or None."""
    if request_path in (CONSOLE_PREFIX, CONSOLE_PREFIX + "/"):
        return "index.html"
    if not request_path.startswith(CONSOLE_PREFIX + "/"):
        return None
    relative = request_path[len(CONSOLE_PREFIX) + 1 :]
    return relative if SAFE_PATH.match(relative) else None


@cache
def read_asset(relative: str) -> bytes | None:
    """The file's bytes (cached for the sandbox's life: the files ship with the code)."""
    path = (STATIC_DIR / relative).resolve()
    if not path.is_relative_to(STATIC_DIR) or not path.is_file():
        return None
    return path.read_bytes()


def not_found(request_path: str) -> dict[str, Any]:
    body = {"error": {"code": "not_found", "message": f"no console page at {request_path[:200]!r}"}}
    return {
        "statusCode": 404,
        "headers": {"Content-Type": "application/json", **SECURITY_HEADERS},
        "body": json.dumps(body),
    }


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    request_path = str(event.get("rawPath") or "")
    relative = asset_path(request_path)
    content = read_asset(relative) if relative else None
    if relative is None or content is None:
        return not_found(request_path)
    content_type = CONTENT_TYPES[Path(relative).suffix]
    return {
        "statusCode": 200,
        "headers": {"Content-Type": content_type, **SECURITY_HEADERS},
        "body": content.decode("utf-8"),
    }
