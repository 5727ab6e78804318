"""The "Fetching data" step: quotes and history from the provider, batch by batch, within budget.

Every batch first takes its credits from the budget all workers share. When this minute's
credits are gone the run waits for the next minute, if its time limit allows; when the
day's are gone it stops asking, keeps what came back and lists what it could not fetch.
Transient failures are retried with backoff; a batch that still fails is recorded against
its symbols and the run goes on (partial failure); a rejected key fails the run at once.
What came back is screened for anomalies before anything is stored.
"""
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from market_data.anomalies import record_anomalies, screen_histories, screen_quotes
from market_data.batching import split_batches_to_credits
from market_data.credits import (
    CreditGrant, mark_credits_exhausted, next_midnight, reserve_credits, settle_credits,
)
from market_data.models import CreditPeriod
from market_data.providers.base import (
    BatchResult, History, MarketDataProvider, ProviderAuthError, ProviderError, ProviderRateLimited, QuoteData,
)
from market_data.retries import call_with_retries
from market_data.usage import record_provider_usage
from refresh.models import RefreshRun
from refresh.services.events import DATA_ANOMALY, RATELIMIT_WARNING, emit_event
from refresh.services.tracking import RunTracker
from refresh.steps.plan import RefreshPlan

# How waiting sleeps; tests replace it to move a frozen clock instead.
sleep = time.sleep
# At most this many anomalies are listed on the run; all of them are kept as PriceAnomaly rows.
RUN_ANOMALY_LIMIT = 200

DAY_CREDITS_GONE = "The provider's credits for today are used up; fetching stops until midnight UTC."
WAIT_TOO_LONG = ("This minute's provider credits are used up, and waiting for the next minute "
                 "would pass the run's time limit.")


@dataclass
class FetchedData:
    quotes: list[QuoteData] = field(default_factory=list)
    histories: list[History] = field(default_factory=list)


@dataclass
class _Job:
    """Symbols fetched with one kind of provider call."""

    kind: str
    symbols: list[str]
    call: Callable[[list[str]], BatchResult]


class _OutOfCredits(Exception):
    """No more credits can be had within this run."""

    def __init__(self, reason: str, *, resets_at: datetime | None = None):
        super().__init__(reason)
        self.reason = reason
        self.resets_at = resets_at


class _RefusedThisMinute(Exception):
    """The provider said this minute's credits are gone although our budget had some left."""


def _jobs(plan: RefreshPlan, provider: MarketDataProvider) -> list[_Job]:
    jobs = [_Job("quotes", plan.quote_symbols, lambda batch: provider.fetch_quotes(batch))]
    for request in plan.history:
        jobs.append(_Job("history", request.symbols, lambda batch, r=request: provider.fetch_history(
            batch, start=r.start, end=r.end, adjust=r.adjust)))
    return [job for job in jobs if job.symbols]


