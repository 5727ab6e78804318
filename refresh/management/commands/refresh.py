"""manage.py refresh: start a refresh run from the terminal and show its progress, or with
``--dry-run`` show what it would do and start nothing.

Exit codes: 0 success (or skipped, or a dry run), 1 failed, 2 partial, 3 timeout or cancelled, 64 bad arguments.
"""

import argparse
import json
from datetime import datetime
from typing import NoReturn

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError, DjangoHelpFormatter
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from tqdm import tqdm

from refresh.errors import RefreshError
from refresh.models import RefreshKind, RefreshMode, RunPriority, RunSource, RunStatus
from refresh.selectors import wait_for_run
from refresh.services.execution import execute_run_in_process
from refresh.services.requests import request_refresh

EXIT_CODES: dict[str, int] = {
    RunStatus.SUCCESS: 0,
    RunStatus.FAILED: 1,
    RunStatus.PARTIAL: 2,
    RunStatus.TIMEOUT: 3,
    RunStatus.CANCELLED: 3,
}
USAGE_ERROR = 64
EPILOG = """output:
  a progress bar of the run's steps on stderr (none with --json);
  the final response as JSON on stdout (one line with --json);
  with --at, the scheduled run's status at once;
  --dry-run: the plan as text (as JSON with --json); nothing is started, recorded or spent.

exit codes:
  0   success (or skipped: nothing needed doing; or a dry run)
  1   failed
  2   partial: some symbols failed, the rest was saved
  3   timeout or cancelled
  64  bad arguments, refused permission or an unknown user; nothing was started
"""


def _zoned_time(value: str) -> datetime:
    """--at's ISO 8601 time, which must name its zone."""
    moment = parse_datetime(value)
    if moment is None:
        raise argparse.ArgumentTypeError(f"{value!r} is not an ISO 8601 time, e.g. 2026-12-08T02:00:00Z")
    if timezone.is_naive(moment):
        raise argparse.ArgumentTypeError("give the time with its zone, e.g. 2026-12-08T02:00:00Z")
    return moment


def plan_text(plan: dict) -> str:
    """A dry run's plan (as RefreshPlanSerializer renders it) for a person at a terminal."""
    target = f" of user {plan['target_user_id']}'s portfolios" if plan["target_user_id"] else ""
    lines = [
        "Dry run: nothing was started, recorded or spent.",
        f"{plan['kind']} refresh{target}, {plan['mode']} mode, {plan['priority']} priority.",
        _outcome_line(plan),
    ]
    symbols = plan["symbols"]
    if symbols:
        lines.append(
            f"Fetch {len(symbols)} symbols from {plan['provider']}: {plan['provider_calls']} provider calls, "
            f"{plan['credits']} credits{_budget_note(plan)}."
        )
        width = max(len(entry["symbol"]) for entry in symbols)
        for entry in symbols:
            what = ["quote"] if entry["quote"] else []
            if entry["history_start"]:
                what.append(f"history {entry['history_start']} to {entry['history_end']}")
            lines.append(f"  {entry['symbol']:<{width}}  {', '.join(what)}")
    else:
        lines.append("Fetch nothing: no provider call, no credit.")
    if plan["skipped_fresh"]:
        lines.append(f"Skipped, quote still fresh: {', '.join(plan['skipped_fresh'])}.")
    if plan["recalculates"]:
        bound = " at most: only those whose prices change" if plan["portfolios_only_if_changed"] else ""
        lines.append(f"Recalculate {', '.join(plan['recalculates'])} for {plan['portfolios']} portfolios{bound}.")
    else:
        lines.append("Recalculate nothing.")
    if plan["apply_rebalancing"]:
        lines.append("Apply the rebalance proposals to holdings.")
    eta = f"; estimated completion {plan['estimated_completion']}" if plan["estimated_completion"] else ""
    lines.append(f"Expected duration: {plan['expected_duration_seconds']:.0f} s{eta}.")
    return "\n".join(lines)


def _outcome_line(plan: dict) -> str:
    behind = ", ".join(plan["queued_behind"])
    if plan["outcome"] == "join":
        return f"Would join the identical active run {plan['refresh_id']}" + (
            f", queued behind {behind}." if behind else "."
        )
    if plan["outcome"] == "replay":
        return f"Would return run {plan['refresh_id']}, which this idempotency key started."
    if plan["outcome"] == "queue":
        return f"Would queue a new run behind {behind} (position {plan['queue_position']})."
    if plan["outcome"] == "schedule":
        return "Would record a deferred run, entering the queue at its time."
    return "Would start a new run: no conflicting run is active."


def _budget_note(plan: dict) -> str:
    notes = []
    if plan["credit_minutes"] > 1:
        notes.append(f"over {plan['credit_minutes']} minutes of the per-minute budget")
    if plan["credits_left_today"] is not None:
        notes.append(f"{plan['credits_left_today']} left today")
    if plan["symbols_not_fetched_today"]:
        notes.append(f"{plan['symbols_not_fetched_today']} symbol requests beyond today's credits")
    return f" ({'; '.join(notes)})" if notes else ""


