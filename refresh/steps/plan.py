"""What a run will fetch and recalculate, decided from its kind, mode and the stored data."""
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
from django.conf import settings
from django.utils import timezone

from market_data import selectors as market_selectors
from market_data.services import ensure_assets
from portfolios import selectors as portfolio_selectors
from refresh.models import RefreshKind, RefreshMode, RefreshRun


@dataclass
class HistoryRequest:
    """Symbols whose daily bars are fetched over one shared date range."""

    symbols: list[str]
    start: date
    end: date
    adjust: str = "splits"


@dataclass
class RefreshPlan:
    quote_symbols: list[str] = field(default_factory=list)
    history: list[HistoryRequest] = field(default_factory=list)
    fresh_symbols: list[str] = field(default_factory=list)
    portfolio_ids: list[int] | None = None  # None: every portfolio
    metrics: bool = False
    signals: bool = False
    strategies: bool = False
    comparisons: bool = False
    only_changed: bool = False  # recalculate only portfolios whose prices changed
    apply_rebalancing: bool = False

    @property
    def fetches(self) -> bool:
        return bool(self.quote_symbols or self.history)

    @property
    def calculates(self) -> bool:
        return self.metrics or self.signals or self.strategies or self.comparisons


def last_completed_session(today: date) -> date:
    """The latest weekday before today: the newest daily bar that can exist."""
    return np.busday_offset(np.datetime64(today, "D"), -1, roll="forward").astype(date)


def history_window_start(today: date) -> date:
    return today - timedelta(days=round(365.25 * settings.REFRESH_HISTORY_YEARS))


def _history_requests(symbols: list[str], mode: str, adjust_for: dict[str, str]) -> list[HistoryRequest]:
    """Full mode takes the whole window; other modes only the days after each symbol's last bar."""
    today = timezone.now().date()
    end = last_completed_session(today)
    window_start = history_window_start(today)
    last = {} if mode == RefreshMode.FULL else market_selectors.last_bar_dates(symbols=symbols)
    groups: dict[tuple[date, str], list[str]] = {}
    for symbol in symbols:
        start = last[symbol] + timedelta(days=1) if symbol in last else window_start
        if start <= end:
            groups.setdefault((start, adjust_for.get(symbol, "splits")), []).append(symbol)
    return [HistoryRequest(symbols=sorted(s), start=start, end=end, adjust=adjust)
            for (start, adjust), s in sorted(groups.items())]


def _stale_only(symbols: list[str]) -> tuple[list[str], list[str]]:
    """Split symbols into (stale, fresh) by the age of their stored quote."""
    cutoff = timezone.now() - timedelta(seconds=settings.REFRESH_QUOTE_FRESHNESS_SECONDS)
    fetched = market_selectors.quote_fetched_at(symbols=symbols)
    fresh = [s for s in symbols if s in fetched and fetched[s] >= cutoff]
    fresh_set = set(fresh)
    return [s for s in symbols if s not in fresh_set], fresh


def _universe(run: RefreshRun) -> list[str]:
    benchmark = settings.BENCHMARK_SYMBOL
    if run.kind == RefreshKind.BENCHMARK:
        ensure_assets(symbols=[benchmark])
        return [benchmark]
    if run.kind == RefreshKind.PORTFOLIO:
        portfolio_ids = portfolio_selectors.portfolio_ids_for_user(user_id=run.target_user_id)
        return portfolio_selectors.asset_symbols(
            asset_ids=portfolio_selectors.held_asset_ids(portfolio_ids=portfolio_ids))
    if run.kind == RefreshKind.PRICES and run.params.get("symbols"):
        return list(run.params["symbols"])
    if run.kind == RefreshKind.ALL:
        ensure_assets(symbols=[benchmark])
    return market_selectors.active_symbols() if run.kind != RefreshKind.STRATEGY else []


def build_plan(run: RefreshRun) -> RefreshPlan:
    """Decide the run's work. Smart mode drops symbols whose quote is still fresh."""
    symbols = _universe(run)
    plan = RefreshPlan(quote_symbols=symbols, apply_rebalancing=run.params.get("apply_rebalancing", False))
    if run.mode == RefreshMode.SMART:
        plan.quote_symbols, plan.fresh_symbols = _stale_only(symbols)
    adjust_for = {settings.BENCHMARK_SYMBOL: "all"}
    plan.history = _history_requests(symbols, run.mode, adjust_for)
    if run.kind == RefreshKind.PORTFOLIO:
        plan.portfolio_ids = portfolio_selectors.portfolio_ids_for_user(user_id=run.target_user_id)
        plan.metrics = plan.strategies = plan.comparisons = True
    elif run.kind == RefreshKind.STRATEGY:
        plan.signals = plan.strategies = True
    elif run.kind == RefreshKind.BENCHMARK:
        plan.comparisons = True
    elif run.kind == RefreshKind.ALL:
        plan.metrics = plan.signals = plan.strategies = plan.comparisons = True
        plan.only_changed = run.mode != RefreshMode.FULL
    return plan