class _BudgetedFetch:
    """Runs a plan's provider calls for one run: credits, waits, retries, accounting."""

    def __init__(self, tracker: RunTracker, provider: MarketDataProvider):
        self.tracker = tracker
        self.provider = provider
        self.data = FetchedData()

    # --- credits --------------------------------------------------------------------
    def _take_credits(self, wanted: int) -> CreditGrant:
        """Credits for the next batch, waiting for the next minute while the run may."""
        while True:
            self.tracker.checkpoint()
            grant = reserve_credits(wanted=wanted)
            if grant.credits:
                if grant.crossed_warning:
                    self._warn(scope="day", reason=f"{grant.day_used} of {settings.MARKET_DATA_CREDITS_PER_DAY} "
                                                   "provider credits for today are used.")
                return grant
            if grant.day_exhausted:
                raise _OutOfCredits(DAY_CREDITS_GONE, resets_at=grant.retry_at)
            self._wait_until(grant.retry_at)

    def _wait_until(self, moment: datetime) -> None:
        seconds = (moment - timezone.now()).total_seconds()
        if time.monotonic() + seconds > self.tracker.deadline:
            raise _OutOfCredits(WAIT_TOO_LONG, resets_at=moment)
        while (remaining := (moment - timezone.now()).total_seconds()) > 0:
            self.tracker.checkpoint()
            sleep(min(remaining, 1.0))

    # --- one batch ------------------------------------------------------------------
    def _account(self, *, calls: int, credits: int) -> None:
        self.tracker.count_provider_use(calls=calls, credits=credits)
        record_provider_usage(provider=self.provider.name, calls=calls, credits=credits)

    def _attempt(self, job: _Job, batch: list[str]) -> BatchResult:
        try:
            return job.call(batch)
        except ProviderError:
            self._account(calls=1, credits=0)
            raise

    def _call(self, job: _Job, batch: list[str], grant: CreditGrant) -> BatchResult | None:
        """The batch's result, None when it failed for good (recorded against its symbols)."""
        try:
            result = call_with_retries(lambda: self._attempt(job, batch), sleep=sleep)
        except ProviderRateLimited as exc:
            mark_credits_exhausted(period=CreditPeriod(exc.scope))
            if exc.scope == "day":
                raise _OutOfCredits(DAY_CREDITS_GONE, resets_at=next_midnight(timezone.now())) from exc
            raise _RefusedThisMinute(str(exc)) from exc
        except ProviderAuthError:
            raise
        except ProviderError as exc:
            self.tracker.fail_symbols({symbol: str(exc) for symbol in batch})
            return None
        self._account(calls=result.calls, credits=result.credits)
        settle_credits(grant=grant, spent=result.credits)
        if result.credits_left == 0:
            mark_credits_exhausted(period=CreditPeriod.MINUTE)
        self.tracker.fail_symbols(result.errors)
        return result

    # --- the whole plan -------------------------------------------------------------
    def run(self, jobs: list[_Job]) -> FetchedData:
        total = sum(len(job.symbols) for job in jobs)
        done = 0
        for position, job in enumerate(jobs):
            pending, refusals = list(job.symbols), 0
            while pending:
                try:
                    grant = self._take_credits(min(len(pending), self.provider.batch_size))
                    batches, rest = split_batches_to_credits(pending, batch_size=self.provider.batch_size,
                                                             credits=grant.credits)
                    result = self._call(job, batches[0], grant)
                except _RefusedThisMinute as exc:
                    refusals += 1
                    if refusals >= settings.MARKET_DATA_RETRY_ATTEMPTS:
                        self.tracker.fail_symbols({symbol: str(exc) for symbol in batches[0]})
                        pending, refusals = rest, 0
                        done += len(batches[0])
                    continue  # the next _take_credits waits for the next minute
                except _OutOfCredits as exc:
                    self._stop(exc, [pending, *(later.symbols for later in jobs[position + 1:])])
                    return self.data
                pending = rest
                if result is not None:
                    target = self.data.quotes if job.kind == "quotes" else self.data.histories
                    target.extend(result.items.values())
                done += len(batches[0])
                self.tracker.progress_within_step(done, total)
        return self.data

    def _stop(self, exc: _OutOfCredits, left: list[list[str]]) -> None:
        symbols = list(dict.fromkeys(symbol for group in left for symbol in group))
        self.tracker.fail_symbols({symbol: exc.reason for symbol in symbols})
        self.tracker.add_error(f"{exc.reason} {len(symbols)} symbols were not fetched.")
        self._warn(scope="day" if exc.reason == DAY_CREDITS_GONE else "minute", reason=exc.reason,
                   resets_at=exc.resets_at, symbols_not_fetched=len(symbols))

    def _warn(self, *, scope: str, reason: str, **details) -> None:
        resets_at = details.pop("resets_at", None)
        emit_event(event_type=RATELIMIT_WARNING, payload={
            "refresh_id": self.tracker.run.refresh_id, "provider": self.provider.name, "scope": scope,
            "reason": reason, "resets_at": resets_at.isoformat() if resets_at else None,
            "credits_per_minute": settings.MARKET_DATA_CREDITS_PER_MINUTE,
            "credits_per_day": settings.MARKET_DATA_CREDITS_PER_DAY, **details,
        })


def _screen(tracker: RunTracker, data: FetchedData, provider_name: str) -> FetchedData:
    """Hold back suspicious prices; record them on the run, in the database and as an event."""
    quotes, quote_anomalies = screen_quotes(quotes=data.quotes)
    histories, history_anomalies = screen_histories(histories=data.histories)
    anomalies = quote_anomalies + history_anomalies
    if anomalies:
        run = tracker.run
        record_anomalies(anomalies=anomalies, refresh_id=run.refresh_id, source=provider_name)
        listed = [anomaly.as_dict() for anomaly in anomalies]
        run.anomalies = (run.anomalies + listed)[:RUN_ANOMALY_LIMIT]
        RefreshRun.objects.filter(pk=run.pk).update(anomalies=run.anomalies)
        emit_event(event_type=DATA_ANOMALY, payload={
            "refresh_id": run.refresh_id, "kind": run.kind, "count": len(listed),
            "quarantined": sum(anomaly.quarantined for anomaly in anomalies), "anomalies": listed[:50],
        })
    return FetchedData(quotes=quotes, histories=histories)


def fetch_market_data(*, tracker: RunTracker, plan: RefreshPlan, provider: MarketDataProvider) -> FetchedData:
    """Run every provider call of the plan within the credit budget, then screen what came back."""
    data = _BudgetedFetch(tracker, provider).run(_jobs(plan, provider))
    return _screen(tracker, data, provider.name)
