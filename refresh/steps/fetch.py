"""The "Fetching data" step: quotes and history from the provider, batch by batch.

A batch that fails is recorded against its symbols and the run goes on with the rest
(partial failure); a rejected key fails the run at once; running out of the day's
credits stops fetching and keeps what came back.
"""
from dataclasses import dataclass, field

from market_data.batching import split_batches
from market_data.providers.base import (
    BatchResult, History, MarketDataProvider, ProviderAuthError, ProviderError, ProviderRateLimited, QuoteData,
)
from refresh.services.tracking import RunTracker
from refresh.steps.plan import RefreshPlan


@dataclass
class FetchedData:
    quotes: list[QuoteData] = field(default_factory=list)
    histories: list[History] = field(default_factory=list)


class _DayCreditsExhausted(Exception):
    pass


def _batched_calls(plan: RefreshPlan, provider: MarketDataProvider):
    """Every provider call the plan needs, as (kind, symbols, callable)."""
    for batch in split_batches(plan.quote_symbols, provider.batch_size):
        yield "quotes", batch, lambda b=batch: provider.fetch_quotes(b)
    for request in plan.history:
        for batch in split_batches(request.symbols, provider.batch_size):
            yield "history", batch, lambda b=batch, r=request: provider.fetch_history(
                b, start=r.start, end=r.end, adjust=r.adjust)


def _call(tracker: RunTracker, symbols: list[str], call) -> BatchResult | None:
    try:
        result = call()
    except ProviderAuthError:
        tracker.count_provider_use(calls=1, credits=0)
        raise
    except ProviderRateLimited as exc:
        tracker.count_provider_use(calls=1, credits=0)
        if exc.scope == "day":
            raise _DayCreditsExhausted(str(exc)) from exc
        tracker.fail_symbols({s: str(exc) for s in symbols})
        return None
    except ProviderError as exc:
        tracker.count_provider_use(calls=1, credits=0)
        tracker.fail_symbols({s: str(exc) for s in symbols})
        return None
    tracker.count_provider_use(calls=result.calls, credits=result.credits)
    tracker.fail_symbols(result.errors)
    return result


def fetch_market_data(*, tracker: RunTracker, plan: RefreshPlan, provider: MarketDataProvider) -> FetchedData:
    """Run every provider call of the plan, checking for stop requests between batches."""
    data = FetchedData()
    calls = list(_batched_calls(plan, provider))
    for done, (kind, symbols, call) in enumerate(calls):
        try:
            result = _call(tracker, symbols, call)
        except _DayCreditsExhausted as exc:
            remaining = [s for _, batch, _ in calls[done:] for s in batch]
            tracker.fail_symbols({s: "The provider's daily credits are used up." for s in remaining})
            tracker.add_error(str(exc))
            break
        if result is not None:
            target = data.quotes if kind == "quotes" else data.histories
            target.extend(result.items.values())
        tracker.progress_within_step(done + 1, len(calls))
    return data
