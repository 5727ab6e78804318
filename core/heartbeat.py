"""A lease kept alive from a background thread for as long as this process lives.

A worker's main thread may spend longer than a lease in one database write or calculation;
the heartbeat renews the lease meanwhile and stops with the process, so a killed worker's
leases lapse and whoever watches them takes over.
"""

import logging
import os
import socket
import threading
import time
from collections.abc import Callable

from django.db import connection, connections

logger = logging.getLogger(__name__)


def process_name() -> str:
    """This machine and process, as lease holders are recorded."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Heartbeat:
    """Calls ``renew()`` every third of ``seconds`` until stopped.

    ``lost`` is set when ``renew()`` answers False (the lease was taken or reaped), or when it
    has failed for a whole lease: the lease may have lapsed, so the holder must stop.
    """

    def __init__(self, renew: Callable[[], bool], *, seconds: float, name: str):
        self.lost = threading.Event()
        self._renew, self._seconds, self._name = renew, seconds, name
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=name, daemon=True)

    def start(self) -> "Heartbeat":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=10)

    def _beat(self) -> None:
        held_until = time.monotonic() + self._seconds
        try:
            while not self._stopped.wait(self._seconds / 3):
                try:
                    if not self._renew():
                        self.lost.set()
                        return
                    held_until = time.monotonic() + self._seconds
                except Exception:
                    logger.warning("could not renew the lease of %s", self._name, exc_info=True)
                    connection.close()  # reconnect on the next beat
                    if time.monotonic() >= held_until:
                        self.lost.set()
                        return
        finally:
            connections.close_all()
