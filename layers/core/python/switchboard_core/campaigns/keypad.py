"""Keypad input a campaign's call gathers: a flow's `place_call` step asks for it and the run's
call action carries it. In a module of its own so that reading a run (runs.py) does not import
the flow's step models, which only a message that advances a run needs."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Gather(BaseModel):
    # Built on first use, as flow.py's and runs.py's models are (docs/benchmarks.md, "Cold start").
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    num_digits: int = Field(default=1, ge=1, le=16)
    timeout_seconds: int = Field(default=5, ge=1, le=60)
