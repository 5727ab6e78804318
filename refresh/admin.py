"""Admin pages for refresh runs and their steps (read-only records)."""
from django.contrib import admin

from refresh.models import RefreshRun, RefreshStep, ScopeLease


class RefreshStepInline(admin.TabularInline):
    model = RefreshStep
    extra = 0
    can_delete = False
    fields = ["position", "name", "status", "started_at", "duration_ms", "counts", "message"]
    readonly_fields = fields


@admin.register(RefreshRun)
class RefreshRunAdmin(admin.ModelAdmin):
    list_display = ["refresh_id", "kind", "mode", "status", "priority", "source", "requested_by", "progress",
                    "current_step", "created_at", "duration_ms", "provider_calls"]
    list_filter = ["status", "kind", "mode", "source", "priority", "requested_role"]
    search_fields = ["refresh_id", "requested_by__username", "target_user__username"]
    date_hierarchy = "created_at"
    list_select_related = ["requested_by"]
    inlines = [RefreshStepInline]
    readonly_fields = [f.name for f in RefreshRun._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(ScopeLease)
class ScopeLeaseAdmin(admin.ModelAdmin):
    list_display = ["scope", "run", "expires_at"]
    readonly_fields = ["scope", "run", "expires_at"]

    def has_add_permission(self, request):
        return False