class _HelpFormatter(DjangoHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Django's option order, with the epilog's lines kept as written."""


class ProgressBar:
    """A tqdm bar on stderr that follows a run's progress and current step."""

    def __init__(self, *, enabled: bool) -> None:
        self.bar = tqdm(total=100, unit="%", disable=not enabled, leave=False, bar_format="{desc:<28} {bar} {n_fmt}%")

    def __call__(self, run):
        self.bar.set_description_str(run.current_step[:28], refresh=False)
        self.bar.n = int(run.progress * 100)
        self.bar.refresh()  # now, not when tqdm's rate limit next allows: each step name shows

    def close(self):
        self.bar.close()


class Command(BaseCommand):
    help = "Start a refresh run (in this process by default, or on the workers with --queue)."

    def create_parser(self, prog_name, subcommand, **kwargs):
        parser = super().create_parser(prog_name, subcommand, epilog=EPILOG, formatter_class=_HelpFormatter, **kwargs)
        argparse_exit = parser.exit

        def exit_with_usage_code(status: int = 0, message: str | None = None) -> NoReturn:
            # argparse exits 2 on bad arguments, which here means "partial": use 64 (EX_USAGE).
            argparse_exit(USAGE_ERROR if status else 0, message)

        parser.exit = exit_with_usage_code  # type: ignore[method-assign]  # argparse has no hook for this status
        return parser

    def add_arguments(self, parser):
        kind = parser.add_mutually_exclusive_group(required=True)
        kind.add_argument("--all", action="store_const", dest="kind", const=RefreshKind.ALL)
        kind.add_argument("--prices", action="store_const", dest="kind", const=RefreshKind.PRICES)
        kind.add_argument("--portfolio", type=int, metavar="USER_ID", help="Refresh this user's portfolios.")
        kind.add_argument("--strategy", action="store_const", dest="kind", const=RefreshKind.STRATEGY)
        kind.add_argument("--benchmark", action="store_const", dest="kind", const=RefreshKind.BENCHMARK)
        parser.add_argument("--mode", choices=RefreshMode.values, default=RefreshMode.INCREMENTAL)
        parser.add_argument("--priority", choices=[p.label for p in RunPriority])
        parser.add_argument("--symbols", help="Prices only: comma-separated symbols.")
        parser.add_argument("--apply-rebalancing", action="store_true")
        parser.add_argument("--as-user", metavar="USERNAME", help="Act as this user instead of the system.")
        parser.add_argument("--queue", action="store_true", help="Hand the run to the workers and follow it.")
        parser.add_argument("--detach", action="store_true", help="With --queue: print the queued run and exit.")
        parser.add_argument(
            "--at",
            type=_zoned_time,
            metavar="TIME",
            help="Defer the run to this ISO 8601 time with its zone (within 7 days): print the scheduled run and exit.",
        )
        parser.add_argument("--json", action="store_true", help="Print only the JSON response, no progress bar.")
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Print what the run would fetch, spend and recalculate, and start nothing.",
        )

    def handle(self, *args, **options):
        # Planning and DRF load for a run, not for --help or a refused argument (start-up time).
        from refresh.api.serializers import RefreshPlanSerializer, run_status  # noqa: PLC0415
        from refresh.services.dry_run import plan_refresh  # noqa: PLC0415

        kind = RefreshKind.PORTFOLIO if options["portfolio"] is not None else options["kind"]
        if options["dry_run"] and options["queue"]:
            raise CommandError("--dry-run starts nothing to queue or follow.", returncode=USAGE_ERROR)
        user = self._user(options["as_user"])
        request = {
            "kind": kind,
            "requested_by": user,
            "mode": options["mode"],
            "priority": options["priority"],
            "target_user_id": options["portfolio"],
            "symbols": [s for s in (options["symbols"] or "").split(",") if s.strip()],
            "apply_rebalancing": options["apply_rebalancing"],
            "run_at": options["at"],
        }
        try:
            if options["dry_run"]:
                data = RefreshPlanSerializer(plan_refresh(**request)).data
                self.stdout.write(json.dumps(data) if options["json"] else plan_text(data))
                return
            run, _ = request_refresh(source=RunSource.COMMAND, enqueue=options["queue"], **request)
        except (RefreshError, PermissionDenied) as exc:
            raise CommandError(str(exc), returncode=USAGE_ERROR) from exc
        if run.status != RunStatus.SCHEDULED and not (options["queue"] and options["detach"]):
            bar = ProgressBar(enabled=not options["json"])
            try:
                if options["queue"]:
                    run = wait_for_run(run=run, listener=bar, poll=0.5)
                else:
                    run = execute_run_in_process(run=run, listener=bar)
                bar(run)  # the final state: the workers report it to no listener
            finally:
                bar.close()
        self.stdout.write(json.dumps(run_status(run), indent=None if options["json"] else 2))
        code = EXIT_CODES.get(run.status, 0)
        if code:
            raise SystemExit(code)

    def _user(self, username):
        if not username:
            return None
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named {username!r}.", returncode=USAGE_ERROR)
        return user
