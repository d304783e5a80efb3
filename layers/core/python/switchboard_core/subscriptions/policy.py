"""The delivery policy: retry schedule, timeouts, circuit breaker and failing thresholds.

The numbers live in infra/topology.py; functions get them as one JSON environment
variable (DELIVERY_POLICY), so the local runtime and tests can run the same machinery on
a faster clock.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from switchboard_core.errors import HubError

POLICY_ENV = "DELIVERY_POLICY"
SQS_MAX_VISIBILITY_SECONDS = 12 * 3600


class DeliveryPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    retry_schedule_seconds: tuple[float, ...] = Field(min_length=1)
    retry_jitter: float = Field(ge=0, le=1)
    timeout_seconds: float = Field(gt=0)
    failing_after_seconds: float = Field(gt=0)
    disabled_after_seconds: float = Field(gt=0)
    breaker_failure_threshold: int = Field(ge=1)
    breaker_cooldown_seconds: float = Field(gt=0)
    breaker_max_cooldown_seconds: float = Field(gt=0)
    rotation_grace_seconds: float = Field(ge=0)
    attempts_ttl_seconds: int = Field(gt=0)

    @property
    def max_attempts(self) -> int:
        return len(self.retry_schedule_seconds)

    def delay_before(
        self, attempt: int, retry_after: float | None = None, rand: Callable[[], float] = random.random
    ) -> float | None:
        """Seconds to wait before attempt number `attempt` (1-based; attempt 1 is the first
        send), with jitter, at least `retry_after` when the endpoint asked for it; None when
        the schedule has no such attempt (the delivery has failed for good)."""
        if attempt > self.max_attempts:
            return None
        base = self.retry_schedule_seconds[attempt - 1]
        delay = base * (1 + self.retry_jitter * rand())
        if retry_after is not None:
            delay = max(delay, retry_after)
        return min(delay, SQS_MAX_VISIBILITY_SECONDS)

    def breaker_cooldown(self, consecutive_failures: int) -> float:
        """How long an open breaker waits: doubles with each failure past the threshold."""
        over = max(0, consecutive_failures - self.breaker_failure_threshold)
        return min(self.breaker_cooldown_seconds * 2 ** min(over, 30), self.breaker_max_cooldown_seconds)


def load_policy(environ: dict[str, str] | None = None) -> DeliveryPolicy:
    source = os.environ if environ is None else environ
    try:
        return DeliveryPolicy.model_validate(json.loads(source[POLICY_ENV]))
    except (KeyError, ValueError, ValidationError) as exc:
        raise HubError(f"function misconfigured: {POLICY_ENV}: {exc}", status=500, code="misconfigured") from None
