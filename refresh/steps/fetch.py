"""The "Fetching data" step: quotes and history from the provider, in concurrent waves, within budget.

Each wave takes credits for up to MARKET_DATA_CONCURRENCY batches at once from the budget all
workers share and sends those batches together from a thread pool. Only the provider calls
(with their retries) run in the threads; accounting, settling the wave's credits, failures,
progress and events stay in the run's thread, so threads open no database connection. A wave
settles its grant once all its batches are back, returning what they did not spend.

When this minute's credits are gone the run waits for the next minute, if its time limit allows;
a batch the provider refused for the minute goes out again in a later wave. When the day's are
gone it stops asking, keeps what came back and lists what it could not fetch. Transient failures
are retried with backoff; a batch that still fails is recorded against its symbols and the run
goes on (partial failure); a rejected key fails the run at once (nothing more is sent; calls
already under way are still counted). Results keep the plan's order.
What came back is screened for anomalies before anything is stored.
"""
import contextvars
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial

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


class _Abandoned(Exception):
    """The wave was given up (a rejected key, the day's credits gone) before this attempt went out."""


@dataclass
class _Outcome:
    """What one batch's provider call came to, as its worker thread saw it."""

    result: BatchResult | None = None
    error: ProviderError | None = None
    failed_attempts: int = 0  # each a request that failed as a whole and cost no credit
    abandoned: bool = False


def _fetch_batch(call: Callable[[], BatchResult], stop: threading.Event) -> _Outcome:
    """In a worker thread: one batch's provider call with its retries, and nothing that touches the database."""
    outcome = _Outcome()

    def attempt() -> BatchResult:
        if stop.is_set():
            raise _Abandoned
        try:
            return call()
        except ProviderError:
            outcome.failed_attempts += 1
            raise

    try:
        outcome.result = call_with_retries(attempt, sleep=sleep)
    except ProviderError as exc:
        outcome.error = exc
    except _Abandoned:
        outcome.abandoned = True
    return outcome


@dataclass
class _Wave:
    """The batches sent on one credit grant, once all of them are back, merged in plan order."""

    items: dict[str, QuoteData | History] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)  # refused for the minute: to send again
    unsent: list[str] = field(default_factory=list)  # not fetched because the day's credits are gone
    spent: int = 0
    day_gone: bool = False
    auth_error: ProviderAuthError | None = None


def _jobs(plan: RefreshPlan, provider: MarketDataProvider) -> list[_Job]:
    jobs = [_Job("quotes", plan.quote_symbols, lambda batch: provider.fetch_quotes(batch))]
    for request in plan.history:
        jobs.append(_Job("history", request.symbols, lambda batch, r=request: provider.fetch_history(
            batch, start=r.start, end=r.end, adjust=r.adjust)))
    return [job for job in jobs if job.symbols]


