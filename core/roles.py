"""Who a user is to the service: a role from the groups ``admin``, ``support`` and ``system``.

Superusers are admins and anyone in none of the groups is a ``user``; a request without a user
(a schedule, a webhook, a command) is the system. What a role may do is each app's business
(refresh/services/access.py), granted through the groups' permissions.
"""

from django.db import models


class Role(models.TextChoices):
    ADMIN = "admin", "Admin"
    USER = "user", "User"
    SUPPORT = "support", "Support"
    SYSTEM = "system", "System"


ROLE_GROUPS = (Role.ADMIN, Role.SYSTEM, Role.SUPPORT)  # the first group a user is in decides the role


def role_of(user) -> str:
    """The role a request from this user (None: the system itself) is recorded and limited under."""
    if user is None:
        return Role.SYSTEM
    if user.is_superuser:
        return Role.ADMIN
    cached = getattr(user, "_role", None)  # one query per request, like Django's permission cache
    if cached is None:
        groups = set(user.groups.filter(name__in=ROLE_GROUPS).values_list("name", flat=True))
        cached = user._role = next((role for role in ROLE_GROUPS if role in groups), Role.USER)  # noqa: SLF001
    return cached
