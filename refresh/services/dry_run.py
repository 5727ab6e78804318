"""A dry run: what a refresh request would fetch, spend and recalculate, and which active runs it
would join or wait for, recording nothing.

It passes the request's own validation and permission checks (``check_refresh_request``), so it is
refused exactly where the request would be, then asks the planning a run's steps use: the plan
(``build_plan``, smart mode's staleness included), the fetch's batching within the credit budget
(``estimate_fetch``), the calculations' targets and the queue's standing. It writes no run, step,
event, rate-limit count, asset or credit, and sends no provider call.

Two figures are bounds, not promises: an incremental ``all`` run recalculates only the portfolios
whose prices changed, which only the fetch tells, so the plan counts every portfolio that holds a
symbol it fetches; and retries of failed provider calls, or credits other workers spend meanwhile,
cannot be foreseen.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Unpack

from market_data.credits import credits_left
from market_data.fetching import estimate_fetch
from market_data.providers import get_provider
from portfolios.selectors.holdings import existing_portfolio_ids
from refresh.models import RefreshRun, RunPriority, RunStatus
from refresh.selectors import active_runs_with_key
from refresh.services.execution import worker_lost
from refresh.services.idempotency import run_for_key
from refresh.services.queue_estimates import QueueStanding, queue_standing, standing_of_new_run
from refresh.services.requests import CheckedRequest, RefreshArgs, check_refresh_request
from refresh.services.tracking import current_eta, estimate_duration_seconds
from refresh.steps.calculate import CalculationTargets, calculation_targets
from refresh.steps.plan import RefreshPlan, build_plan

# What a request would do with its run.
START, QUEUE, JOIN, REPLAY, SCHEDULE = "start", "queue", "join", "replay", "schedule"
OUTCOMES = {
    START: "start a new run at once: no conflicting run is active",
    QUEUE: "queue a new run behind the conflicting active runs in queued_behind",
    JOIN: "join the identical active run refresh_id, starting nothing",
    REPLAY: "return the run refresh_id that this Idempotency-Key already started, starting nothing",
    SCHEDULE: "record a deferred run that enters the queue at run_at (who it meets is known only then)",
}


@dataclass(frozen=True)
class SymbolFetch:
    """One symbol the run would ask the provider for: its quote, daily bars over a range, or both."""

    symbol: str
    quote: bool
    history_start: date | None = None
    history_end: date | None = None


@dataclass(frozen=True)
class DryRunPlan:
    """What a request would do: its run's work and cost, and how it would meet the active runs."""

    request: CheckedRequest
    outcome: str  # START, QUEUE, JOIN, REPLAY or SCHEDULE
    existing_run: RefreshRun | None  # the run joined or replayed
    queued_behind: tuple[str, ...]  # the active conflicting runs the run (new, joined or replayed) waits for
    queue_position: int | None  # among them, while queued
    symbols: list[SymbolFetch]
    skipped_fresh: list[str]
    provider: str
    provider_calls: int
    credits: int
    credit_minutes: int
    credits_left_today: int | None
    symbols_not_fetched_today: int
    calculations: list[str]
    portfolios: int
    portfolios_only_if_changed: bool
    apply_rebalancing: bool
    expected_duration_seconds: float
    estimated_completion: datetime | None

    @property
    def kind(self) -> str:
        return self.request.kind

    @property
    def mode(self) -> str:
        return self.request.mode

    @property
    def priority(self) -> str:
        return RunPriority(self.request.priority).label

    @property
    def target_user_id(self) -> int | None:
        return self.request.target_user_id

    @property
    def refresh_id(self) -> str | None:
        return self.existing_run.refresh_id if self.existing_run else None


