"""DRF permission classes for the refresh API; they ask core.roles and refresh.services.access, never decide."""

from rest_framework.permissions import SAFE_METHODS, BasePermission

from core.roles import Role, role_of
from refresh.services import access


class _HasRole(BasePermission):
    role: str
    message = "Your role may not do this."

    def has_permission(self, request, view):
        user = request.user
        return bool(user and user.is_authenticated and role_of(user) == self.role)


class IsAdminRole(_HasRole):
    """Superusers and members of the admin group."""

    role = Role.ADMIN


class IsSupportRole(_HasRole):
    """Members of the support group."""

    role = Role.SUPPORT


class IsSystemRole(_HasRole):
    """Service accounts in the system group."""

    role = Role.SYSTEM


class CanRequestRefresh(BasePermission):
    """Starting the view's kind (for its target user) needs that capability; reading does not.

    Modes, priorities and rebalancing are checked by the service, which sees the body.
    """

    message = "Your role may not start this refresh."

    def has_permission(self, request, view):
        if request.method in SAFE_METHODS:
            return True
        return access.may_request_kind(
            user=request.user, kind=view.kind, target_user_id=view.kwargs.get("target_user_id")
        )
