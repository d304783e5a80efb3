"""One HTTP POST to a partner endpoint, to the address the SSRF guard checked.

urllib3 (which boto3 already brings, so no layer grows) rather than urllib: its connection
pools take the address to connect to and, separately, the host name for TLS (SNI and
certificate check) and the Host header. So the send never resolves the host again (a
DNS-rebinding host could answer differently the second time) and still verifies the
partner's certificate for its own name. No redirects (a 3xx is an answer like any other
non-2xx), no urllib3 retries (the delivery schedule retries), a deadline for the whole
exchange, and at most 64 KiB of the answer read.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit

from switchboard_core.endpoints import CheckedEndpoint

MAX_RESPONSE_BYTES = 64 * 1024
EXCERPT_CHARS = 512
USER_AGENT = "Switchboard-Webhooks/1.0"
CONNECT_FAILED = "could not connect"  # refused, unreachable: the next checked address may answer


@dataclass(frozen=True)
class SendResult:
    """What one attempt got: an HTTP status (any), or the error that kept an answer from coming."""

    status_code: int | None
    latency_ms: int
    error: str | None = None
    excerpt: str = ""
    headers: dict[str, str] = field(default_factory=dict)  # lower-cased names

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class Sender(Protocol):
    def __call__(
        self, endpoint: CheckedEndpoint, body: bytes, headers: dict[str, str], timeout: float
    ) -> SendResult: ...


def host_header(endpoint: CheckedEndpoint) -> str:
    host = f"[{endpoint.host}]" if ":" in endpoint.host else endpoint.host
    default = 443 if endpoint.scheme == "https" else 80
    return host if endpoint.port == default else f"{host}:{endpoint.port}"


def request_target(url: str) -> str:
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def post(
    endpoint: CheckedEndpoint, body: bytes, headers: dict[str, str], timeout: float, *, ca_certs: str | None = None
) -> SendResult:
    """POST `body` to `endpoint`, connecting to its checked addresses only (the next one when
    one cannot be connected to), within `timeout` seconds in all. TLS trusts the system's
    certificate authorities (`ca_certs`: a bundle instead, for tests)."""
    started = time.monotonic()
    error = "no address to connect to"
    for address in endpoint.addresses:
        result = _post_to(address, endpoint, body, headers, started, timeout, ca_certs)
        if result.error is None or not result.error.startswith(CONNECT_FAILED):
            return result
        error = result.error
    return SendResult(status_code=None, latency_ms=_elapsed_ms(started), error=error)


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _post_to(
    address: str,
    endpoint: CheckedEndpoint,
    body: bytes,
    headers: dict[str, str],
    started: float,
    timeout: float,
    ca_certs: str | None,
) -> SendResult:
    import urllib3
    from urllib3.exceptions import (
        ConnectTimeoutError,
        HTTPError,
        NewConnectionError,
        ProtocolError,
        ReadTimeoutError,
        SSLError,
    )

    deadline = started + timeout
    remaining = max(0.001, deadline - time.monotonic())
    limits = urllib3.Timeout(connect=remaining, read=remaining)
    pool: urllib3.HTTPConnectionPool
    if endpoint.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            address.split("%", 1)[0],
            endpoint.port,
            timeout=limits,
            retries=False,
            maxsize=1,
            cert_reqs="CERT_REQUIRED",
            ca_certs=ca_certs,
            server_hostname=endpoint.host,
            assert_hostname=endpoint.host,
        )
    else:  # plain http: the local runtime's loopback endpoints only (check_endpoint refuses it elsewhere)
        pool = urllib3.HTTPConnectionPool(
            address.split("%", 1)[0], endpoint.port, timeout=limits, retries=False, maxsize=1
        )
    try:
        response = pool.urlopen(
            "POST",
            request_target(endpoint.url),
            body=body,
            headers={**headers, "Host": host_header(endpoint)},
            redirect=False,
            retries=False,
            assert_same_host=False,
            preload_content=False,
            timeout=limits,
        )
        received = bytearray()
        try:
            for chunk in response.stream(8192, decode_content=False):
                received.extend(chunk)
                if len(received) >= MAX_RESPONSE_BYTES or time.monotonic() >= deadline:
                    break  # the status is in: the rest of a long or slow answer does not matter
        except (ReadTimeoutError, ProtocolError):
            pass  # the answer's body broke off after its status came: keep the status
        finally:
            response.release_conn()
        excerpt = bytes(received[:MAX_RESPONSE_BYTES]).decode("utf-8", "replace")[:EXCERPT_CHARS]
        return SendResult(
            status_code=response.status,
            latency_ms=_elapsed_ms(started),
            excerpt=excerpt,
            headers={k.lower(): v for k, v in response.headers.items()},
        )
    except NewConnectionError as exc:  # before ConnectTimeoutError: urllib3 makes it a subclass
        return SendResult(None, _elapsed_ms(started), error=f"{CONNECT_FAILED}: {_reason(exc)}")
    except (ConnectTimeoutError, ReadTimeoutError):
        return SendResult(None, _elapsed_ms(started), error=f"timeout: no answer within {timeout:g} s")
    except SSLError as exc:
        return SendResult(None, _elapsed_ms(started), error=f"TLS error: {_reason(exc)}")
    except (ProtocolError, HTTPError, OSError) as exc:
        return SendResult(None, _elapsed_ms(started), error=f"connection error: {_reason(exc)}")
    finally:
        pool.close()


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]
