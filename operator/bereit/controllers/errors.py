"""API failures as kopf understands them: retry later, or give up on this change."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import kopf

from bereit.controllers.api_client import ApiError, TransientError

RETRY_DELAY_SECONDS = 5


@contextmanager
def retry_later() -> Iterator[None]:
    """A busy or unreachable API server, or a conflict, is retried by kopf after a delay."""
    try:
        yield
    except TransientError as exc:
        raise kopf.TemporaryError(str(exc), delay=RETRY_DELAY_SECONDS) from exc
    except ApiError as exc:
        # Refused by the API server (403, 422, …): the same request would fail again, but
        # another change can fix it; kopf retries with its slower backoff meanwhile.
        raise kopf.TemporaryError(str(exc), delay=RETRY_DELAY_SECONDS * 6) from exc
