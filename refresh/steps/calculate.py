"""The "Recalculating metrics" step: portfolio metrics, signals, strategies, comparisons."""

from django.conf import settings

from market_data.models import Asset
from portfolios.selectors.holdings import portfolio_ids_holding
from portfolios.selectors.prices import shared_price_reads
from portfolios.services.benchmark import recalculate_benchmark_comparisons
from portfolios.services.performance import recalculate_portfolio_metrics
from portfolios.services.signals import recalculate_signals
from portfolios.services.strategy import recalculate_strategies
from refresh.services.tracking import RunTracker
from refresh.steps.plan import RefreshPlan


def portfolios_to_recalculate(*, plan: RefreshPlan, changed_symbols: list[str]) -> list[int] | None:
    """All portfolios (None), the plan's own, or only those holding a changed price."""
    if plan.portfolio_ids is not None or not plan.only_changed:
        return plan.portfolio_ids
    asset_ids = list(Asset.objects.filter(symbol__in=changed_symbols).values_list("id", flat=True))
    return portfolio_ids_holding(asset_ids=asset_ids)


def recalculate(*, tracker: RunTracker, plan: RefreshPlan, changed_symbols: list[str], record) -> list[int] | None:
    """Run the plan's calculations; returns the portfolio ids touched (None: all of them).

    Strategies go before metrics, so figures reflect any rebalancing just applied. Each
    portfolio is valued on its own calendar, so recalculating some portfolios stores the same
    figures for them as recalculating all (docs/figures.md).
    """
    portfolio_ids = portfolios_to_recalculate(plan=plan, changed_symbols=changed_symbols)
    with shared_price_reads():
        counts = _calculate(tracker=tracker, plan=plan, changed_symbols=changed_symbols, portfolio_ids=portfolio_ids)
    record.counts = counts
    tracker.count_items("portfolios", counts.get("portfolios", counts.get("comparisons", 0)))
    tracker.count_items(
        "metrics",
        counts.get("portfolios", 0)
        + counts.get("comparisons", 0)
        + counts.get("signals", 0)
        + counts.get("strategy_allocations", 0),
    )
    if counts.get("strategy_applied"):
        tracker.count_items("rebalanced", counts["strategy_applied"])
    return portfolio_ids


def _calculate(
    *, tracker: RunTracker, plan: RefreshPlan, changed_symbols: list[str], portfolio_ids: list[int] | None
) -> dict[str, int]:
    """Each calculation the plan asks for; returns what each stored."""
    nothing_changed = portfolio_ids == [] and plan.only_changed
    counts = {}
    if plan.signals and not nothing_changed:
        counts["signals"] = recalculate_signals()
    if plan.strategies and portfolio_ids != []:
        strategy_counts = recalculate_strategies(
            portfolio_ids=portfolio_ids,
            apply=plan.apply_rebalancing,
            refresh_id=tracker.run.refresh_id,
            on_progress=tracker.progress_within_step,
        )
        counts.update({f"strategy_{k}": v for k, v in strategy_counts.items()})
    if plan.metrics and portfolio_ids != []:
        counts["portfolios"] = recalculate_portfolio_metrics(
            portfolio_ids=portfolio_ids, on_progress=tracker.progress_within_step
        )
    if plan.comparisons:
        benchmark_changed = settings.BENCHMARK_SYMBOL in changed_symbols
        comparison_ids = None if (benchmark_changed and plan.portfolio_ids is None) else portfolio_ids
        if comparison_ids != []:
            counts["comparisons"] = recalculate_benchmark_comparisons(
                portfolio_ids=comparison_ids, on_progress=tracker.progress_within_step
            )
    return counts
