"""The lease heartbeat: renews until stopped, and says when the lease is lost."""

import threading

from core.heartbeat import Heartbeat


def _wait(event: threading.Event) -> bool:
    return event.wait(timeout=5)


def test_renews_until_stopped():
    beats = threading.Semaphore(0)

    def renew():
        beats.release()
        return True

    heartbeat = Heartbeat(renew, seconds=0.06, name="test").start()
    assert all(beats.acquire(timeout=5) for _ in range(3))
    heartbeat.stop()
    assert not heartbeat.lost.is_set()


def test_a_lease_taken_elsewhere_is_lost_at_once():
    heartbeat = Heartbeat(lambda: False, seconds=0.06, name="test").start()
    assert _wait(heartbeat.lost)
    heartbeat.stop()


def test_a_passing_failure_is_survived_but_a_lease_of_failures_is_lost():
    calls = []

    def renew():
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("database restarting")
        return True

    survives = Heartbeat(renew, seconds=0.3, name="test").start()
    assert not survives.lost.wait(timeout=0.5)
    assert len(calls) >= 2
    survives.stop()

    def broken():
        raise ConnectionError("database gone")

    gives_up = Heartbeat(broken, seconds=0.06, name="test").start()
    assert _wait(gives_up.lost)
    gives_up.stop()
