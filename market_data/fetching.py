"""Fetching quotes and histories from the provider in concurrent waves, within the shared credit budget.

Each wave takes credits for up to MARKET_DATA_CONCURRENCY batches at once from the budget all
workers share and sends those batches together from a thread pool. Only the provider calls
(with their retries) run in the threads; accounting, settling the wave's credits, failures,
progress and reports stay in the caller's thread, so threads open no database connection. A
wave settles its grant once all its batches are back, returning what they did not spend.

When this minute's credits are gone the fetch waits for the next minute, if the caller's
deadline allows; a batch the provider refused for the minute goes out again in a later wave.
When the day's are gone it stops asking, keeps what came back and reports what it could not
fetch. Transient failures are retried with backoff; a batch that still fails is reported
against its symbols and the fetch goes on; a rejected key ends it at once (nothing more is
sent; calls already under way are still counted). Results keep the requested order, screened
for anomalies before anything is stored.

Nothing here knows about refresh runs: the caller passes plain values, a reporter told what
happens as it happens, and a callback for rate-limit warnings. ``estimate_fetch`` walks the same
waves over what the budget has left without sending anything, for a dry run.
"""

import contextvars
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import partial
from typing import Any, Protocol

from django.conf import settings
from django.utils import timezone

from .anomalies import Anomaly, record_anomalies, screen_histories, screen_quotes
from .batching import split_batches_to_credits
from .credits import (
    DAY_CREDITS_GONE,
    CreditGrant,
    CreditsLeft,
    mark_credits_exhausted,
    next_midnight,
    reserve_credits,
    settle_credits,
)
from .models import CreditPeriod
from .providers.base import (
    BatchResult,
    History,
    MarketDataProvider,
    ProviderAuthError,
    ProviderError,
    ProviderRateLimited,
    QuoteData,
)
from .retries import call_with_retries
from .usage import record_provider_usage

# How waiting sleeps; tests replace it to move a frozen clock instead.
sleep = time.sleep

WAIT_TOO_LONG = (
    "This minute's provider credits are used up, and waiting for the next minute would pass the run's time limit."
)


@dataclass
class HistoryRequest:
    """Symbols whose daily bars are fetched over one shared date range."""

    symbols: list[str]
    start: date
    end: date
    adjust: str = "splits"


@dataclass
class FetchedData:
    """What came back and passed screening, in the requested order, and the anomalies held back or flagged."""

    quotes: list[QuoteData] = field(default_factory=list)
    histories: list[History] = field(default_factory=list)
    anomalies: list[Anomaly] = field(default_factory=list)


