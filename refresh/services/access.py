"""Who may start, see and cancel which refresh: capabilities from permissions, per role.

Roles come from groups (core/roles.py). Capabilities are the custom permissions declared on
RefreshRun, granted to the role groups (migration 0003), so an operator changes a role in the
admin, not here. The system itself (a schedule, a webhook, the command without ``--as-user``:
requester None) has exactly the ``system`` group's permissions.
"""

from typing import TypeAlias

from django.contrib.auth.models import AnonymousUser, Permission, User
from django.core.exceptions import PermissionDenied

from core.roles import Role
from refresh.models import RefreshKind, RefreshMode, RefreshRun, RunPriority

# Who asks: the request's user (an API view or the admin; the user model is Django's), or None for
# the system itself.
Requester: TypeAlias = User | AnonymousUser | None

APP = "refresh"

REFRESH_ALL = "refresh_all"
REFRESH_PRICES = "refresh_prices"
REFRESH_ANY_PORTFOLIO = "refresh_any_portfolio"
REFRESH_STRATEGY = "refresh_strategy"
REFRESH_BENCHMARK = "refresh_benchmark"
USE_FULL_MODE = "use_full_mode"
REQUEST_HIGH_PRIORITY = "request_high_priority"
REQUEST_EMERGENCY = "request_emergency"
APPLY_REBALANCING = "apply_rebalancing"
CANCEL_ANY_RUN = "cancel_any_run"
DEFER_RUNS = "defer_runs"
VIEW_ALL_RUNS = "view_all_runs"

_KIND_CAPABILITY: dict[str, str] = {
    RefreshKind.ALL: REFRESH_ALL,
    RefreshKind.PRICES: REFRESH_PRICES,
    RefreshKind.STRATEGY: REFRESH_STRATEGY,
    RefreshKind.BENCHMARK: REFRESH_BENCHMARK,
}
_PRIORITY_CAPABILITY: dict[int, str] = {
    RunPriority.HIGH: REQUEST_HIGH_PRIORITY,
    RunPriority.EMERGENCY: REQUEST_EMERGENCY,
}
_DEFAULT_PRIORITY: dict[str, int] = {
    Role.ADMIN: RunPriority.HIGH,
    Role.USER: RunPriority.MEDIUM,
    Role.SUPPORT: RunPriority.MEDIUM,
    Role.SYSTEM: RunPriority.LOW,
}


def default_priority(role: str) -> int:
    """Admin high, user and support medium, system low."""
    return _DEFAULT_PRIORITY.get(role, RunPriority.LOW)


def has_capability(user: Requester, capability: str) -> bool:
    """Whether the requester holds ``refresh.<capability>``; None holds the system group's."""
    if user is None:
        return Permission.objects.filter(
            content_type__app_label=APP, codename=capability, group__name=Role.SYSTEM
        ).exists()
    return user.has_perm(f"{APP}.{capability}")


def may_request_kind(*, user: Requester, kind: str, target_user_id: int | None) -> bool:
    """Whether the requester may start this kind at all (modes and priorities aside)."""
    if kind == RefreshKind.PORTFOLIO:
        own = user is not None and target_user_id is not None and int(target_user_id) == user.pk
        return own or has_capability(user, REFRESH_ANY_PORTFOLIO)
    return kind in _KIND_CAPABILITY and has_capability(user, _KIND_CAPABILITY[kind])


def check_refresh_allowed(
    *,
    user: Requester,
    kind: str,
    target_user_id: int | None,
    mode: str,
    requested_priority: int | None,
    apply_rebalancing: bool,
    grants: frozenset[str] = frozenset(),
) -> None:
    """Raise PermissionDenied unless this requester may start this refresh.

    A role's default priority is always allowed; only an explicitly requested high or
    emergency priority needs its capability. ``grants`` are capabilities the trigger itself
    carries (a webhook source allowed emergency), on top of the requester's.
    """
    if not may_request_kind(user=user, kind=kind, target_user_id=target_user_id):
        if kind == RefreshKind.PORTFOLIO:
            raise PermissionDenied("You may only refresh your own portfolio.")
        raise PermissionDenied(f"Your role may not start a {kind} refresh.")
    if mode == RefreshMode.FULL and not has_capability(user, USE_FULL_MODE):
        raise PermissionDenied("Your role may not request full mode; use incremental or smart.")
    if requested_priority is not None:
        check_priority_allowed(user=user, priority=requested_priority, grants=grants)
    if apply_rebalancing and not has_capability(user, APPLY_REBALANCING):
        raise PermissionDenied("Your role may not apply rebalancing.")


def check_priority_allowed(*, user: Requester, priority: int, grants: frozenset[str] = frozenset()) -> None:
    """Raise PermissionDenied unless this requester may ask for this priority (high and emergency
    need their capability)."""
    needed = _PRIORITY_CAPABILITY.get(priority)
    if needed and needed not in grants and not has_capability(user, needed):
        raise PermissionDenied(f"Your role may not request {RunPriority(priority).label} priority.")


def check_defer_allowed(*, user: Requester, grants: frozenset[str] = frozenset()) -> None:
    """Deferring a run to a later time is for admins and the system (defer_runs)."""
    if DEFER_RUNS not in grants and not has_capability(user, DEFER_RUNS):
        raise PermissionDenied("Your role may not defer a run; start it now instead.")


def may_view_all_runs(user: Requester) -> bool:
    return has_capability(user, VIEW_ALL_RUNS)


def check_cancel_allowed(*, user: Requester, run: RefreshRun, action: str = "cancel") -> None:
    """The requester of a run may cancel (or reprioritise) it; anyone else needs cancel_any_run
    (admin, system).

    Support sees every run but changes only its own: stopping or reordering someone else's
    refresh is an admin decision.
    """
    if user is not None and run.requested_by_id == user.pk:
        return
    if has_capability(user, CANCEL_ANY_RUN):
        return
    raise PermissionDenied(f"Only the requester of a run or an admin may {action} it.")
