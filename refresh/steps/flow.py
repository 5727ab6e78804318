"""The fixed order of a run's work: fetch, update the database, recalculate, invalidate cache."""

from django.conf import settings
from django.utils import timezone

from market_data.fetching import FetchedData
from market_data.providers import get_provider
from market_data.services import store_history, store_quotes
from portfolios.selectors.assets import asset_ids_by_symbol
from portfolios.selectors.read_api import portfolio_ids_showing
from refresh.models import RefreshMode, RefreshRun, StepStatus
from refresh.services.cached_reads import refresh_cached_reads
from refresh.services.tracking import RunTracker
from refresh.steps.calculate import recalculate
from refresh.steps.fetch import fetch_market_data
from refresh.steps.plan import RefreshPlan, build_plan


def _update_database(tracker: RunTracker, data: FetchedData, provider_name: str, record) -> list[str]:
    """Store quotes and bars; returns the symbols whose figures changed.

    Each stored symbol's outcome is updated when its quote is new or changed or bars came,
    else unchanged.
    """
    tracker.wrote_data = True
    changed = store_quotes(quotes=data.quotes, source=provider_name, fetched_at=timezone.now())
    tracker.symbol_outcomes.store(symbols=[quote.symbol for quote in data.quotes], changed=changed)
    tracker.report_progress(1, 2)  # quotes and bars belong together: no stop in between
    bars = store_history(histories=data.histories)
    history_symbols = [h.symbol for h in data.histories if len(h.dates)]
    tracker.symbol_outcomes.store(symbols=[h.symbol for h in data.histories], changed=history_symbols)
    tracker.count_items("prices", len(data.quotes))
    tracker.count_items("bars", bars)
    record.counts = {"quotes": len(data.quotes), "quotes_changed": len(changed), "bars": bars}
    return sorted(set(changed) | set(history_symbols))


def _invalidate_cache(tracker: RunTracker, plan: RefreshPlan, changed: list[str], portfolio_ids, record) -> None:
    """Drop the cached reads this run changed, rebuild the most read, and record both on the run.

    A full run starts a new cache generation. Otherwise the portfolios whose view changed are
    those recalculated (None: all), those showing a changed asset, and all of them when every
    comparison was redone for a new benchmark price (as recalculate does).
    """
    if tracker.run.mode == RefreshMode.FULL:
        impact = refresh_cached_reads(everything=True)
    else:
        everyone = portfolio_ids is None or (
            plan.comparisons and plan.portfolio_ids is None and settings.BENCHMARK_SYMBOL in changed
        )
        if not everyone:
            showing = portfolio_ids_showing(asset_ids=list(asset_ids_by_symbol(symbols=changed).values()))
            portfolio_ids = sorted({*portfolio_ids, *showing})
        impact = refresh_cached_reads(portfolio_ids=None if everyone else portfolio_ids, symbols=changed)
    tracker.run.cache_impact = impact
    RefreshRun.objects.filter(pk=tracker.run.pk).update(cache_impact=impact)
    record.counts = {name: impact[name] for name in ("scope", "invalidated", "warmed")}


def run_refresh_steps(tracker: RunTracker) -> None:
    """Do the run's work, recording each step; raises RunStopped to stop between batches."""
    provider = get_provider()
    plan = build_plan(tracker.run)
    tracker.symbol_outcomes.skip(plan.fresh_symbols)  # unless their history is fetched after all
    with tracker.step("Fetching data") as record:
        if plan.fetches:
            data = fetch_market_data(tracker=tracker, plan=plan, provider=provider)
            record.counts = {
                "quotes": len(data.quotes),
                "histories": len(data.histories),
                "skipped_fresh": len(plan.fresh_symbols),
                "failed": len(tracker.run.failed_symbols),
            }
        else:
            data = FetchedData()
            record.status = StepStatus.SKIPPED
            record.message = "Nothing is stale." if plan.fresh_symbols else "This kind uses stored prices."
    with tracker.step("Updating database") as record:
        changed = _update_database(tracker, data, provider.name, record)
    if plan.calculates:
        with tracker.step("Recalculating metrics") as record:
            portfolio_ids = recalculate(tracker=tracker, plan=plan, changed_symbols=changed, record=record)
    else:
        tracker.skip("Recalculating metrics", "A prices refresh skips calculations.")
        portfolio_ids = []
    with tracker.step("Invalidating cache") as record:
        _invalidate_cache(tracker, plan, changed, portfolio_ids, record)
