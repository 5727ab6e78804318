"""What a run will fetch and recalculate, decided from its kind, mode and the stored data.

Symbols are fetched most important first: the benchmark, then by the value portfolios hold
in them, so that when provider credits run short it is the least held that wait. The
trading calendar says which daily bars can exist; smart mode also skips symbols whose quote
is still fresh, or was fetched when the market had already closed and has not opened since.
"""

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.conf import settings
from django.utils import timezone

from market_data import selectors as market_selectors
from market_data.calendar import last_closed_session, market_opened_between
from market_data.fetching import HistoryRequest
from market_data.services import ensure_assets
from portfolios.conventions import history_adjustment
from portfolios.selectors.assets import asset_symbols
from portfolios.selectors.holdings import held_asset_ids, portfolio_ids_for_user
from refresh.models import RefreshKind, RefreshMode, RefreshRun


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


def history_window_start(today: date) -> date:
    return today - timedelta(days=round(365.25 * settings.REFRESH_HISTORY_YEARS))


def date_ranges(*, start: date, end: date, days: int) -> list[tuple[date, date]]:
    """[start, end] cut into consecutive ranges of at most `days` days.

    With at most one bar a day, a range never holds more bars than the provider returns
    in one call (Twelve Data's outputsize is at most 5000).
    """
    ranges = []
    while start <= end:
        stop = min(start + timedelta(days=days - 1), end)
        ranges.append((start, stop))
        start = stop + timedelta(days=1)
    return ranges


def _history_requests(symbols: list[str], mode: str, adjust_for: dict[str, str], now: datetime) -> list[HistoryRequest]:
    """Full mode takes the whole window; other modes only the days after each symbol's last bar.

    Requests and the symbols inside them keep the priority order, so that what matters most
    is fetched first when credits run short.
    """
    end = last_closed_session(now=now)
    window_start = history_window_start(now.date())
    last = {} if mode == RefreshMode.FULL else market_selectors.last_bar_dates(symbols=symbols)
    groups: dict[tuple[date, str], list[str]] = {}
    for symbol in symbols:
        start = last[symbol] + timedelta(days=1) if symbol in last else window_start
        if start <= end:
            groups.setdefault((start, adjust_for.get(symbol, "splits")), []).append(symbol)
    return [
        HistoryRequest(symbols=group, start=range_start, end=range_end, adjust=adjust)
        for (start, adjust), group in groups.items()
        for range_start, range_end in date_ranges(start=start, end=end, days=settings.TWELVEDATA_MAX_OUTPUTSIZE)
    ]


def _is_fresh(fetched_at: datetime | None, now: datetime) -> bool:
    """A quote is fresh when young enough, or when the market has not traded since it was fetched."""
    if fetched_at is None:
        return False
    if now - fetched_at < timedelta(seconds=settings.REFRESH_QUOTE_FRESHNESS_SECONDS):
        return True
    return not market_opened_between(since=fetched_at, now=now)


def _stale_only(symbols: list[str], now: datetime) -> tuple[list[str], list[str]]:
    """Split symbols into (stale, fresh) by their stored quote and the trading calendar."""
    fetched = market_selectors.quote_fetched_at(symbols=symbols)
    fresh = {s for s in symbols if _is_fresh(fetched.get(s), now)}
    return [s for s in symbols if s not in fresh], [s for s in symbols if s in fresh]


def by_priority(symbols: list[str]) -> list[str]:
    """The benchmark first, then by value held across portfolios, largest first, then by name."""
    exposure = market_selectors.exposure_by_symbol(symbols=symbols)
    benchmark = settings.BENCHMARK_SYMBOL
    return sorted(dict.fromkeys(symbols), key=lambda s: (s != benchmark, -exposure.get(s, 0.0), s))


def _target_portfolio_ids(run: RefreshRun) -> list[int]:
    """The portfolios of the user a portfolio run targets; none when it names no user."""
    if run.target_user_id is None:
        return []
    return portfolio_ids_for_user(user_id=run.target_user_id)


def _universe(run: RefreshRun, *, create_assets: bool) -> list[str]:
    """The symbols the run is about. All and benchmark runs create the benchmark's asset if it is
    missing; without ``create_assets`` (a dry run) they plan as if they had, writing nothing."""
    benchmark = settings.BENCHMARK_SYMBOL
    missing: list[str] = []
    if run.kind in (RefreshKind.BENCHMARK, RefreshKind.ALL):
        if create_assets:
            ensure_assets(symbols=[benchmark])
        else:
            missing = market_selectors.missing_symbols(symbols=[benchmark])
    if run.kind == RefreshKind.BENCHMARK:
        return [benchmark]
    if run.kind == RefreshKind.PORTFOLIO:
        portfolio_ids = _target_portfolio_ids(run)
        return asset_symbols(asset_ids=held_asset_ids(portfolio_ids=portfolio_ids))
    if run.kind == RefreshKind.PRICES and run.params.get("symbols"):
        return list(run.params["symbols"])
    return [*market_selectors.active_symbols(), *missing] if run.kind != RefreshKind.STRATEGY else []


def build_plan(run: RefreshRun, *, create_assets: bool = True) -> RefreshPlan:
    """Decide the run's work. Smart mode drops symbols whose quote is still fresh.

    ``run`` may be unsaved (a dry run plans the run a request would record); with
    ``create_assets=False`` planning writes nothing.
    """
    now = timezone.now()
    symbols = by_priority(_universe(run, create_assets=create_assets))
    plan = RefreshPlan(quote_symbols=symbols, apply_rebalancing=run.params.get("apply_rebalancing", False))
    if run.mode == RefreshMode.SMART:
        plan.quote_symbols, plan.fresh_symbols = _stale_only(symbols, now)
    # Every history, the benchmark's included, has one adjustment: comparisons are like for like.
    adjust_for = dict.fromkeys(symbols, history_adjustment())
    plan.history = _history_requests(symbols, run.mode, adjust_for, now)
    if run.kind == RefreshKind.PORTFOLIO:
        plan.portfolio_ids = _target_portfolio_ids(run)
        plan.metrics = plan.strategies = plan.comparisons = True
    elif run.kind == RefreshKind.STRATEGY:
        plan.signals = plan.strategies = True
    elif run.kind == RefreshKind.BENCHMARK:
        plan.comparisons = True
    elif run.kind == RefreshKind.ALL:
        plan.metrics = plan.signals = plan.strategies = plan.comparisons = True
        plan.only_changed = run.mode != RefreshMode.FULL
    return plan
