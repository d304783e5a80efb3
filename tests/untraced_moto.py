"""botocore and moto run without coverage's trace function while a run is measured (`--cov`).

On Python 3.11 (CI's) coverage traces with sys.settrace: every line of every frame pays for the
trace function, measured or not, so botocore, moto's in-process answers (unit tests' mock_aws)
and the embedded emulator's (the integration hub runs it in the test process) took about three
times their CPU under coverage (a pure-Python loop in an unmeasured file: 0.12 s plain, 0.39 s traced).
Neither is this project's code and coverage never reports them; Python 3.12's sys.monitoring core
skips unmeasured code by itself, 3.11 has nothing like it, so a client's API call (botocore's
request and, under mock_aws, moto's answer) and the emulator's WSGI app turn the trace function
off for their thread and back on when they return. The project's own functions that moto
calls back (infra/local/emulator.py's fixes, patched into moto's classes, and the functions of ours
handed to an entry point) turn it on again for their call, so every line of ours is measured as
before.

Without a trace function (a run without --cov) every wrapper passes straight through."""

from __future__ import annotations

import functools
import sys
import threading
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
# Where the project's code lives (a checkout's .venv/ is inside the repository too).
OURS = tuple(str(REPO_ROOT / folder) + "/" for folder in ("functions", "layers", "infra", "tests"))
_MARK = "switchboard_untraced"
_suspended = threading.local()  # .tracer: coverage's trace function while this thread runs moto


def _untraced(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        tracer = sys.gettrace()
        if tracer is None:  # not measured, or already inside moto
            return method(*args, **kwargs)
        # A function of ours passed in (the emulator's start_response) is called back from inside.
        args = tuple(_traced_again(arg) if _ours(arg) else arg for arg in args)
        sys.settrace(None)
        _suspended.tracer = tracer
        try:
            return method(*args, **kwargs)
        finally:
            _suspended.tracer = None
            sys.settrace(tracer)  # coverage's tracers support settrace(gettrace())

    setattr(call, _MARK, True)
    return call


def _traced_again(function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        tracer = getattr(_suspended, "tracer", None)
        if tracer is None or sys.gettrace() is not None:
            return function(*args, **kwargs)
        _suspended.tracer = None
        sys.settrace(tracer)
        try:
            return function(*args, **kwargs)
        finally:
            sys.settrace(None)
            _suspended.tracer = tracer

    setattr(call, _MARK, True)
    return call


def _ours(value: Any) -> bool:
    if not isinstance(value, types.FunctionType):
        return False
    return value.__code__.co_filename.startswith(OURS) and not getattr(value, _MARK, False)


def install() -> None:
    """Wrap the two entry points (a botocore client's API call, moto's WSGI app) and every
    function of ours patched into moto's modules and classes. Call it after
    infra.local.emulator.patch_moto(); calling it again wraps only what is new."""
    from botocore.client import BaseClient
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    for cls, name in ((BaseClient, "_make_api_call"), (DomainDispatcherApplication, "__call__")):
        if not getattr(getattr(cls, name), _MARK, False):
            setattr(cls, name, _untraced(getattr(cls, name)))
    for name, module in list(sys.modules.items()):
        if not (name == "moto" or name.startswith("moto.")) or module is None:
            continue
        for attribute, value in list(vars(module).items()):
            if _ours(value):
                setattr(module, attribute, _traced_again(value))
            elif isinstance(value, type) and value.__module__ == name:
                for key, member in list(vars(value).items()):
                    if isinstance(member, staticmethod) and _ours(member.__func__):
                        setattr(value, key, staticmethod(_traced_again(member.__func__)))
                    elif _ours(member):
                        setattr(value, key, _traced_again(member))
