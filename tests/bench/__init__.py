"""Benchmarks (`make bench`; each module's `--quick` form runs in CI)."""

from __future__ import annotations

import os


def use_in_process_moto(**extra: str) -> None:
    """Fake credentials and a region for moto's in-process mock (each kept if already set), and
    no endpoint URL: a benchmark's clients must reach mock_aws, never a running hub."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        **extra,
    }.items():
        os.environ.setdefault(key, value)
    os.environ.pop("AWS_ENDPOINT_URL", None)
