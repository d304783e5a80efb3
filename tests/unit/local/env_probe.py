"""A handler that answers with the environment it was invoked with (tests only)."""

import os
from typing import Any


def handler(event: dict[str, Any], context: Any) -> dict[str, str]:
    return dict(os.environ)
