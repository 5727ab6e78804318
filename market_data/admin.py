"""Admin for assets, their daily bars and latest quotes."""
from django.contrib import admin

from .models import Asset, PriceBar, Quote


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
