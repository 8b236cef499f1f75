"""When to try a failed call again: one pure decision shared by the sync and async paths."""

from __future__ import annotations

from selfhosted_core import RateLimitError, SelfHostedError

_FIRST_DELAY = 0.5
_MAX_DELAY = 8.0
_MAX_RETRY_AFTER = 60.0


def retry_delay(error: SelfHostedError, *, attempt: int, max_retries: int) -> float | None:
    """Seconds to wait before attempt `attempt + 1`, or None to give up and raise `error`.

    A call is tried again only while the server has produced nothing (`error.partial` is
    None): a stream that broke halfway raises with what it delivered. Only errors the core marks
    retryable (connection failures, timeouts, 429, 5xx) are tried again; a rate limit's
    `Retry-After` is honoured up to a minute, otherwise the wait doubles from half a second,
    capped at eight. Each retry is routed afresh, so with replicas it may land on another
    endpoint.
    """
    if not error.retryable or error.partial is not None or attempt >= max_retries:
        return None
    if isinstance(error, RateLimitError) and error.retry_after is not None:
        wait: float = error.retry_after
        return min(wait, _MAX_RETRY_AFTER)
    return min(_FIRST_DELAY * 2.0**attempt, _MAX_DELAY)
