"""A row of the results table: how its figures and verdicts are written, and the target the main
and the scale measurements share."""

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
