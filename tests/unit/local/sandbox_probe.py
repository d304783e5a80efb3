"""Injected into a local-runtime sandbox by tests/unit/local/test_workers.py (loaded there by
path): writes what the sandbox sees to a JSON file."""

from __future__ import annotations

import importlib
import json
import os
import sys


def report(path: str) -> None:
    def importable(module: str) -> str:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            return f"{type(exc).__name__}: {exc}"
        return "ok"

    seen = {
        "environment": dict(os.environ),
        "path": list(sys.path),
        "infra": importable("infra"),
        "tests": importable("tests"),
        "other_function": importable("functions.ingest.handler"),
        "own_function": importable("functions.authorizer.handler"),
        "niceness": os.nice(0),
    }
    with open(path, "w") as file:
        json.dump(seen, file)
