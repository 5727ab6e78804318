"""What the admin's refresh buttons offer a user, and how a click becomes a run and a message.

Visibility asks the same access rules the service enforces; the click itself goes through
``request_refresh`` (permissions, rate limits, dedup), so a forged POST is refused there. A full
refresh is first shown as its dry run's plan (``plan_refresh``, refused exactly as the click
would be) on a page whose button confirms it.
"""

from django.contrib import messages
from django.urls import reverse
from django.utils.html import format_html

from refresh.errors import RefreshError
from refresh.models import RefreshKind, RefreshMode, RefreshRun, RunSource
from refresh.services import access
from refresh.services.requests import request_refresh

# The kinds the runs list offers; a portfolio refresh starts from a portfolio or user page.
LIST_KINDS = (RefreshKind.ALL, RefreshKind.PRICES, RefreshKind.STRATEGY, RefreshKind.BENCHMARK)


def allowed_modes(user) -> list[tuple[str, str]]:
    """Modes this user may pick, incremental (the default) first."""
    modes: list[tuple[str, str]] = [(RefreshMode.INCREMENTAL, "Incremental"), (RefreshMode.SMART, "Smart")]
    if access.has_capability(user, access.USE_FULL_MODE):
        modes.append((RefreshMode.FULL, "Full"))
    return modes


def list_buttons(user) -> list[tuple[str, str]]:
    """(kind, label) of each "Refresh now" button this user may press on the runs list."""
    return [
        (kind, RefreshKind(kind).label)
        for kind in LIST_KINDS
        if access.may_request_kind(user=user, kind=kind, target_user_id=None)
    ]


def may_refresh_portfolio(user, *, target_user_id: int) -> bool:
    return access.may_request_kind(user=user, kind=RefreshKind.PORTFOLIO, target_user_id=target_user_id)


def run_link(run: RefreshRun) -> str:
    url = reverse("admin:refresh_refreshrun_change", args=[run.pk])
    return format_html('<a href="{}">{}</a>', url, run.refresh_id)


def needs_confirmation(mode: str) -> bool:
    """A full refresh backfills every history and spends the most credits: its plan is shown first."""
    return mode == RefreshMode.FULL


def plan_refresh_from_admin(request, *, kind: str, mode: str, target_user_id: int | None = None) -> dict | None:
    """The dry run's plan as the API renders it, or None after an error message for a refusal the
    operator can act on (bad input); PermissionDenied propagates, so the admin answers 403."""
    # Planning loads the run path and DRF; here, not at import, which every process's set-up pays.
    from refresh.api.serializers import RefreshPlanSerializer  # noqa: PLC0415
    from refresh.services.dry_run import plan_refresh  # noqa: PLC0415

    try:
        plan = plan_refresh(kind=kind, mode=mode, target_user_id=target_user_id, requested_by=request.user)
    except RefreshError as exc:
        messages.error(request, f"Refresh refused ({exc.code}): {exc.message}")
        return None
    return dict(RefreshPlanSerializer(plan).data)


def start_refresh_from_admin(request, *, kind: str, mode: str, target_user_id: int | None = None) -> RefreshRun | None:
    """Request the run and tell the operator what happened, linking to it.

    Refusals the operator can act on (bad input, rate limits) become an error message;
    PermissionDenied propagates, so the admin answers 403.
    """
    try:
        run, created = request_refresh(
            kind=kind, mode=mode, target_user_id=target_user_id, requested_by=request.user, source=RunSource.ADMIN
        )
    except RefreshError as exc:
        retry = getattr(exc, "retry_after", None)
        suffix = f" Try again in {retry} s." if retry else ""
        messages.error(request, f"Refresh refused ({exc.code}): {exc.message}{suffix}")
        return None
    run.refresh_from_db()  # a worker (or the inline queue) may already have moved it on
    what = f"{RefreshKind(kind).label} refresh ({mode})"
    status = run.get_status_display().lower()
    if created:
        messages.success(request, format_html("{} requested: run {}, {}.", what, run_link(run), status))
    else:
        messages.info(request, format_html("An identical {} is already {}: run {}.", what, status, run_link(run)))
    return run
