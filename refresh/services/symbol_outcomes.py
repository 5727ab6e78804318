"""Each symbol's outcome in a run: gathered in memory as the run learns it, written in one insert.

A full refresh deals with thousands of symbols, so nothing here writes per symbol: the steps
tell the run's `SymbolOutcomes` what happened (skipped as fresh, failed, held back, stored),
and the run's end writes them all at once, whether it finished or stopped early.
"""

from collections.abc import Iterable
from typing import TYPE_CHECKING

from core.bulk_writes import write_rows
from refresh.models import OUTCOME_REASON_LENGTH, RefreshRun, RunSymbol, SymbolOutcome

if TYPE_CHECKING:  # the anomaly screening (numpy) loads with a run, not with this module
    from market_data.anomalies import Anomaly

# A symbol the run learns several things about keeps the strongest (the last of equals, as
# failed_symbols does): a failure or a held-back price says more than a stored one, and
# anything fetched says more than a skip.
_STRENGTH = {outcome: rank for rank, outcome in enumerate(SymbolOutcome)}


class SymbolOutcomes:
    """What one run did with each symbol so far, each symbol keeping its strongest outcome."""

    def __init__(self) -> None:
        self._outcomes: dict[str, tuple[SymbolOutcome, str]] = {}

    def _note(self, symbol: str, outcome: SymbolOutcome, reason: str = "") -> None:
        known = self._outcomes.get(symbol)
        if known is None or _STRENGTH[outcome] >= _STRENGTH[known[0]]:
            self._outcomes[symbol] = (outcome, reason[:OUTCOME_REASON_LENGTH])

    def skip(self, symbols: Iterable[str]) -> None:
        """Symbols smart mode found fresh enough not to fetch."""
        for symbol in symbols:
            self._note(symbol, SymbolOutcome.SKIPPED)

    def fail(self, failures: dict[str, str]) -> None:
        """Symbols that could not be fetched, each with the reason."""
        for symbol, reason in failures.items():
            self._note(symbol, SymbolOutcome.FAILED, reason)

    def hold_back(self, anomalies: Iterable["Anomaly"]) -> None:
        """Symbols with a suspicious price that was not stored; the first anomaly is the reason."""
        held: dict[str, list[str]] = {}
        for anomaly in anomalies:
            if anomaly.quarantined:
                held.setdefault(anomaly.symbol, []).append(anomaly.message)
        for symbol, messages in held.items():
            more = f" (and {len(messages) - 1} more)" if len(messages) > 1 else ""
            self._note(symbol, SymbolOutcome.QUARANTINED, messages[0] + more)

    def store(self, *, symbols: Iterable[str], changed: Iterable[str]) -> None:
        """Symbols whose fetched quote or bars were stored: updated when something new came, else unchanged."""
        new = set(changed)
        for symbol in symbols:
            self._note(symbol, SymbolOutcome.UPDATED if symbol in new else SymbolOutcome.UNCHANGED)

    def as_columns(self) -> dict[str, list[str]]:
        """Symbol, outcome and reason columns, by symbol, for one bulk insert."""
        symbols = sorted(self._outcomes)
        return {
            "symbol": symbols,
            "outcome": [self._outcomes[symbol][0].value for symbol in symbols],
            "reason": [self._outcomes[symbol][1] for symbol in symbols],
        }


def record_symbol_outcomes(*, run: RefreshRun, outcomes: SymbolOutcomes) -> int:
    """Write the run's outcomes in one insert (per REFRESH_WRITE_BATCH rows); returns how many.

    Runs in the caller's transaction: the run's end writes them with its final status.
    """
    return write_rows(RunSymbol, columns=outcomes.as_columns(), constants={"run": run.pk})
