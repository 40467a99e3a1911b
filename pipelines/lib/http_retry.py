"""One retry policy for the outside HTTP services (TMDB, JustWatch): an httpx transport run by tenacity.

:class:`RetryTransport` wraps an ``httpx.HTTPTransport`` and sends a request again when

* it got no answer (:class:`httpx.TransportError`: refused or reset connections, timeouts), or
* the answer is 429 or a 5xx other than 501 (Not Implemented does not go away by asking again).

Every other answer, any other 4xx included, goes back to the client at once, which turns it into its
own typed error. Waits: the answer's ``Retry-After`` (delta-seconds or HTTP date) when it carries
one, else ``backoff_base * 2**n`` plus a uniform random ``0..jitter`` seconds (n = 0, 1, ...);
both are capped at ``max_wait``. After ``max_retries`` retries the transport gives up with
:class:`RetriesExhausted`: its message names the method and the URL *without its query string*
(TMDB's v3 ``api_key`` and people's search texts travel there), and it carries the last answer
(already read, so its body can be parsed) or chains the last transport error.

``sleep`` is injectable so that tests run instantly and can read the waits.
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import tenacity

logger = logging.getLogger(__name__)

NOT_RETRIED_5XX = frozenset({501})


def is_retryable_status(status: int) -> bool:
    """429 and every 5xx except 501."""
    return status == 429 or (500 <= status <= 599 and status not in NOT_RETRIED_5XX)


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date); None if absent
    or unparseable (the caller then backs off exponentially)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        logger.debug("ignoring unparseable Retry-After header %r", text)
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def redacted_url(url: httpx.URL) -> str:
    """``scheme://host[:port]/path``: the URL without user info, query string and fragment."""
    port = f":{url.port}" if url.port is not None else ""
    return f"{url.scheme}://{url.host}{port}{url.path}"


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry (see the module docstring)."""

    max_retries: int = 5
    backoff_base: float = 0.5
    max_wait: float = 60.0
    jitter: float = 0.5
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")
        if self.backoff_base < 0 or self.max_wait < 0 or self.jitter < 0:
            raise ValueError("backoff_base, max_wait and jitter must be >= 0")


class RetriesExhausted(RuntimeError):
    """The request still failed after every retry.

    ``response`` is the last answer (a retryable status; its body is read) or None when the last
    attempt got no answer (then ``__cause__`` is the transport error). ``url`` has no query string.
    """

    def __init__(
        self, method: str, url: str, attempts: int, response: httpx.Response | None, detail: str
    ) -> None:
        self.method = method
        self.url = url
        self.attempts = attempts
        self.response = response
        self.status = response.status_code if response is not None else None
        super().__init__(f"{method} {url} failed after {attempts} attempts: {detail}")


class RetryTransport(httpx.BaseTransport):
    """An httpx transport that retries per :class:`RetryPolicy`; ``name`` labels the log lines."""

    def __init__(
        self,
        policy: RetryPolicy,
        *,
        name: str = "HTTP",
        inner: httpx.BaseTransport | None = None,
        limits: httpx.Limits = httpx.Limits(),
    ) -> None:
        self.policy = policy
        self.name = name
        self._inner = inner if inner is not None else httpx.HTTPTransport(limits=limits)
        self._backoff = tenacity.wait_exponential_jitter(
            initial=policy.backoff_base, max=policy.max_wait, jitter=policy.jitter
        )

    def close(self) -> None:
        self._inner.close()

    def _attempt(self, request: httpx.Request) -> httpx.Response:
        response = self._inner.handle_request(request)
        if is_retryable_status(response.status_code):
            response.read()  # frees the connection; the body stays readable for the caller
            response.request = request
        return response

    def _wait(self, state: tenacity.RetryCallState) -> float:
        outcome = state.outcome
        if outcome is not None and not outcome.failed:
            header = retry_after_seconds(outcome.result().headers.get("Retry-After"))
            if header is not None:
                return min(self.policy.max_wait, header)
        return self._backoff(state)

    def _log_retry(self, state: tenacity.RetryCallState) -> None:
        request: httpx.Request = state.args[0]
        outcome = state.outcome
        if outcome is None:
            return
        if outcome.failed:
            exc = outcome.exception()
            what = type(exc).__name__
        else:
            what = f"HTTP {outcome.result().status_code}"
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        logger.warning(
            "%s %s %s: %s; retry %d of %d in %.1fs",
            self.name,
            request.method,
            redacted_url(request.url),
            what,
            state.attempt_number,
            self.policy.max_retries,
            wait,
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.policy.max_retries + 1),
            wait=self._wait,
            retry=(
                tenacity.retry_if_exception_type(httpx.TransportError)
                | tenacity.retry_if_result(lambda r: is_retryable_status(r.status_code))
            ),
            sleep=self.policy.sleep,
            before_sleep=self._log_retry,
        )
        try:
            return retrying(self._attempt, request)
        except tenacity.RetryError as gave_up:
            last = gave_up.last_attempt
            url = redacted_url(request.url)
            if last.failed:
                exc = last.exception()
                raise RetriesExhausted(
                    request.method, url, last.attempt_number, None, f"{type(exc).__name__}: {exc}"
                ) from exc
            response = last.result()
            raise RetriesExhausted(
                request.method, url, last.attempt_number, response, f"HTTP {response.status_code}"
            ) from None
