"""The one Hypothesis setting every provider's property tests use.

`SWITCHBOARD_FUZZ_EXAMPLES` sets the number of generated inputs per test: 100 in the
default run (its short form: the 52 property tests were most of the providers' test time at
300, docs/benchmarks.md), 10,000 in `make fuzz`.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

FUZZ = settings(
    max_examples=int(os.environ.get("SWITCHBOARD_FUZZ_EXAMPLES", "100")),
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],
)
