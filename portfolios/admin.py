"""Admin for portfolios and their strategies; calculated analytics are read-only."""

from django.contrib import admin, messages

from .models import (
    Allocation,
    BenchmarkComparison,
    Holding,
    Portfolio,
    PortfolioMetrics,
    RebalanceProposal,
    Signal,
    Strategy,
)
from .services.rebalance import apply_rebalances

# The fields every row of figures shares (models.FigureWindow), one group on each figures page.
FIGURE_WINDOW = (
    "return_basis",
    "window_start",
    "window_end",
    "observations",
    "periods_per_year",
    "risk_free_rate",
    "null_reasons",
)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows a refresh calculates: viewable and deletable, never edited by hand."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class HoldingInline(admin.TabularInline):
    model = Holding
    extra = 0
    raw_id_fields = ["asset"]


@admin.register(Portfolio)
class PortfolioAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "base_currency", "created_at"]
    list_filter = ["base_currency", "created_at"]
    search_fields = ["name", "owner__username", "owner__email"]
    list_select_related = ["owner"]
    raw_id_fields = ["owner"]
    inlines = [HoldingInline]
    change_form_template = "admin/portfolios/portfolio/change_form.html"  # with the value chart

    def change_view(self, request, object_id, form_url="", extra_context=None):
        from .charts import value_chart  # noqa: PLC0415 - numpy loads for the page, not at every set-up

        chart = value_chart(portfolio_id=int(object_id)) if str(object_id).isdigit() else None
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), "value_chart": chart})


@admin.register(Holding)
class HoldingAdmin(admin.ModelAdmin):
    list_display = ["portfolio", "asset", "quantity", "cost_basis"]
    list_filter = ["asset__asset_class"]
    search_fields = ["asset__symbol", "portfolio__name", "portfolio__owner__username"]
    list_select_related = ["portfolio__owner", "asset"]
    raw_id_fields = ["portfolio", "asset"]


@admin.register(Strategy)
class StrategyAdmin(admin.ModelAdmin):
    list_display = ["portfolio", "signal_rule", "tilt", "rebalance_threshold"]
    list_filter = ["signal_rule"]
    search_fields = ["portfolio__name", "portfolio__owner__username"]
    list_select_related = ["portfolio__owner"]
    raw_id_fields = ["portfolio"]
    actions = ["apply_proposed_trades"]

    @admin.action(description="Apply proposed rebalance trades", permissions=["change"])
    def apply_proposed_trades(self, request, queryset):
        applied = apply_rebalances(strategy_ids=list(queryset.values_list("id", flat=True)))
        self.message_user(request, f"Applied {applied} proposed trade(s).", messages.SUCCESS)


@admin.register(Signal)
class SignalAdmin(ReadOnlyAdmin):
    list_display = ["asset", "action", "strength", "trend", "momentum", "as_of", "calculated_at"]
    list_filter = ["action", "as_of"]
    search_fields = ["asset__symbol", "asset__name"]
    list_select_related = ["asset"]


@admin.register(Allocation)
class AllocationAdmin(ReadOnlyAdmin):
    list_display = ["strategy", "asset", "target_weight", "tilted_weight", "current_weight", "calculated_at"]
    search_fields = ["asset__symbol", "strategy__portfolio__name"]
    list_select_related = ["strategy__portfolio__owner", "asset"]


@admin.register(RebalanceProposal)
class RebalanceProposalAdmin(ReadOnlyAdmin):
    list_display = [
        "strategy",
        "asset",
        "status",
        "quantity",
        "price",
        "value",
        "current_weight",
        "target_weight",
        "created_at",
        "applied_at",
        "refresh_id",
    ]
    list_filter = ["status", "created_at"]
    search_fields = ["asset__symbol", "strategy__portfolio__name", "refresh_id"]
    list_select_related = ["strategy__portfolio__owner", "asset"]
    date_hierarchy = "created_at"


@admin.register(PortfolioMetrics)
class PortfolioMetricsAdmin(ReadOnlyAdmin):
    list_display = [
        "portfolio",
        "as_of",
        "market_value",
        "unrealised_pnl",
        "return_1y",
        "annualised_return",
        "volatility",
        "sharpe",
        "sortino",
        "max_drawdown",
        "calmar",
        "observations",
        "calculated_at",
    ]
    list_filter = ["as_of", "return_basis"]
    search_fields = ["portfolio__name", "portfolio__owner__username"]
    list_select_related = ["portfolio__owner"]
    fieldsets = [
        (None, {"fields": ["portfolio", "as_of", "calculated_at"]}),
        (
            "Valuation (priced holdings only)",
            {"fields": ["market_value", "cost", "unrealised_pnl", "unpriced_holdings", "weights"]},
        ),
        ("Period returns", {"fields": ["return_1d", "return_1m", "return_ytd", "return_1y", "period_starts"]}),
        (
            "Over the window",
            {
                "fields": [
                    "cumulative_return",
                    "annualised_return",
                    "volatility",
                    "downside_deviation",
                    "sharpe",
                    "sortino",
                    "max_drawdown",
                    "max_drawdown_peak",
                    "max_drawdown_trough",
                    "max_drawdown_recovery",
                    "calmar",
                ]
            },
        ),
        ("Window, conventions and null figures", {"fields": list(FIGURE_WINDOW)}),
    ]


@admin.register(BenchmarkComparison)
class BenchmarkComparisonAdmin(ReadOnlyAdmin):
    list_display = [
        "portfolio",
        "benchmark_symbol",
        "return_basis",
        "as_of",
        "excess_return_1y",
        "beta",
        "alpha",
        "correlation",
        "tracking_error",
        "information_ratio",
        "observations",
        "calculated_at",
    ]
    list_filter = ["benchmark_symbol", "return_basis", "as_of"]
    search_fields = ["portfolio__name", "portfolio__owner__username"]
    list_select_related = ["portfolio__owner"]
    fieldsets = [
        (None, {"fields": ["portfolio", "benchmark_symbol", "as_of", "calculated_at"]}),
        (
            "Period returns",
            {
                "fields": [
                    "benchmark_return_1d",
                    "benchmark_return_1m",
                    "benchmark_return_ytd",
                    "benchmark_return_1y",
                    "excess_return_1y",
                    "excess_return_ytd",
                ]
            },
        ),
        (
            "Over the window's days the benchmark traded",
            {"fields": ["beta", "alpha", "correlation", "tracking_error", "information_ratio", "asset_correlations"]},
        ),
        ("Window, conventions and null figures", {"fields": list(FIGURE_WINDOW)}),
    ]
