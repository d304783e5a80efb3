"""Faults a test injects into a function's sandboxes (WorkerFunctions.inject): each runs inside
the sandbox process, after its handler is imported, loaded from this file by path (so it may use
only what the function's asset and layers hold). A patch made in the test's own process would
never reach a sandbox."""

from __future__ import annotations

import os
from typing import Any


def crash_run_save_once(contact_id: str, marker: str) -> None:
    """The campaigns function's first state write of a run for `contact_id` raises, as if the
    function died there; the run's id goes to the file `marker`, which exists only once across
    every sandbox (created exclusively), so exactly one write fails."""
    from switchboard_core.campaigns.run_store import RunStore

    save = RunStore.save

    def save_or_crash(self: Any, run: Any, *args: Any, **kwargs: Any) -> Any:
        if run.contact.id == contact_id:
            try:
                descriptor = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                return save(self, run, *args, **kwargs)
            with os.fdopen(descriptor, "w") as file:
                file.write(run.id)
            raise RuntimeError("the campaigns function died between two steps")
        return save(self, run, *args, **kwargs)

    RunStore.save = save_or_crash  # type: ignore[method-assign]
