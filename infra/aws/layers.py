"""The slim deps layer: the third-party libraries the core layer needs beyond the AWS-managed
Powertools layer, built for Lambda (Python 3.14, arm64) without Docker.

`make layer` (part of `make install`) runs `python -m infra.aws.layers`, which pip-installs
layers/deps/requirements.txt as manylinux aarch64 / cp314 wheels only (never an sdist, so
nothing is compiled for the build machine) into build/layers/deps/python. The CDK app ships
that directory as a LayerVersion (infra/aws/components/packaging.py); synth only reads it,
so it stays offline, and it fails with a clear message when the directory is missing or
stale. A stamp (the requirements' digest) makes a rebuild happen only when they change.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPS_REQUIREMENTS = REPO_ROOT / "layers" / "deps" / "requirements.txt"
DEPS_LAYER_DIR = REPO_ROOT / "build" / "layers" / "deps"  # the asset: python/<packages>
DEPS_STAMP = REPO_ROOT / "build" / "layers" / "deps.requirements.sha256"

PYTHON_VERSION = "3.14"
PLATFORMS = ("manylinux_2_28_aarch64", "manylinux2014_aarch64")
# Import names the core layer needs from the deps layer (checked at synth time).
REQUIRED_PACKAGES = ("phonenumbers", "defusedxml", "cryptography", "jwt", "vaderSentiment", "jinja2")
ELF_MACHINE_AARCH64 = 183


class DepsLayerMissing(RuntimeError):
    """build/layers/deps is absent, incomplete or built from other requirements."""


def requirements_digest(requirements: Path = DEPS_REQUIREMENTS) -> str:
    return hashlib.sha256(requirements.read_bytes()).hexdigest()


def pip_command(target: Path, requirements: Path = DEPS_REQUIREMENTS) -> list[str]:
    platforms = [arg for platform in PLATFORMS for arg in ("--platform", platform)]
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        *platforms,
        "--only-binary=:all:",
        "--python-version",
        PYTHON_VERSION,
        "--implementation",
        "cp",
        "--target",
        str(target),
        "-r",
        str(requirements),
    ]


def is_aarch64_elf(path: Path) -> bool:
    with path.open("rb") as handle:
        header = handle.read(20)
    return header[:4] == b"\x7fELF" and int.from_bytes(header[18:20], "little") == ELF_MACHINE_AARCH64


def problems(layer_dir: Path | None = None, stamp: Path | None = None, requirements: Path | None = None) -> list[str]:
    """What is wrong with the built layer ([] when it is ready to ship)."""
    layer_dir, stamp = layer_dir or DEPS_LAYER_DIR, stamp or DEPS_STAMP
    requirements = requirements or DEPS_REQUIREMENTS
    python = layer_dir / "python"
    if not python.is_dir():
        return [f"{python} does not exist"]
    found = [f"{name} is missing" for name in REQUIRED_PACKAGES if not (python / name / "__init__.py").is_file()]
    shared = list(python.rglob("*.so"))
    if not any(path.is_relative_to(python / "cryptography") for path in shared):
        found.append("cryptography has no compiled extension")
    found += [f"{path.relative_to(python)} is not an aarch64 binary" for path in shared if not is_aarch64_elf(path)]
    if not stamp.is_file() or stamp.read_text().strip() != requirements_digest(requirements):
        found.append(f"it was not built from the current {requirements.name}")
    return found


def ensure_ready(layer_dir: Path | None = None) -> Path:
    """The layer directory, or DepsLayerMissing telling how to build it (synth never builds)."""
    layer_dir = layer_dir or DEPS_LAYER_DIR
    issues = problems(layer_dir)
    if issues:
        raise DepsLayerMissing(
            "the deps Lambda layer is not built (" + "; ".join(issues[:5]) + "). "
            "Run `make install` (or `make layer`) once; it needs PyPI, synth does not."
        )
    return layer_dir


def build(layer_dir: Path | None = None, stamp: Path | None = None, *, force: bool = False) -> Path:
    """Build the layer when it is missing or its requirements changed."""
    layer_dir, stamp = layer_dir or DEPS_LAYER_DIR, stamp or DEPS_STAMP
    if not force and not problems(layer_dir, stamp):
        return layer_dir
    staging = layer_dir.with_name(layer_dir.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    subprocess.run(pip_command(staging / "python"), check=True)
    shutil.rmtree(staging / "python" / "bin", ignore_errors=True)  # console scripts: useless in a layer
    shutil.rmtree(layer_dir, ignore_errors=True)
    staging.rename(layer_dir)
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(requirements_digest() + "\n")
    left = problems(layer_dir, stamp)
    if left:
        raise DepsLayerMissing("the built deps layer is incomplete: " + "; ".join(left))
    return layer_dir


def size_mb(layer_dir: Path | None = None) -> float:
    return sum(p.stat().st_size for p in (layer_dir or DEPS_LAYER_DIR).rglob("*") if p.is_file()) / 1e6


def main(argv: list[str] | None = None) -> int:
    force = "--force" in (argv if argv is not None else sys.argv[1:])
    layer_dir = build(force=force)
    print(f"deps layer ready: {layer_dir.relative_to(REPO_ROOT)} ({size_mb(layer_dir):.1f} MB unzipped)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