@dataclass(frozen=True)
class RateLimitWarning:
    """The credit budget is running low or ran out: worth telling whoever watches the provider."""

    provider: str
    scope: str  # "minute" or "day"
    reason: str
    resets_at: datetime | None = None
    symbols_not_fetched: int | None = None  # set when the fetch stopped short

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, for events."""
        details: dict[str, Any] = {
            "provider": self.provider,
            "scope": self.scope,
            "reason": self.reason,
            "resets_at": self.resets_at.isoformat() if self.resets_at else None,
            "credits_per_minute": settings.MARKET_DATA_CREDITS_PER_MINUTE,
            "credits_per_day": settings.MARKET_DATA_CREDITS_PER_DAY,
        }
        if self.symbols_not_fetched is not None:
            details["symbols_not_fetched"] = self.symbols_not_fetched
        return details


class FetchReporter(Protocol):
    """Told what happens while fetching, as it happens, in the caller's thread (a run's tracker is one)."""

    def checkpoint(self) -> None:
        """Called before each wave and while waiting for credits; whatever it raises stops the fetch."""

    def report_progress(self, done: int, total: int) -> None:
        """Symbols settled (fetched or failed) so far, of all requested."""

    def count_provider_use(self, *, calls: int, credits: int) -> None:
        """Requests sent and credits they cost, failed attempts included."""

    def fail_symbols(self, failures: dict[str, str]) -> None:
        """Symbols that could not be fetched, each with the reason."""

    def add_error(self, message: str) -> None:
        """Why the fetch stopped before asking for every symbol."""


@dataclass
class _Job:
    """Symbols fetched with one kind of provider call."""

    symbols: list[str]
    call: Callable[[list[str]], BatchResult]


class _OutOfCredits(Exception):
    """No more credits can be had within the deadline."""

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
    """The batches sent on one credit grant, once all of them are back, merged in request order."""

    items: dict[str, QuoteData | History] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)  # refused for the minute: to send again
    unsent: list[str] = field(default_factory=list)  # not fetched because the day's credits are gone
    spent: int = 0
    day_gone: bool = False
    auth_error: ProviderAuthError | None = None


def _jobs(
    provider: MarketDataProvider, quote_symbols: Sequence[str], histories: Sequence[HistoryRequest]
) -> list[_Job]:
    jobs = [_Job(list(quote_symbols), provider.fetch_quotes)]
    jobs.extend(
        _Job(r.symbols, partial(provider.fetch_history, start=r.start, end=r.end, adjust=r.adjust)) for r in histories
    )
    return [job for job in jobs if job.symbols]


class _BudgetedFetch:
    """Runs the provider calls of one fetch: credits, waits, concurrent waves, retries, accounting."""

    def __init__(
        self,
        provider: MarketDataProvider,
        reporter: FetchReporter,
        *,
        deadline: float,
        on_rate_limit: Callable[[RateLimitWarning], None],
        thread_name: str,
    ):
        self.provider = provider
        self.reporter = reporter
        self.deadline = deadline
        self.on_rate_limit = on_rate_limit
        self.thread_name = thread_name
        self.concurrency = max(settings.MARKET_DATA_CONCURRENCY, 1)
        self.data = FetchedData()
        self.done = self.total = 0

    # --- credits --------------------------------------------------------------------
    def _take_credits(self, wanted: int) -> CreditGrant:
        """Credits for the next wave, waiting for the next minute while the deadline allows."""
        while True:
            self.reporter.checkpoint()
            grant = reserve_credits(wanted=wanted)
            if grant.credits:
                if grant.crossed_warning:
                    self._warn(
                        scope="day",
                        reason=f"{grant.day_used} of {settings.MARKET_DATA_CREDITS_PER_DAY} "
                        "provider credits for today are used.",
                    )
                return grant
            if grant.day_exhausted:
                raise _OutOfCredits(DAY_CREDITS_GONE, resets_at=grant.retry_at)
            self._wait_until(grant.retry_at)

    def _wait_until(self, moment: datetime) -> None:
        seconds = (moment - timezone.now()).total_seconds()
        if time.monotonic() + seconds > self.deadline:
            raise _OutOfCredits(WAIT_TOO_LONG, resets_at=moment)
        while (remaining := (moment - timezone.now()).total_seconds()) > 0:
            self.reporter.checkpoint()
            sleep(min(remaining, 1.0))

    # --- one wave -------------------------------------------------------------------
    def _account(self, *, calls: int, credits: int) -> None:
        self.reporter.count_provider_use(calls=calls, credits=credits)
        record_provider_usage(provider=self.provider.name, calls=calls, credits=credits)

    def _send_wave(
        self, executor: ThreadPoolExecutor, job: _Job, batches: list[list[str]], grant: CreditGrant
    ) -> _Wave:
        """Send the batches at once, handle each as it comes back, then settle the grant as a whole."""
        stop = threading.Event()
        # A context copy per call, so log records from the threads keep the caller's context.
        futures = {
            executor.submit(contextvars.copy_context().run, _fetch_batch, partial(job.call, batch), stop): index
            for index, batch in enumerate(batches)
        }
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
            self.reporter.report_progress(self.done, self.total)
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

    # --- every job ------------------------------------------------------------------
    def run(self, jobs: list[_Job]) -> FetchedData:
        self.total = sum(len(job.symbols) for job in jobs)
        # Threads named after the caller, so logs and thread dumps tell whose calls they carry.
        executor = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix=self.thread_name)
        try:
            for position, job in enumerate(jobs):
                if not self._fetch_job(executor, job, later=jobs[position + 1 :]):
                    break
        finally:
            executor.shutdown(cancel_futures=True)
        return self.data

    def _fetch_job(self, executor: ThreadPoolExecutor, job: _Job, *, later: list[_Job]) -> bool:
        """One job's symbols, wave by wave; False when the budget stopped the fetch asking."""
        pending = list(job.symbols)
        fetched: dict[str, QuoteData | History] = {}
        refusals: Counter[str] = Counter()
        not_asked = [symbol for other in later for symbol in other.symbols]
        try:
            while pending:
                grant = self._take_credits(min(len(pending), self.provider.batch_size * self.concurrency))
                batches, rest = split_batches_to_credits(
                    pending, batch_size=self.provider.batch_size, credits=grant.credits
                )
                wave = self._send_wave(executor, job, batches, grant)
                if wave.auth_error:
                    raise wave.auth_error
                fetched.update(wave.items)
                self.reporter.fail_symbols(wave.failures)
                pending = self._refused_again(wave.refused, refusals) + rest
                if wave.day_gone:
                    self._stop(
                        DAY_CREDITS_GONE, [*wave.unsent, *pending, *not_asked], resets_at=next_midnight(timezone.now())
                    )
                    return False
        except _OutOfCredits as exc:
            self._stop(exc.reason, [*pending, *not_asked], resets_at=exc.resets_at)
            return False
        finally:
            self._keep(job, fetched)
        return True

    def _refused_again(self, refused: dict[str, str], refusals: Counter[str]) -> list[str]:
        """Symbols refused for the minute to send in a later wave; those refused too often are failed."""
        refusals.update(refused.keys())
        given_up = {
            symbol: reason
            for symbol, reason in refused.items()
            if refusals[symbol] >= settings.MARKET_DATA_RETRY_ATTEMPTS
        }
        if given_up:
            self.reporter.fail_symbols(given_up)
            self.done += len(given_up)
            self.reporter.report_progress(self.done, self.total)
        return [symbol for symbol in refused if symbol not in given_up]

    def _keep(self, job: _Job, fetched: dict[str, QuoteData | History]) -> None:
        """Add a job's results in request order, whichever batch came back first."""
        order = {symbol: index for index, symbol in enumerate(dict.fromkeys(job.symbols))}
        ordered = [fetched[symbol] for symbol in sorted(fetched, key=lambda s: order.get(s, len(order)))]
        self.data.quotes.extend(item for item in ordered if isinstance(item, QuoteData))
        self.data.histories.extend(item for item in ordered if isinstance(item, History))

    def _stop(self, reason: str, left: list[str], *, resets_at: datetime | None) -> None:
        """The budget ends the fetch: what was not fetched is failed with the reason, and a warning goes out."""
        symbols = list(dict.fromkeys(left))
        self.reporter.fail_symbols(dict.fromkeys(symbols, reason))
        self.reporter.add_error(f"{reason} {len(symbols)} symbols were not fetched.")
        self._warn(
            scope="day" if reason == DAY_CREDITS_GONE else "minute",
            reason=reason,
            resets_at=resets_at,
            symbols_not_fetched=len(symbols),
        )

    def _warn(self, **details: Any) -> None:
        self.on_rate_limit(RateLimitWarning(provider=self.provider.name, **details))


