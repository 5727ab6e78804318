"""The "Fetching data" step: the plan's provider calls through market_data, recorded on the run.

market_data fetches within the shared credit budget (waves, waits, retries, screening) and
knows nothing of runs; this step hands it the plan and the run's tracker, and turns its
rate-limit warnings and anomalies into the run's record and refresh events; a price held back
is its symbol's outcome.
"""

from market_data.anomalies import Anomaly
from market_data.fetching import FetchedData, RateLimitWarning, fetch_prices
from market_data.providers.base import MarketDataProvider
from refresh.models import RefreshRun
from refresh.services.events import DATA_ANOMALY, RATELIMIT_WARNING, emit_event
from refresh.services.tracking import RunTracker
from refresh.steps.plan import RefreshPlan

# At most this many anomalies are listed on the run; all of them are kept as PriceAnomaly rows.
RUN_ANOMALY_LIMIT = 200


def _list_anomalies(run: RefreshRun, anomalies: list[Anomaly]) -> None:
    """List the anomalies on the run (held back or only flagged) and announce them."""
    listed = [anomaly.as_dict() for anomaly in anomalies]
    run.anomalies = (run.anomalies + listed)[:RUN_ANOMALY_LIMIT]
    RefreshRun.objects.filter(pk=run.pk).update(anomalies=run.anomalies)
    emit_event(
        event_type=DATA_ANOMALY,
        payload={
            "refresh_id": run.refresh_id,
            "kind": run.kind,
            "count": len(listed),
            "quarantined": sum(anomaly.quarantined for anomaly in anomalies),
            "anomalies": listed[:50],
        },
    )


def fetch_market_data(*, tracker: RunTracker, plan: RefreshPlan, provider: MarketDataProvider) -> FetchedData:
    """Run every provider call of the plan within the credit budget and the run's time limit."""
    run = tracker.run

    def warn(warning: RateLimitWarning) -> None:
        emit_event(event_type=RATELIMIT_WARNING, payload={"refresh_id": run.refresh_id, **warning.as_dict()})

    data = fetch_prices(
        provider=provider,
        quote_symbols=plan.quote_symbols,
        histories=plan.history,
        reporter=tracker,
        deadline=tracker.deadline,
        on_rate_limit=warn,
        refresh_id=run.refresh_id,
    )
    if data.anomalies:
        _list_anomalies(run, data.anomalies)
        tracker.symbol_outcomes.hold_back(data.anomalies)
    return data
