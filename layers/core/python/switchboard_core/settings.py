"""Environment-variable settings, one pydantic model per function.

Functions declare what they need from their environment (names from
infra/topology.py) and read it once, on first use, not at import time.
"""

from __future__ import annotations

import os
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from switchboard_core.errors import HubError

SettingsT = TypeVar("SettingsT", bound=BaseModel)


def load_settings(model: type[SettingsT], environ: dict[str, str] | None = None) -> SettingsT:
    """Build `model` from environment variables named by its field aliases.

    A missing or bad variable is a deployment fault: it raises a 500 HubError that
    names the variable instead of failing somewhere deeper.
    """
    source = os.environ if environ is None else environ
    try:
        return model.model_validate(dict(source))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise HubError(f"function misconfigured: {problems}", status=500, code="misconfigured") from None
