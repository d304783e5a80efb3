"""Where the local SNS demo certificate lives (dev only; see infra/local/samples/sns.py).

Kept outside the samples package so the local runtime and the test suite can name the
directory without importing every provider's sample module.
"""

from __future__ import annotations

import os
from pathlib import Path

DEV_CERT_DIR_ENV = "SWITCHBOARD_SNS_DEV_CERT_DIR"
REPO_ROOT = Path(__file__).resolve().parents[2]


def dev_certificate_dir() -> Path:
    """$SWITCHBOARD_SNS_DEV_CERT_DIR, else build/dev/sns in the repository."""
    value = os.environ.get(DEV_CERT_DIR_ENV, "").strip()
    return Path(value) if value else REPO_ROOT / "build" / "dev" / "sns"
