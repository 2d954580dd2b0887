"""What the HTTP benchmarks share: waiting for the gunicorn they started to answer."""
from __future__ import annotations

import http.client
import time


def wait_ready(port: int, *, seconds: float = 60.0) -> None:
    """Return once GET /healthz answers 200 on 127.0.0.1:port; SystemExit after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.5)
    raise SystemExit("gunicorn did not come up")
