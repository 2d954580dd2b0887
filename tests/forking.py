"""Run a piece of work in a forked child, as gunicorn runs its workers after the master has loaded the app."""

from __future__ import annotations

import os
import select
import signal
from collections.abc import Callable


def in_forked_child(work: Callable[[], str], timeout: float = 60.0) -> str:
    """What `work` returns in a forked child (or "error: ..." if it raised); fails the test if the child hangs."""
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            os.write(write_end, work().encode())
        except BaseException as error:
            os.write(write_end, f"error: {error!r}".encode())
        finally:
            os._exit(0)
    os.close(write_end)
    received = b""
    try:
        while True:
            ready, _, _ = select.select([read_end], [], [], timeout)
            assert ready, f"the forked child gave no answer in {timeout:.0f} s: it hung"
            chunk = os.read(read_end, 1 << 16)
            if not chunk:
                return received.decode()
            received += chunk
    finally:
        os.close(read_end)
        if os.waitpid(child, os.WNOHANG) == (0, 0):  # still running
            os.kill(child, signal.SIGKILL)
            os.waitpid(child, 0)
