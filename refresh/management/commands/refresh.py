"""manage.py refresh: start a refresh run from the terminal and show its progress.

Exit codes: 0 success (or skipped), 1 failed, 2 partial, 3 timeout or cancelled, 64 bad arguments.
"""

import argparse
import json
from typing import NoReturn

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError, DjangoHelpFormatter
from tqdm import tqdm

from refresh.api.serializers import RunStatusSerializer
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
  the final response as JSON on stdout (one line with --json).

exit codes:
  0   success (or skipped: nothing needed doing)
  1   failed
  2   partial: some symbols failed, the rest was saved
  3   timeout or cancelled
  64  bad arguments, refused permission or an unknown user; nothing was started
"""


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
        parser.add_argument("--json", action="store_true", help="Print only the JSON response, no progress bar.")

    def handle(self, *args, **options):
        kind = RefreshKind.PORTFOLIO if options["portfolio"] is not None else options["kind"]
        user = self._user(options["as_user"])
        symbols = [s for s in (options["symbols"] or "").split(",") if s.strip()]
        try:
            run, _ = request_refresh(
                kind=kind,
                requested_by=user,
                source=RunSource.COMMAND,
                mode=options["mode"],
                priority=options["priority"],
                target_user_id=options["portfolio"],
                symbols=symbols,
                apply_rebalancing=options["apply_rebalancing"],
                enqueue=options["queue"],
            )
        except (RefreshError, PermissionDenied) as exc:
            raise CommandError(str(exc), returncode=USAGE_ERROR) from exc
        if not (options["queue"] and options["detach"]):
            bar = ProgressBar(enabled=not options["json"])
            try:
                if options["queue"]:
                    run = wait_for_run(run=run, listener=bar, poll=0.5)
                else:
                    run = execute_run_in_process(run=run, listener=bar)
                bar(run)  # the final state: the workers report it to no listener
            finally:
                bar.close()
        self.stdout.write(json.dumps(RunStatusSerializer(run).data, indent=None if options["json"] else 2))
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
