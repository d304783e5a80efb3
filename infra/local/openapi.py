"""Write the admin API's OpenAPI document to docs/openapi.json (`make openapi`).

The document is generated from the admin function's routes and models
(functions/admin/handler.py); tests/unit/admin/test_admin_contract.py fails while the
committed file differs from what the code generates.
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def main() -> int:
    from functions.admin.handler import render_openapi

    rendered = render_openapi()
    if DOCUMENT.exists() and DOCUMENT.read_text() == rendered:
        print("docs/openapi.json is current")
        return 0
    DOCUMENT.write_text(rendered)
    print("wrote docs/openapi.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
