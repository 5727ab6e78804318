"""The fixed order of a run's work: fetch, update the database, recalculate, invalidate cache."""
from django.utils import timezone

from market_data.providers import get_provider
from market_data.services import store_history, store_quotes
from portfolios.models import Portfolio
from refresh.models import RefreshMode, StepStatus
from refresh.services import data_cache
from refresh.services.tracking import RunTracker
from refresh.steps.calculate import recalculate
from refresh.steps.fetch import FetchedData, fetch_market_data
from refresh.steps.plan import RefreshPlan, build_plan


def _update_database(tracker: RunTracker, data: FetchedData, provider_name: str, record) -> list[str]:
    """Store quotes and bars; returns the symbols whose figures changed."""
    changed = store_quotes(quotes=data.quotes, source=provider_name, fetched_at=timezone.now())
    tracker.progress_within_step(1, 2)
    bars = store_history(histories=data.histories)
    history_symbols = [h.symbol for h in data.histories if len(h.dates)]
    tracker.count_items("prices", len(data.quotes))
    tracker.count_items("bars", bars)
    record.counts = {"quotes": len(data.quotes), "quotes_changed": len(changed), "bars": bars}
    return sorted(set(changed) | set(history_symbols))


def _invalidate_cache(tracker: RunTracker, plan: RefreshPlan, changed: list[str], portfolio_ids, record) -> None:
    if tracker.run.mode == RefreshMode.FULL:
        record.counts = {"keys_invalidated": data_cache.invalidate(everything=True), "scope": "everything"}
        return
    if portfolio_ids is None and plan.calculates:
        portfolios = Portfolio.objects.all()
    else:
        portfolios = Portfolio.objects.filter(pk__in=portfolio_ids or [])
    pairs = list(portfolios.values_list("id", "owner_id"))
    keys = data_cache.invalidate(portfolio_ids=[p for p, _ in pairs], owner_ids=[o for _, o in pairs],
                                 symbols=changed)
    record.counts = {"keys_invalidated": keys, "portfolios": len(pairs), "assets": len(changed)}


def run_refresh_steps(tracker: RunTracker) -> None:
    """Do the run's work, recording each step; raises RunStopped to stop between batches."""
    provider = get_provider()
    plan = build_plan(tracker.run)
    with tracker.step("Fetching data") as record:
        if plan.fetches:
            data = fetch_market_data(tracker=tracker, plan=plan, provider=provider)
            record.counts = {"quotes": len(data.quotes), "histories": len(data.histories),
                             "skipped_fresh": len(plan.fresh_symbols), "failed": len(tracker.run.failed_symbols)}
        else:
            data = FetchedData()
            record.status = StepStatus.SKIPPED
            record.message = ("Nothing is stale." if plan.fresh_symbols else "This kind uses stored prices.")
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
