"""Minimum observations, degenerate denominators, and the reason each null figure gives.

A figure is null (NaN here, NULL when stored) rather than a number nobody should sign: too
few observations for it, or a denominator that is zero up to floating-point noise. Each null
carries one of the reasons below, which the API returns beside it.
"""

from dataclasses import dataclass, field

import numpy as np

MIN_RETURNS = 20
# A daily standard deviation (or downside deviation) below this is floating-point noise of a
# constant series, not risk: it counts as zero, and nothing is divided by it.
FLAT = 1e-10

NO_VALUE = "no priced holdings"
NO_HISTORY = "history does not reach back to the period's start"
NO_RETURNS = "no daily return in the window"
TOO_FEW_RETURNS = f"fewer than {MIN_RETURNS} daily returns in the window"
LESS_THAN_A_YEAR = "less than a year of history"
ZERO_VOLATILITY = "volatility is zero"
ZERO_DOWNSIDE = "no daily return below the risk-free rate"
NO_DRAWDOWN = "no drawdown in the window"
NO_BENCHMARK_PRICE = "no benchmark price at the period's start"
TOO_FEW_SHARED = f"fewer than {MIN_RETURNS} daily returns shared with the benchmark"
FLAT_BENCHMARK = "the benchmark's returns do not vary"
FLAT_PORTFOLIO = "the portfolio's returns do not vary"
ZERO_TRACKING_ERROR = "tracking error is zero"
NOT_CALCULABLE = "could not be calculated"


def reasons(value: np.ndarray, rules: list[tuple[np.ndarray, str]]) -> np.ndarray:
    """Per row, the first rule's reason whose condition holds where `value` is NaN; "" where it is not.

    A NaN no rule explains (an overflow, say) still gets NOT_CALCULABLE: no null goes without a reason.
    """
    missing = np.isnan(value)
    rules = rules or [(np.zeros(value.shape, bool), NOT_CALCULABLE)]
    chosen = np.select([condition for condition, _ in rules], [text for _, text in rules], default=NOT_CALCULABLE)
    return np.where(missing, chosen, "").astype(object)


def null_where(value: np.ndarray, condition: np.ndarray) -> np.ndarray:
    """value, with NaN (and infinities) where condition holds."""
    return np.where(condition | ~np.isfinite(value), np.nan, value)


@dataclass
class FigureSet:
    """Figures for each row: `columns` (name -> array: floats, dates or counts) and, for the
    float figures, `reasons` (name -> str array, "" where the figure is there)."""

    columns: dict[str, np.ndarray] = field(default_factory=dict)
    reasons: dict[str, np.ndarray] = field(default_factory=dict)

    def add(self, name: str, value: np.ndarray, rules: list[tuple[np.ndarray, str]] | None = None) -> np.ndarray:
        """Stores a figure (and, with rules, why it is null where it is); returns it."""
        self.columns[name] = value
        if rules is not None:
            self.reasons[name] = reasons(value, rules)
        return value

    def null_reasons(self) -> list[dict[str, str]]:
        """Per row, figure name -> reason for each null figure."""
        rows = len(next(iter(self.columns.values()))) if self.columns else 0
        out: list[dict[str, str]] = [{} for _ in range(rows)]
        for name, why in self.reasons.items():
            for row in np.flatnonzero(why != ""):
                out[row][name] = why[row]
        return out

    @classmethod
    def stacked(cls, parts: list[tuple[np.ndarray, "FigureSet"]], rows: int) -> "FigureSet":
        """One FigureSet of `rows` rows from parts that each fill the given rows."""
        if len(parts) == 1 and len(parts[0][0]) == rows:
            return parts[0][1]
        whole = cls()
        for indexes, part in parts:
            for name, column in part.columns.items():
                if name not in whole.columns:
                    whole.columns[name] = np.empty(rows, dtype=column.dtype)
                whole.columns[name] = _widened(whole.columns[name], column)
                whole.columns[name][indexes] = column
            for name, why in part.reasons.items():
                whole.reasons.setdefault(name, np.full(rows, "", dtype=object))[indexes] = why
        return whole


def _widened(column: np.ndarray, incoming: np.ndarray) -> np.ndarray:
    """column as a writable array that can also hold incoming's values."""
    return column.astype(np.result_type(column, incoming), copy=True)