def _screen(data: FetchedData, *, refresh_id: str, source: str) -> FetchedData:
    """Hold back suspicious prices, and keep every anomaly as a PriceAnomaly row."""
    quotes, quote_anomalies = screen_quotes(quotes=data.quotes)
    histories, history_anomalies = screen_histories(histories=data.histories)
    anomalies = quote_anomalies + history_anomalies
    if anomalies:
        record_anomalies(anomalies=anomalies, refresh_id=refresh_id, source=source)
    return FetchedData(quotes=quotes, histories=histories, anomalies=anomalies)


def fetch_prices(
    *,
    provider: MarketDataProvider,
    quote_symbols: Sequence[str],
    histories: Sequence[HistoryRequest],
    reporter: FetchReporter,
    deadline: float,
    on_rate_limit: Callable[[RateLimitWarning], None],
    refresh_id: str = "",
) -> FetchedData:
    """Every quote and history asked for, within the credit budget, screened for anomalies.

    `deadline` is a `time.monotonic()` value: no wait for credits that would end past it is
    made. `refresh_id` names the worker threads and is kept on the anomalies recorded.
    A rejected key raises ProviderAuthError; whatever `reporter.checkpoint()` raises stops
    the fetch and propagates.
    """
    fetch = _BudgetedFetch(
        provider, reporter, deadline=deadline, on_rate_limit=on_rate_limit, thread_name=f"fetch-{refresh_id}"
    )
    data = fetch.run(_jobs(provider, quote_symbols, histories))
    return _screen(data, refresh_id=refresh_id, source=provider.name)


@dataclass(frozen=True)
class FetchEstimate:
    """What ``fetch_prices`` would spend on a request, sending nothing."""

    calls: int
    credits: int
    minutes: int  # per-minute credit windows the fetch spans: 1 needs no wait for the next minute
    not_fetched_today: int  # symbol requests (quote or history) today's credits would not cover


def estimate_fetch(
    *,
    provider: MarketDataProvider,
    quote_symbols: Sequence[str],
    histories: Sequence[HistoryRequest],
    budget: CreditsLeft,
) -> FetchEstimate:
    """The provider calls and credits ``fetch_prices`` would spend, if every call succeeds at once
    and no other worker spends credits meanwhile (retries and their calls cannot be foreseen).

    It follows the fetch's waves: each takes at most batch size x MARKET_DATA_CONCURRENCY credits
    and no more than the minute and the day have left, cut into batches by the same split; a
    minute with nothing left is waited out; once the day's credits are gone nothing more is asked.
    """
    wave_size = provider.batch_size * max(settings.MARKET_DATA_CONCURRENCY, 1)
    minute_left, day_left = budget.this_minute, budget.today
    calls = credits = not_fetched = 0
    minutes = 1
    for job in _jobs(provider, quote_symbols, histories):
        pending = list(dict.fromkeys(job.symbols))
        while pending:
            if day_left == 0:
                not_fetched += len(pending)
                break
            grant = min(len(pending), wave_size, *(left for left in (minute_left, day_left) if left is not None))
            if grant == 0:  # this minute's credits are gone: the fetch waits for the next
                minutes += 1
                minute_left = budget.per_minute
                continue
            batches, pending = split_batches_to_credits(pending, batch_size=provider.batch_size, credits=grant)
            calls += len(batches)
            credits += grant
            minute_left = None if minute_left is None else minute_left - grant
            day_left = None if day_left is None else day_left - grant
    return FetchEstimate(calls=calls, credits=credits, minutes=minutes if credits else 0, not_fetched_today=not_fetched)
