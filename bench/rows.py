"""A row of the results table: how its figures and verdicts are written, and the target the main
and the scale measurements share."""

from collections.abc import Callable
from dataclasses import dataclass

DATABASES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
# A full refresh's peak memory, at the main size and at the largest scale size alike.
PEAK_MEMORY_LIMIT_MB = 1024


@dataclass
class Row:
    """One measurement per database, its target and, where there is one, whether it was met."""

    label: str
    target: str
    values: dict  # database -> shown value
    met: dict  # database -> True, False or None (no target, or not measured)


def fmt_s(seconds) -> str:
    return "n/a" if seconds is None else f"{seconds:.2f} s"


def fmt_ms(ms) -> str:
    return "n/a" if ms is None else f"{ms:.1f} ms"


def fmt_x(ratio) -> str:
    return "n/a" if ratio is None else f"{ratio:.1f}×"


def verdict(met) -> str:
    return {True: "met", False: "MISSED", None: ""}[met]


def fmt_ratios(median: float, ratios: list[float]) -> str:
    """A median ratio with every run's beside it when there were several: "1.8× (runs: 1.7×, 1.8×, 2.0×)"."""
    return fmt_x(median) + (f" (runs: {', '.join(fmt_x(x) for x in ratios)})" if len(ratios) > 1 else "")


def median_of(runs: list[dict], key: Callable[[dict], float]) -> dict:
    """The run whose `key` is the median of the runs' (the upper one of an even count)."""
    return sorted(runs, key=key)[len(runs) // 2]
