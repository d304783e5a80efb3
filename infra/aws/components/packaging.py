"""Lambda code assets built without Docker.

A function's handler is a dotted path from the repository root
(`functions.ingest.handler.handler`), so its asset must hold
`functions/__init__.py` and `functions/<name>/**` - and nothing else: no other
function's code, no tests, no infra. At synth time each function's files are
copied with shutil into `<cdk outdir>/build/<name>/` and that directory becomes
the asset. The shared library ships separately as the core layer
(`layers/core/python/switchboard_core`), Powertools, pydantic and the X-Ray SDK come
from the AWS-managed Powertools layer, and the few other libraries the core layer needs
(phonenumbers, defusedxml, cryptography, PyJWT) from the slim deps layer, built for
arm64 / Python 3.14 by `make install` with pip (infra/aws/layers.py), never by Docker.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from aws_cdk import Stage
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra import topology
from infra.aws import layers

REPO_ROOT = Path(__file__).resolve().parents[3]
LAYER_CORE_DIR = REPO_ROOT / "layers" / "core"
IGNORED = ("__pycache__", "*.pyc", "*.pyo", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".DS_Store")


def build_function_asset(function: topology.Function, outdir: Path, source_root: Path = REPO_ROOT) -> Path:
    """Copy one function's package into `outdir/build/<name>/` and return that directory:
    exactly what Lambda unpacks into /var/task (tests/infra/test_asset_imports.py imports
    each handler from it the way Lambda does)."""
    source_dir = source_root / function.directory
    if not source_dir.is_dir():
        raise FileNotFoundError(f"{function.name}: handler {function.handler} needs the directory {source_dir}")
    build_dir = outdir / "build" / function.name
    if build_dir.exists():
        shutil.rmtree(build_dir)  # never ship a file deleted from the source tree
    package_root = build_dir / "functions"
    package_root.mkdir(parents=True)
    init = source_root / "functions" / "__init__.py"
    if init.is_file():
        shutil.copy2(init, package_root / "__init__.py")
    else:  # functions/ may be a namespace package locally; Lambda imports it either way
        (package_root / "__init__.py").write_text("")
    shutil.copytree(source_dir, build_dir / function.directory, ignore=shutil.ignore_patterns(*IGNORED))
    return build_dir


def stage_function_code(scope: Construct, function: topology.Function) -> Path:
    """The function's asset directory, built under the stage's output directory
    (cdk.out under the CLI, a temp dir in tests)."""
    stage = Stage.of(scope)
    if stage is None:
        raise ValueError(f"{scope.node.path} is not inside a CDK App or Stage; its assets have nowhere to go")
    return build_function_asset(function, Path(stage.outdir))


def function_code(scope: Construct, function: topology.Function) -> lambda_.Code:
    return lambda_.Code.from_asset(str(stage_function_code(scope, function)))


def core_layer_code() -> lambda_.Code:
    """The layer zip must hold `python/switchboard_core/...`; layers/core is laid out that way already."""
    return lambda_.Code.from_asset(str(LAYER_CORE_DIR), exclude=[f"**/{pattern}" for pattern in IGNORED])


def deps_layer_code() -> lambda_.Code:
    """build/layers/deps (python/<packages>), checked first: synth fails with a clear message
    telling to run `make install` when it is missing or stale, and never builds it."""
    layer_dir = layers.ensure_ready()
    return lambda_.Code.from_asset(str(layer_dir), exclude=[f"**/{pattern}" for pattern in IGNORED])
