"""Who may start, see and cancel which refresh: roles from groups, capabilities from permissions.

Roles are the groups ``admin``, ``support`` and ``system`` (migration 0003); superusers are
admins and anyone else is a ``user``. Capabilities are the custom permissions declared on
RefreshRun, granted by those groups, so an operator changes a role in the admin, not here.
The system itself (a schedule, a webhook, the command without ``--as-user``: requester None)
has exactly the ``system`` group's permissions.
"""
from django.contrib.auth.models import Permission
from django.core.exceptions import PermissionDenied

from refresh.models import RefreshKind, RefreshMode, Role, RunPriority

APP = "refresh"
ROLE_GROUPS = (Role.ADMIN, Role.SYSTEM, Role.SUPPORT)  # the first group a user is in decides the role

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
VIEW_ALL_RUNS = "view_all_runs"

_KIND_CAPABILITY = {
    RefreshKind.ALL: REFRESH_ALL,
    RefreshKind.PRICES: REFRESH_PRICES,
    RefreshKind.STRATEGY: REFRESH_STRATEGY,
    RefreshKind.BENCHMARK: REFRESH_BENCHMARK,
}
_PRIORITY_CAPABILITY = {RunPriority.HIGH: REQUEST_HIGH_PRIORITY, RunPriority.EMERGENCY: REQUEST_EMERGENCY}
_DEFAULT_PRIORITY = {Role.ADMIN: RunPriority.HIGH, Role.USER: RunPriority.MEDIUM,
                     Role.SUPPORT: RunPriority.MEDIUM, Role.SYSTEM: RunPriority.LOW}


def role_of(user) -> str:
    """The role a request from this user (None: the system itself) is recorded and limited under."""
    if user is None:
        return Role.SYSTEM
    if user.is_superuser:
        return Role.ADMIN
    cached = getattr(user, "_refresh_role", None)  # one query per request, like Django's permission cache
    if cached is None:
        groups = set(user.groups.filter(name__in=ROLE_GROUPS).values_list("name", flat=True))
        cached = user._refresh_role = next((role for role in ROLE_GROUPS if role in groups), Role.USER)
    return cached


def default_priority(role: str) -> int:
    """Admin high, user and support medium, system low."""
    return _DEFAULT_PRIORITY.get(role, RunPriority.LOW)


def has_capability(user, capability: str) -> bool:
    """Whether the requester holds ``refresh.<capability>``; None holds the system group's."""
    if user is None:
        return Permission.objects.filter(content_type__app_label=APP, codename=capability,
                                         group__name=Role.SYSTEM).exists()
    return user.has_perm(f"{APP}.{capability}")


def may_request_kind(*, user, kind: str, target_user_id: int | None) -> bool:
    """Whether the requester may start this kind at all (modes and priorities aside)."""
    if kind == RefreshKind.PORTFOLIO:
        own = user is not None and target_user_id is not None and int(target_user_id) == user.pk
        return own or has_capability(user, REFRESH_ANY_PORTFOLIO)
    return kind in _KIND_CAPABILITY and has_capability(user, _KIND_CAPABILITY[kind])


def check_refresh_allowed(*, user, kind: str, target_user_id: int | None, mode: str,
                          requested_priority: int | None, apply_rebalancing: bool,
                          grants: frozenset[str] = frozenset()) -> None:
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
    needed = _PRIORITY_CAPABILITY.get(requested_priority)
    if needed and needed not in grants and not has_capability(user, needed):
        raise PermissionDenied(f"Your role may not request {RunPriority(requested_priority).label} priority.")
    if apply_rebalancing and not has_capability(user, APPLY_REBALANCING):
        raise PermissionDenied("Your role may not apply rebalancing.")


def may_view_all_runs(user) -> bool:
    return has_capability(user, VIEW_ALL_RUNS)


def check_cancel_allowed(*, user, run) -> None:
    """The requester of a run may cancel it; anyone else needs cancel_any_run (admin, system).

    Support sees every run but cancels only its own: stopping someone else's refresh is an
    admin decision.
    """
    if user is not None and run.requested_by_id == user.pk:
        return
    if has_capability(user, CANCEL_ANY_RUN):
        return
    raise PermissionDenied("Only the requester of a run or an admin may cancel it.")
