"""The admin handler loads an area's routes when a request first reaches it: every route is
still reachable, a cold import loads no area, and the OpenAPI document is the same whichever
areas were loaded first."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[3]
ROUTES = REPOSITORY / "functions" / "admin" / "routes"
AREA_LOGIC = [
    "functions.admin.answers",
    "functions.admin.campaign_runs",
    "functions.admin.campaigns",
    "functions.admin.logic",
    "functions.admin.models",
    "functions.admin.routing_config",
    "functions.admin.subscriptions",
]


def run_python(code: str) -> str:
    # This tree first, as the tests' own imports have it (the venv may hold another checkout's layer).
    path = os.pathsep.join([str(REPOSITORY / "layers" / "core" / "python"), str(REPOSITORY)])
    environment = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "PYTHONPATH": path}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=environment, cwd=REPOSITORY, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def area_map() -> tuple[dict[str, tuple[str, ...]], tuple[str, ...]]:
    """The handler's AREAS and AREA_MODULES, read without importing the handler (its Logger
    would be made before any test set the function's environment)."""
    found = json.loads(
        run_python(
            "import json\nfrom functions.admin import handler\nprint(json.dumps([handler.AREAS, handler.AREA_MODULES]))"
        )
    )
    return {segment: tuple(modules) for segment, modules in found[0].items()}, tuple(found[1])


AREAS, AREA_MODULES = area_map()


def test_every_route_module_is_an_area():
    modules = {path.stem for path in ROUTES.glob("*.py")} - {"__init__", "params"}
    assert set(AREA_MODULES) == modules


@pytest.mark.parametrize("module", sorted({m for modules in AREAS.values() for m in modules}))
def test_every_route_is_loaded_by_the_area_its_path_names(module):
    router = importlib.import_module(f"functions.admin.routes.{module}").router
    rules = {route[0] for route in router._routes}
    assert rules
    for rule in rules:
        segment = rule.split("/")[2]
        loaded_by = AREAS.get(segment, ())
        assert module in loaded_by, f"{rule} is in routes/{module}.py, but /admin/{segment} loads {loaded_by}"


def test_a_cold_import_loads_no_area():
    loaded = json.loads(
        run_python(
            "import json, sys\nimport functions.admin.handler\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith('functions.admin.'))))"
        )
    )
    assert not [m for m in loaded if m.startswith("functions.admin.routes.") and not m.endswith(".params")]
    assert not set(loaded) & set(AREA_LOGIC)


def test_a_request_loads_its_own_area_only():
    included = json.loads(
        run_python(
            "import json\nfrom functions.admin import handler\n"
            "handler.include_area_of('/admin/campaigns/cmp_1/runs')\n"
            "handler.include_area_of('/admin/conversations')\n"
            "handler.include_area_of('/admin/nowhere')\n"
            "print(json.dumps(sorted(handler._included)))"
        )
    )
    assert included == ["campaigns", "conversations", "messages"]


def test_the_document_is_the_same_whichever_area_was_loaded_first():
    rendered = run_python(
        "import sys\nfrom functions.admin import handler\n"
        "handler.include_areas(tuple(reversed(handler.AREA_MODULES)))\n"
        "sys.stdout.write(handler.render_openapi())"
    )
    assert rendered == (REPOSITORY / "docs" / "openapi.json").read_text()
