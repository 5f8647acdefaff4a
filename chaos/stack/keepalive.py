"""How long the harness's HTTP clients keep an idle connection open.

The service and the emulators run under uvicorn, which closes a connection idle for 5 s. A client
that keeps one as long sends, now and then, a request on a connection the server is closing at that
instant, and gets no answer. The judge would count that against the service (a POST with no answer
counts with the 500s, a failed image download as a mismatch), so the harness drops idle connections
well before the servers do.
"""

from __future__ import annotations

import httpx

IDLE_CONNECTION_S = 1.0


def pool_limits(**kwargs: int) -> httpx.Limits:
    """httpx pool limits that drop idle connections after IDLE_CONNECTION_S."""
    return httpx.Limits(keepalive_expiry=IDLE_CONNECTION_S, **kwargs)
