"""The user admin, extended with "Refresh portfolio now" for that user's portfolios."""

from django.contrib import admin
from django.contrib.auth import get_user_model

from refresh.admin.portfolio_buttons import PortfolioRefreshAdminMixin

User = get_user_model()
# Extend whichever user admin is registered (Django's or a project's), keeping its behaviour.
_registered = type(admin.site.get_model_admin(User))


class UserRefreshAdmin(PortfolioRefreshAdminMixin, _registered):  # type: ignore[misc,valid-type]  # base known at runtime only
    refresh_owner_field = "pk"


admin.site.unregister(User)
admin.site.register(User, UserRefreshAdmin)
