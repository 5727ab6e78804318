"""Who may start which refresh, and in which role a request is recorded.

Until roles and per-capability permissions land, the rule is the foundation's: staff may
do everything, any other authenticated user may refresh only their own portfolio.
"""
from django.core.exceptions import PermissionDenied

from refresh.models import RefreshKind, Role, RunPriority


def role_of(user) -> str:
    """The role a request from this user (None: the system itself) is recorded under."""
    if user is None:
        return Role.SYSTEM
    if user.is_superuser or user.is_staff:
        return Role.ADMIN
    return Role.USER


def default_priority(role: str) -> int:
    return {Role.ADMIN: RunPriority.HIGH, Role.USER: RunPriority.MEDIUM}.get(role, RunPriority.LOW)


def check_refresh_allowed(*, user, role: str, kind: str, target_user_id: int | None, priority: int,
                          apply_rebalancing: bool) -> None:
    """Raise PermissionDenied unless this requester may start this refresh."""
    if role in (Role.ADMIN, Role.SYSTEM):
        return
    if kind != RefreshKind.PORTFOLIO or target_user_id != user.pk:
        raise PermissionDenied("You may only refresh your own portfolio.")
    if priority > RunPriority.MEDIUM:
        raise PermissionDenied("Your role may not request this priority.")
    if apply_rebalancing:
        raise PermissionDenied("Your role may not apply rebalancing.")


def can_view_run(*, user, run) -> bool:
    """Staff see every run; a user sees the runs they asked for or that target them."""
    if user.is_staff or user.is_superuser:
        return True
    return run.requested_by_id == user.pk or run.target_user_id == user.pk


def check_cancel_allowed(*, user, run) -> None:
    """The requester of a run or an admin may cancel it; the system (None) always may."""
    if user is None or role_of(user) == Role.ADMIN or run.requested_by_id == user.pk:
        return
    raise PermissionDenied("Only the requester of a run or an admin may cancel it.")
