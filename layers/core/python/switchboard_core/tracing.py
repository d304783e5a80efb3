"""Powertools' Tracer, built on a function's first traced invocation instead of at import.

Powertools' `Tracer()` imports and configures the X-Ray SDK in its constructor, even when
tracing is disabled, so building it at import cost every handler about 200 ms of cold start
(docs/decisions.md, "Tracing without paying for it at import"). `LazyTracer` keeps the same
traces on AWS (Tracing.ACTIVE): on the first invocation it builds Powertools' Tracer with the
options given here (patching botocore or everything, as before), and from then on each
invocation runs inside Powertools' own `capture_lambda_handler` (the `## handler` subsegment,
the ColdStart and Service annotations, the response or error as metadata). Where tracing is
off (POWERTOOLS_TRACE_DISABLED, or outside Lambda: the local runtime, tests) the X-Ray SDK is
never imported and the handler is called as it is.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

if TYPE_CHECKING:
    from aws_lambda_powertools import Tracer

Handler = TypeVar("Handler", bound=Callable[..., Any])


class LazyTracer:
    def __init__(self, *, patch_modules: Sequence[str] | None = None) -> None:
        # None patches every library the X-Ray SDK supports, as Powertools' Tracer() does.
        self._patch_modules = patch_modules
        self._building = threading.Lock()
        self._tracer: Tracer | None = None
        self._disabled: bool | None = None

    @property
    def enabled(self) -> bool:
        if self._disabled is None:
            # Powertools' own rule (pinned version): disabled by POWERTOOLS_TRACE_DISABLED, outside
            # Lambda, and under SAM local or Chalice. The tracer module imports the SDK lazily.
            from aws_lambda_powertools.tracing.tracer import Tracer

            self._disabled = bool(Tracer._is_tracer_disabled())
        return not self._disabled

    def tracer(self) -> Tracer:
        """Powertools' Tracer, built (X-Ray SDK imported, modules patched) on the first call."""
        with self._building:
            if self._tracer is None:
                from aws_lambda_powertools import Tracer

                self._tracer = Tracer(patch_modules=self._patch_modules)
            return self._tracer

    def capture_lambda_handler(self, handler: Handler) -> Handler:
        traced: Callable[..., Any] | None = None

        @functools.wraps(handler)
        def invoke(event: Any, context: Any) -> Any:
            nonlocal traced
            if not self.enabled:
                return handler(event, context)
            if traced is None:
                traced = self.tracer().capture_lambda_handler(handler)
            return traced(event, context)

        return cast(Handler, invoke)
