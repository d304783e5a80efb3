"""Sending an outbound request over HTTPS with the standard library.

urllib rather than a third-party client: one POST per reply needs no session pool, and
the ingest path's cold start stays free of it (docs/decisions.md). Redirects are not
followed (a send API never redirects; following one could leak the credentials to
another host), the timeout is short, and the answer is capped in size.
"""

from __future__ import annotations

import http.client
import urllib.error
import urllib.request
from typing import Any

from switchboard_core.outbound.base import OutboundRequest, OutcomeUnknown, ProviderResponse, TransientFailure

TIMEOUT_SECONDS = 10
MAX_RESPONSE_BYTES = 256 * 1024


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def http_transport(request: OutboundRequest) -> ProviderResponse:
    opener = urllib.request.build_opener(_NoRedirect)
    prepared = urllib.request.Request(  # noqa: S310 - the senders build provider API URLs, never the caller
        request.url, data=request.body, headers=dict(request.headers), method=request.method
    )
    try:
        with opener.open(prepared, timeout=TIMEOUT_SECONDS) as response:
            return ProviderResponse(
                status=response.status,
                body=response.read(MAX_RESPONSE_BYTES),
                headers={k.lower(): v for k, v in response.headers.items()},
            )
    except urllib.error.HTTPError as error:  # 4xx/5xx still carry the provider's JSON error
        return ProviderResponse(
            status=error.code,
            body=error.read(MAX_RESPONSE_BYTES),
            headers={k.lower(): v for k, v in (error.headers or {}).items()},
        )
    except urllib.error.URLError as error:
        # urllib wraps what fails while connecting and writing the request: the provider never
        # had a whole request, so sending again is safe.
        raise TransientFailure("network_error", f"{type(error).__name__}: {error.reason}") from None
    except (TimeoutError, OSError, http.client.HTTPException) as error:
        # The request went out and the answer did not come back (a read timeout, a reset, a
        # garbled status line): the provider may have sent the message.
        raise OutcomeUnknown(f"{type(error).__name__}: {error}") from None