class _BudgetedFetch:
    """Runs a plan's provider calls for one run: credits, waits, concurrent waves, retries, accounting."""

    def __init__(self, tracker: RunTracker, provider: MarketDataProvider):
        self.tracker = tracker
        self.provider = provider
        self.concurrency = max(settings.MARKET_DATA_CONCURRENCY, 1)
        self.data = FetchedData()
        self.done = self.total = 0

    # --- credits --------------------------------------------------------------------
    def _take_credits(self, wanted: int) -> CreditGrant:
        """Credits for the next wave, waiting for the next minute while the run may."""
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

    # --- one wave -------------------------------------------------------------------
    def _account(self, *, calls: int, credits: int) -> None:
        self.tracker.count_provider_use(calls=calls, credits=credits)
        record_provider_usage(provider=self.provider.name, calls=calls, credits=credits)

    def _send_wave(self, executor: ThreadPoolExecutor, job: _Job, batches: list[list[str]],
                   grant: CreditGrant) -> _Wave:
        """Send the batches at once, handle each as it comes back, then settle the grant as a whole."""
        stop = threading.Event()
        # A context copy per call, so log records from the threads keep the run's context.
        futures = {executor.submit(contextvars.copy_context().run, _fetch_batch, partial(job.call, batch),
                                   stop): index for index, batch in enumerate(batches)}
        outcomes: dict[int, _Outcome] = {}
        try:
            for future in as_completed(futures):
                index = futures[future]
                outcomes[index] = _Outcome(abandoned=True) if future.cancelled() else future.result()
                if self._received(batches[index], outcomes[index]):
                    self._give_up(stop, futures)
        except BaseException:
            self._give_up(stop, futures)
            raise
        wave = _Wave()
        for index, batch in enumerate(batches):
            self._merge(wave, batch, outcomes[index])
        settle_credits(grant=grant, spent=wave.spent)
        return wave

    @staticmethod
    def _give_up(stop: threading.Event, futures: dict[Future, int]) -> None:
        """Calls not started are dropped and calls under way make no further attempt."""
        stop.set()
        for future in futures:
            future.cancel()

    def _received(self, batch: list[str], outcome: _Outcome) -> bool:
        """Account for a batch as soon as it is back; True when the rest of the wave must be given up."""
        if outcome.failed_attempts:
            self._account(calls=outcome.failed_attempts, credits=0)
        result, error = outcome.result, outcome.error
        if result is not None:
            self._account(calls=result.calls, credits=result.credits)
            if result.credits_left == 0:
                mark_credits_exhausted(period=CreditPeriod.MINUTE)
        if isinstance(error, ProviderRateLimited):
            mark_credits_exhausted(period=CreditPeriod(error.scope))
            return error.scope == "day"
        if isinstance(error, ProviderAuthError):
            return True
        if not outcome.abandoned:
            self.done += len(batch)
            self.tracker.report_progress(self.done, self.total)
        return False

    @staticmethod
    def _merge(wave: _Wave, batch: list[str], outcome: _Outcome) -> None:
        result, error = outcome.result, outcome.error
        if result is not None:
            wave.spent += result.credits
            wave.items.update(result.items)
            wave.failures.update(result.errors)
        elif outcome.abandoned:
            wave.unsent += batch
        elif isinstance(error, ProviderAuthError):
            wave.auth_error = wave.auth_error or error
        elif isinstance(error, ProviderRateLimited) and error.scope == "day":
            wave.day_gone = True
            wave.unsent += batch
        elif isinstance(error, ProviderRateLimited):
            wave.refused.update(dict.fromkeys(batch, str(error)))
        else:
            wave.failures.update(dict.fromkeys(batch, str(error)))

    # --- the whole plan -------------------------------------------------------------
    def run(self, jobs: list[_Job]) -> FetchedData:
        self.total = sum(len(job.symbols) for job in jobs)
        # Threads named after the run, so logs and thread dumps tell whose calls they carry.
        executor = ThreadPoolExecutor(max_workers=self.concurrency,
                                      thread_name_prefix=f"fetch-{self.tracker.run.refresh_id}")
        try:
            for position, job in enumerate(jobs):
                if not self._fetch_job(executor, job, later=jobs[position + 1:]):
                    break
        finally:
            executor.shutdown(cancel_futures=True)
        return self.data

    def _fetch_job(self, executor: ThreadPoolExecutor, job: _Job, *, later: list[_Job]) -> bool:
        """One job's symbols, wave by wave; False when the budget stopped the run asking."""
        pending, unsent, fetched, refusals = list(job.symbols), [], {}, Counter()
        try:
            while pending:
                grant = self._take_credits(min(len(pending), self.provider.batch_size * self.concurrency))
                batches, rest = split_batches_to_credits(pending, batch_size=self.provider.batch_size,
                                                         credits=grant.credits)
                wave = self._send_wave(executor, job, batches, grant)
                if wave.auth_error:
                    raise wave.auth_error
                fetched.update(wave.items)
                self.tracker.fail_symbols(wave.failures)
                pending = self._refused_again(wave.refused, refusals) + rest
                if wave.day_gone:
                    unsent = wave.unsent
                    raise _OutOfCredits(DAY_CREDITS_GONE, resets_at=next_midnight(timezone.now()))
        except _OutOfCredits as exc:
            self._stop(exc, [unsent, pending, *(other.symbols for other in later)])
            return False
        finally:
            self._keep(job, fetched)
        return True

    def _refused_again(self, refused: dict[str, str], refusals: Counter) -> list[str]:
        """Symbols refused for the minute to send in a later wave; those refused too often are failed."""
        refusals.update(refused.keys())
        given_up = {symbol: reason for symbol, reason in refused.items()
                    if refusals[symbol] >= settings.MARKET_DATA_RETRY_ATTEMPTS}
        if given_up:
            self.tracker.fail_symbols(given_up)
            self.done += len(given_up)
            self.tracker.report_progress(self.done, self.total)
        return [symbol for symbol in refused if symbol not in given_up]

    def _keep(self, job: _Job, fetched: dict[str, QuoteData | History]) -> None:
        """Add a job's results in plan order, whichever batch came back first."""
        order = {symbol: index for index, symbol in enumerate(dict.fromkeys(job.symbols))}
        target = self.data.quotes if job.kind == "quotes" else self.data.histories
        target.extend(fetched[symbol] for symbol in sorted(fetched, key=lambda s: order.get(s, len(order))))

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
