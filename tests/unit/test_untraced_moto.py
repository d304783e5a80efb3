"""tests/untraced_moto.py: under a trace function (coverage's, in `make test`), botocore and moto
run without it, and the project's functions they call back are traced again."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from tests import untraced_moto


@contextmanager
def recording_tracer() -> Iterator[list[str]]:
    """A trace function recording the name of every function it sees called (in this thread),
    with whatever was tracing before (coverage's, under --cov) put back afterwards."""
    called: list[str] = []

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        if event == "call":
            called.append(frame.f_code.co_name)
        return tracer

    before = sys.gettrace()
    sys.settrace(tracer)
    try:
        yield called
    finally:
        sys.settrace(before)


def library_work(callback: Callable[[], int]) -> int:
    return library_helper() + callback()


def library_helper() -> int:
    return 1


def project_callback() -> int:
    return project_helper()


def project_helper() -> int:
    return 2


def test_what_runs_untraced_is_invisible_and_the_callbacks_of_ours_are_traced_again() -> None:
    untraced = untraced_moto._untraced(library_work)
    callback = untraced_moto._traced_again(project_callback)
    with recording_tracer() as called:
        assert untraced(callback) == 3
        tracer_after = sys.gettrace()
        library_helper()
    assert "library_helper" in called  # traced again once the untraced call returned
    assert called.count("library_helper") == 1 and "library_work" not in called
    assert "project_callback" in called and "project_helper" in called
    assert tracer_after is not None and getattr(untraced_moto._suspended, "tracer", None) is None


def test_a_function_of_ours_handed_to_the_entry_point_is_traced_when_called_back() -> None:
    untraced = untraced_moto._untraced(library_work)
    with recording_tracer() as called:
        assert untraced(project_callback) == 3
    assert "project_callback" in called and "library_work" not in called


def test_an_exception_inside_puts_the_trace_function_back() -> None:
    def failing() -> None:
        raise ValueError("moto refused")

    untraced = untraced_moto._untraced(failing)
    with recording_tracer():
        before = sys.gettrace()
        try:
            untraced()
        except ValueError:
            pass
        assert sys.gettrace() is before


def test_without_a_trace_function_every_wrapper_passes_straight_through() -> None:
    before = sys.gettrace()
    sys.settrace(None)
    try:
        assert untraced_moto._untraced(library_work)(untraced_moto._traced_again(project_callback)) == 3
        assert sys.gettrace() is None
    finally:
        sys.settrace(before)


def test_another_threads_tracing_is_left_alone() -> None:
    seen: list[bool] = []
    release = threading.Event()

    def other() -> None:
        release.wait(5)
        seen.append(sys.gettrace() is not None)

    with recording_tracer():
        hook = threading.gettrace()
        threading.settrace(sys.gettrace())  # as coverage does for new threads
        try:
            thread = threading.Thread(target=other)
            thread.start()
        finally:
            threading.settrace(hook)
        untraced_moto._untraced(lambda: release.set())()
        thread.join(5)
    assert seen == [True]


def test_install_wraps_the_entry_points_and_our_fixes_patched_into_moto() -> None:
    from botocore.client import BaseClient
    from moto.dynamodb.models import DynamoDBBackend
    from moto.events.utils import EventTemplateParser
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    from infra.local.emulator import patch_moto

    patch_moto()
    untraced_moto.install()
    untraced_moto.install()  # again: nothing wrapped twice
    assert getattr(BaseClient._make_api_call, untraced_moto._MARK)
    assert getattr(DomainDispatcherApplication.__call__, untraced_moto._MARK)
    put_item: Any = DynamoDBBackend.put_item
    assert getattr(put_item, untraced_moto._MARK) and put_item.__wrapped__.__module__ == "infra.local.emulator"
    assert not hasattr(put_item.__wrapped__, "__wrapped__")
    parse = EventTemplateParser.__dict__["parse"].__func__
    assert getattr(parse, untraced_moto._MARK) and parse.__wrapped__.__module__ == "infra.local.emulator"
