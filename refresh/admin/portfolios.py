"""The portfolio admin, extended with "Refresh portfolio now" and "Refresh selected portfolios"."""

from django.contrib import admin

from portfolios.admin import PortfolioAdmin  # registers it: replaced below
from portfolios.models import Portfolio
from refresh.admin.portfolio_buttons import PortfolioRefreshAdminMixin


class PortfolioRefreshAdmin(PortfolioRefreshAdminMixin, PortfolioAdmin):
    actions = ["refresh_selected_portfolios"]


admin.site.unregister(Portfolio)
admin.site.register(Portfolio, PortfolioRefreshAdmin)
