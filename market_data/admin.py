"""Admin for assets, their daily bars and latest quotes, price anomalies and provider use."""

from django.contrib import admin

from .models import Asset, PriceAnomaly, PriceBar, ProviderUsage, Quote


@admin.register(Asset)
class AssetAdmin(admin.ModelAdmin):
    """Instruments; deactivate one to stop refreshing it."""

    list_display = ["symbol", "name", "exchange", "currency", "asset_class", "is_active"]
    list_filter = ["is_active", "asset_class", "exchange", "currency"]
    list_editable = ["is_active"]
    search_fields = ["symbol", "name"]


@admin.register(PriceBar)
class PriceBarAdmin(admin.ModelAdmin):
    """Daily bars; a large table, so no full count and the asset joined in one query."""

    list_display = ["asset", "date", "open", "high", "low", "close", "volume"]
    list_filter = ["asset__asset_class"]
    list_select_related = ["asset"]
    search_fields = ["asset__symbol"]
    date_hierarchy = "date"
    ordering = ["-date", "asset__symbol"]
    autocomplete_fields = ["asset"]
    show_full_result_count = False


@admin.register(Quote)
class QuoteAdmin(admin.ModelAdmin):
    """Latest quotes and when each was fetched."""

    list_display = ["asset", "price", "previous_close", "change", "as_of", "fetched_at", "source"]
    list_filter = ["source", "asset__asset_class"]
    list_select_related = ["asset"]
    search_fields = ["asset__symbol", "asset__name"]
    date_hierarchy = "fetched_at"
    ordering = ["asset__symbol"]
    autocomplete_fields = ["asset"]


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records the refresh writes; people only read them."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(PriceAnomaly)
class PriceAnomalyAdmin(ReadOnlyAdmin):
    """Suspicious prices the provider sent, for review; quarantined ones were not applied."""

    list_display = ["detected_at", "symbol", "kind", "observed_on", "value", "reference", "quarantined", "refresh_id"]
    list_filter = ["kind", "quarantined", "source"]
    search_fields = ["symbol", "refresh_id", "message"]
    date_hierarchy = "detected_at"


@admin.register(ProviderUsage)
class ProviderUsageAdmin(ReadOnlyAdmin):
    """Provider calls and credits per UTC day."""

    list_display = ["day", "provider", "calls", "credits"]
    list_filter = ["provider"]
    date_hierarchy = "day"