def plan_refresh(
    *, idempotency_key: str | None = None, fingerprint: str = "", **request: Unpack[RefreshArgs]
) -> DryRunPlan:
    """The plan of the run ``request_refresh`` would record for this request, recording nothing.

    Raises what the request would (InvalidRefreshRequest, TargetNotFound, PermissionDenied, and
    for an Idempotency-Key the same 400 and 422), except rate limits: a dry run spends none.
    """
    replayed = None
    if idempotency_key is not None:
        replayed = run_for_key(requester=request["requested_by"], key=idempotency_key, fingerprint=fingerprint)
    checked = check_refresh_request(**request)
    run = RefreshRun(  # the run the request would record; never saved
        kind=checked.kind,
        mode=checked.mode,
        priority=checked.priority,
        requested_role=checked.role,
        target_user_id=checked.target_user_id,
        params=checked.params,
        scope=checked.scope,
        dedup_key=checked.dedup_key,
    )
    plan = build_plan(run, create_assets=False)
    provider, budget = get_provider(), credits_left()
    estimate = estimate_fetch(
        provider=provider, quote_symbols=plan.quote_symbols, histories=plan.history, budget=budget
    )
    fetches = _symbol_fetches(plan)
    targets = calculation_targets(plan=plan, changed_symbols=[f.symbol for f in fetches]) if plan.calculates else None
    expected = estimate_duration_seconds(kind=checked.kind, mode=checked.mode)
    if checked.run_at is not None and replayed is None:
        outcome, existing, standing = SCHEDULE, None, None
    else:
        outcome, existing, standing = _meeting_active_runs(checked, replayed=replayed)
    return DryRunPlan(
        request=checked,
        outcome=outcome,
        existing_run=existing,
        queued_behind=standing.ahead if standing else (),
        queue_position=standing.position if standing else None,
        symbols=fetches,
        skipped_fresh=plan.fresh_symbols,
        provider=provider.name,
        provider_calls=estimate.calls,
        credits=estimate.credits,
        credit_minutes=estimate.minutes,
        credits_left_today=budget.today,
        symbols_not_fetched_today=estimate.not_fetched_today,
        calculations=_calculation_names(targets),
        portfolios=_portfolio_count(targets),
        portfolios_only_if_changed=plan.only_changed,
        apply_rebalancing=plan.apply_rebalancing,
        expected_duration_seconds=expected,
        estimated_completion=(
            checked.run_at + timedelta(seconds=expected)
            if outcome == SCHEDULE and checked.run_at
            else _estimated_completion(existing, standing)
        ),
    )


def _symbol_fetches(plan: RefreshPlan) -> list[SymbolFetch]:
    """Each symbol asked for, in the plan's order (most important first), with what is asked."""
    quotes = set(plan.quote_symbols)
    ranges: dict[str, tuple[date, date]] = {}
    for request in plan.history:
        for symbol in request.symbols:
            start, end = ranges.get(symbol, (request.start, request.end))
            ranges[symbol] = (min(start, request.start), max(end, request.end))
    order = list(dict.fromkeys([*plan.quote_symbols, *ranges]))
    return [
        SymbolFetch(
            symbol=symbol,
            quote=symbol in quotes,
            history_start=ranges[symbol][0] if symbol in ranges else None,
            history_end=ranges[symbol][1] if symbol in ranges else None,
        )
        for symbol in order
    ]


def _calculation_names(targets: CalculationTargets | None) -> list[str]:
    """The calculations in the order the run does them."""
    if targets is None:
        return []
    done = {
        "signals": targets.signals,
        "strategies": targets.strategies,
        "metrics": targets.metrics,
        "comparisons": targets.comparisons,
    }
    return [name for name, does in done.items() if does]


def _portfolio_count(targets: CalculationTargets | None) -> int:
    """Portfolios any calculation would recalculate (metrics, strategy or benchmark comparison)."""
    if targets is None:
        return 0
    portfolios: set[int] = set()
    if targets.metrics or targets.strategies:
        portfolios.update(existing_portfolio_ids(portfolio_ids=targets.portfolio_ids))
    if targets.comparisons:
        portfolios.update(existing_portfolio_ids(portfolio_ids=targets.comparison_ids))
    return len(portfolios)


def _meeting_active_runs(
    checked: CheckedRequest, *, replayed: RefreshRun | None
) -> tuple[str, RefreshRun | None, QueueStanding | None]:
    """Whether the request would replay, join, queue or start, as ``request_refresh`` decides, and
    where a new run would stand. An identical run whose worker is lost would be failed, not joined."""
    if replayed is not None:
        return REPLAY, replayed, queue_standing(replayed) if replayed.status == RunStatus.QUEUED else None
    identical = active_runs_with_key(checked.dedup_key).first()
    if identical is not None and not worker_lost(identical):
        return JOIN, identical, queue_standing(identical) if identical.status == RunStatus.QUEUED else None
    standing = standing_of_new_run(
        scope=checked.scope,
        priority=checked.priority,
        kind=checked.kind,
        mode=checked.mode,
        exclude=identical.pk if identical is not None else None,
    )
    return (QUEUE if standing.ahead else START), None, standing


def _estimated_completion(existing: RefreshRun | None, standing: QueueStanding | None) -> datetime | None:
    """When the run the request would get should finish; None for a finished run it would replay."""
    if standing is not None:
        return standing.estimated_completion
    if existing is None or existing.is_finished:
        return None
    return current_eta(existing)
