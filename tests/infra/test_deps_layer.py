"""The slim deps layer: built for arm64 / Python 3.14 without Docker, attached to the functions
that load provider adapters, and a clear synth failure when it has not been built."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from infra import topology
from infra.aws import layers
from infra.aws.components.functions import DEPS_LAYER_FUNCTIONS
from tests.infra.conftest import REPO_ROOT, Synthesised, synthesise

pytestmark = pytest.mark.infra


def _layer(synth: Synthesised) -> dict:
    return synth.json["Resources"][synth.logical_id(synth.stack.functions.deps_layer)]


def _asset_dir(synth: Synthesised, layer: dict) -> Path:
    return synth.outdir / f"asset.{layer['Properties']['Content']['S3Key'].removesuffix('.zip')}"


@pytest.mark.parametrize("name", sorted(topology.FUNCTIONS))
def test_functions_that_load_adapters_carry_the_deps_layer(synth: Synthesised, name: str) -> None:
    function = synth.json["Resources"][synth.logical_id(synth.stack.functions.functions[name])]
    deps = {"Ref": synth.logical_id(synth.stack.functions.deps_layer)}
    assert (deps in function["Properties"]["Layers"]) == (name in DEPS_LAYER_FUNCTIONS)


def test_ingest_and_admin_are_deps_layer_functions() -> None:
    assert {"ingest", "admin"} <= DEPS_LAYER_FUNCTIONS


def test_deps_layer_is_arm64_python314(synth: Synthesised) -> None:
    props = _layer(synth)["Properties"]
    assert props["CompatibleRuntimes"] == ["python3.14"]
    assert props["CompatibleArchitectures"] == ["arm64"]


def test_deps_layer_asset_holds_the_libraries_for_aarch64(synth: Synthesised) -> None:
    asset = _asset_dir(synth, _layer(synth))
    python = asset / "python"
    for package in ("phonenumbers", "defusedxml", "cryptography", "jwt"):
        assert (python / package / "__init__.py").is_file(), package
    shared = sorted(python.rglob("*.so"))
    crypto = [p for p in shared if p.is_relative_to(python / "cryptography")]
    assert crypto, "cryptography's Rust extension is missing"
    assert all(layers.is_aarch64_elf(p) for p in shared), [p.name for p in shared if not layers.is_aarch64_elf(p)]
    assert list(python.glob("*cpython-314-aarch64-linux-gnu.so")), "cffi's backend for cp314/aarch64 is missing"
    files = [p.relative_to(asset).as_posix() for p in asset.rglob("*") if p.is_file()]
    assert all(f.startswith("python/") for f in files)
    assert not [f for f in files if f.endswith((".pyc", ".pyo")) or "__pycache__" in f or f.startswith("python/bin/")]


def test_pip_command_never_builds_from_source() -> None:
    command = layers.pip_command(Path("/tmp/x"))
    assert "--only-binary=:all:" in command and "--no-compile" in command
    assert command[command.index("--python-version") + 1] == "3.14"
    assert {command[i + 1] for i, arg in enumerate(command) if arg == "--platform"} == {
        "manylinux_2_28_aarch64",
        "manylinux2014_aarch64",
    }


def test_requirements_match_pyproject_pins() -> None:
    import tomllib

    pins = set(tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"])
    lines = [line.strip() for line in layers.DEPS_REQUIREMENTS.read_text().splitlines()]
    requirements = {line for line in lines if line and not line.startswith("#")}
    assert requirements <= pins


def test_missing_layer_fails_synth_with_a_clear_message(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(layers, "DEPS_LAYER_DIR", tmp_path / "deps")
    with pytest.raises(layers.DepsLayerMissing, match=r"make install"):
        synthesise(tmp_path / "out")


def test_stale_layer_is_reported(tmp_path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("phonenumbers==0.0.1\n")
    found = layers.problems(layers.DEPS_LAYER_DIR, layers.DEPS_STAMP, requirements)
    assert found == ["it was not built from the current requirements.txt"]


@pytest.mark.parametrize("name", sorted(set(topology.FUNCTIONS) - DEPS_LAYER_FUNCTIONS))
def test_functions_without_the_deps_layer_import_none_of_its_libraries(name: str) -> None:
    """Importing the handler with the deps libraries blocked works, and its code never loads
    an adapter or switchboard_core.phones."""
    spec = topology.FUNCTIONS[name]
    blocked = {"phonenumbers", "defusedxml", "cryptography", "jwt", "ahocorasick", "vaderSentiment"}
    code = textwrap.dedent(f"""
        import importlib.abc, sys
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {blocked!r}:
                    raise ImportError("not in this function's layers: " + name)
        sys.meta_path.insert(0, Block())
        import {spec.handler.rsplit(".", 1)[0]}
    """)
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env={
            "PATH": "",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "AWS_DEFAULT_REGION": "us-east-1",
            "PYTHONPATH": f"{REPO_ROOT}:{REPO_ROOT / 'layers/core/python'}",
        },
    )
    assert result.returncode == 0, result.stderr[-2000:]
    source = "\n".join(p.read_text() for p in (REPO_ROOT / spec.directory).rglob("*.py"))
    for marker in ("get_adapter", "all_adapters", "switchboard_core.phones", "switchboard_core.providers."):
        assert marker not in source, f"{name} uses {marker}: set deps_layer in infra/topology.py"


def test_every_function_that_sends_carries_the_deps_layer() -> None:
    """A function with outbound credentials may load any provider's sender on first use, and
    some need the deps layer's libraries (Vonage's application JWT: PyJWT and cryptography)."""
    senders_need_it = {
        name
        for name, spec in topology.FUNCTIONS.items()
        if spec.outbound_secrets or name == "routing"  # routing asks senders for reply addresses
    }
    assert senders_need_it <= DEPS_LAYER_FUNCTIONS, sorted(senders_need_it - DEPS_LAYER_FUNCTIONS)
