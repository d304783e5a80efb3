"""`cdk synth` through the pinned CDK CLI, as a deployer runs it: offline, no Docker,
and cdk-nag findings (applied in infra/aws/app.py) fail it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CDK = ROOT / "node_modules" / ".bin" / "cdk"

pytestmark = pytest.mark.infra


def test_cdk_cli_synth_succeeds_without_docker(tmp_path):
    if not CDK.exists():
        if os.environ.get("CI"):
            pytest.fail("node_modules/.bin/cdk is missing: `make test` installs it from package.json")
        pytest.skip("the pinned CDK CLI is not installed (run `make install`)")
    env = {
        **os.environ,
        "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        "CDK_DISABLE_VERSION_CHECK": "1",
        # No Docker here: make sure nothing could reach for it.
        "CDK_DOCKER": str(tmp_path / "no-docker"),
    }
    assert shutil.which("docker", path=str(tmp_path)) is None
    result = subprocess.run(
        [str(CDK), "synth", "-q", "--no-notices", "-o", str(tmp_path / "cdk.out"), "-c", "stage=ci"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    manifest = json.loads((tmp_path / "cdk.out" / "manifest.json").read_text())
    assert "Switchboard-ci" in manifest["artifacts"]
