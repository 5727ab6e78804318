"""The "Recalculating metrics" step: portfolio metrics, signals, strategies, comparisons."""

from dataclasses import dataclass

from django.conf import settings

from market_data.models import Asset
from portfolios.selectors.holdings import portfolio_ids_holding
from portfolios.selectors.shared import shared_reads
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


@dataclass(frozen=True)
class CalculationTargets:
    """Which calculations a run does once it knows which prices changed, and for which portfolios
    (None: all of them)."""

    portfolio_ids: list[int] | None  # metrics and strategies
    comparison_ids: list[int] | None  # benchmark comparisons: all of them when the benchmark's price changed
    signals: bool
    strategies: bool
    metrics: bool
    comparisons: bool


def calculation_targets(*, plan: RefreshPlan, changed_symbols: list[str]) -> CalculationTargets:
    """What the plan's calculations cover given the changed prices (a dry run passes every symbol it would fetch)."""
    portfolio_ids = portfolios_to_recalculate(plan=plan, changed_symbols=changed_symbols)
    nothing_changed = portfolio_ids == [] and plan.only_changed
    benchmark_changed = settings.BENCHMARK_SYMBOL in changed_symbols
    comparison_ids = None if (benchmark_changed and plan.portfolio_ids is None) else portfolio_ids
    return CalculationTargets(
        portfolio_ids=portfolio_ids,
        comparison_ids=comparison_ids,
        signals=plan.signals and not nothing_changed,
        strategies=plan.strategies and portfolio_ids != [],
        metrics=plan.metrics and portfolio_ids != [],
        comparisons=plan.comparisons and comparison_ids != [],
    )


def recalculate(*, tracker: RunTracker, plan: RefreshPlan, changed_symbols: list[str], record) -> list[int] | None:
    """Run the plan's calculations; returns the portfolio ids touched (None: all of them).

    Strategies go before metrics, so figures reflect any rebalancing just applied. Each
    portfolio is valued on its own calendar, so recalculating some portfolios stores the same
    figures for them as recalculating all (docs/figures.md).
    """
    targets = calculation_targets(plan=plan, changed_symbols=changed_symbols)
    with shared_reads():
        counts = _calculate(tracker=tracker, plan=plan, targets=targets)
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
    return targets.portfolio_ids


def _calculate(*, tracker: RunTracker, plan: RefreshPlan, targets: CalculationTargets) -> dict[str, int]:
    """Each calculation the targets ask for; returns what each stored."""
    counts = {}
    if targets.signals:
        counts["signals"] = recalculate_signals()
    if targets.strategies:
        strategy_counts = recalculate_strategies(
            portfolio_ids=targets.portfolio_ids,
            apply=plan.apply_rebalancing,
            refresh_id=tracker.run.refresh_id,
            on_progress=tracker.progress_within_step,
        )
        counts.update({f"strategy_{k}": v for k, v in strategy_counts.items()})
    if targets.metrics:
        counts["portfolios"] = recalculate_portfolio_metrics(
            portfolio_ids=targets.portfolio_ids, on_progress=tracker.progress_within_step
        )
    if targets.comparisons:
        counts["comparisons"] = recalculate_benchmark_comparisons(
            portfolio_ids=targets.comparison_ids, on_progress=tracker.progress_within_step
        )
    return counts
