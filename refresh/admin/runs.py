"""The refresh runs admin: the list with "Refresh now", the run page with its timeline, the dashboard."""

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.views.decorators.http import require_POST

from refresh.admin import display
from refresh.admin.buttons import (
    LIST_KINDS,
    allowed_modes,
    list_buttons,
    needs_confirmation,
    plan_refresh_from_admin,
    start_refresh_from_admin,
)
from refresh.dashboard import active_run_count, dashboard_data
from refresh.errors import RefreshError, RunNotCancellable
from refresh.models import (
    UNFINISHED_STATUSES,
    RefreshKind,
    RefreshMode,
    RefreshRun,
    RunPriority,
    RunSource,
    RunStatus,
    ScopeLease,
)
from refresh.selectors import runs_visible_to
from refresh.services import access
from refresh.services.execution import cancel_run
from refresh.services.run_control import RETRYABLE_STATUSES, reprioritise_run, retry_run

AUTORELOAD_SECONDS = 3


class KindFilter(admin.SimpleListFilter):
    """By kind, with the "all" kind named so it is not mistaken for the filter's own "All"."""

    title = "kind"
    parameter_name = "kind"

    def lookups(self, request, model_admin):
        return [(kind, "All (everything)" if kind == RefreshKind.ALL else label) for kind, label in RefreshKind.choices]

    def queryset(self, request, queryset):
        return queryset.filter(kind=self.value()) if self.value() else queryset


class DeferredFilter(admin.SimpleListFilter):
    """Runs deferred to a later time (``run_at``): still scheduled, or since started."""

    title = "deferred"
    parameter_name = "deferred"

    def lookups(self, request, model_admin):
        return [("scheduled", "Waiting for their time"), ("all", "All deferred runs")]

    def queryset(self, request, queryset):
        if self.value() == "scheduled":
            return queryset.filter(status=RunStatus.SCHEDULED)
        if self.value() == "all":
            return queryset.filter(run_at__isnull=False)
        return queryset


@admin.register(RefreshRun)
class RefreshRunAdmin(admin.ModelAdmin):
    """Runs are records: viewed, started and cancelled here, never edited."""

    list_display = [
        "refresh_id",
        "status_badge",
        "progress_bar",
        "duration",
        "kind",
        "mode",
        "priority_label",
        "source",
        "requester",
        "created_at",
    ]
    list_filter = ["status", DeferredFilter, KindFilter, "mode", "priority", "source", "requested_role"]
    search_fields = ["refresh_id", "requested_by__username", "target_user__username"]
    search_help_text = "A run id (or part of one), or the username of its requester or target."
    date_hierarchy = "created_at"
    list_select_related = ["requested_by", "target_user"]
    change_list_template = "admin/refresh/refreshrun/change_list.html"
    change_form_template = "admin/refresh/refreshrun/change_form.html"
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "refresh_id",
                    "status_badge",
                    "progress_bar",
                    "current_step",
                    "kind",
                    "mode",
                    "priority_label",
                    "params",
                    "scope",
                    "retry_of",
                ]
            },
        ),
        ("Who", {"fields": ["requester", "requested_role", "source", "target_user"]}),
        (
            "When",
            {
                "fields": [
                    "created_at",
                    "started_at",
                    "finished_at",
                    "duration",
                    "run_at",
                    "estimated_completion",
                    "cancel_requested_at",
                    "worker",
                ]
            },
        ),
        ("Outcome", {"fields": ["items_updated", "provider_calls", "credits_used", "anomalies", "cache_impact"]}),
    ]
    readonly_fields = ["status_badge", "progress_bar", "priority_label", "requester", "duration"]
    actions = ["cancel_selected_runs"]

    class Media:
        css = {"all": ["refresh/admin/refresh.css"]}
        js = ["refresh/admin/autoreload.js"]

    # --- permissions: runs are written by the services only ---------------------------
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return runs_visible_to(user=request.user)

    # --- columns ------------------------------------------------------------------------
    @admin.display(description="status", ordering="status")
    def status_badge(self, run):
        return display.status_badge(run.status)

    @admin.display(description="progress", ordering="progress")
    def progress_bar(self, run):
        return display.progress_bar(progress=run.progress, status=run.status)

    @admin.display(description="priority", ordering="priority")
    def priority_label(self, run):
        return RunPriority(run.priority).label

    @admin.display(description="requester", ordering="requested_by__username")
    def requester(self, run):
        return run.requested_by.get_username() if run.requested_by else f"({run.requested_role})"

    @admin.display(description="duration", ordering="duration_ms")
    def duration(self, run):
        return display.run_duration(run)

    # --- pages --------------------------------------------------------------------------
    def get_urls(self):
        view = self.admin_site.admin_view
        return [  # ours first: "<path:object_id>/" is greedy
            path("refresh-now/", view(require_POST(self.refresh_now_view)), name="refresh_refreshrun_refresh_now"),
            path("dashboard/", view(self.dashboard_view), name="refresh_refreshrun_dashboard"),
            path("<path:object_id>/cancel/", view(require_POST(self.cancel_view)), name="refresh_refreshrun_cancel"),
            path(
                "<path:object_id>/reprioritise/",
                view(require_POST(self.reprioritise_view)),
                name="refresh_refreshrun_reprioritise",
            ),
            path("<path:object_id>/retry/", view(require_POST(self.retry_view)), name="refresh_refreshrun_retry"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "refresh_buttons": list_buttons(request.user),
            "refresh_modes": allowed_modes(request.user),
            "autoreload_seconds": AUTORELOAD_SECONDS if active_run_count() else None,
        }
        return super().changelist_view(request, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        run = self.get_object(request, unquote(object_id))
        if run is not None:
            extra_context = {
                **(extra_context or {}),
                "timeline": display.step_timeline(run),
                "run_errors": run.errors,
                "failed_symbols": sorted(run.failed_symbols.items()),
                "can_cancel": not run.is_finished and self._may_cancel(request, run),
                "priorities": self._priorities_for(request, run),
                "can_retry": run.status in RETRYABLE_STATUSES,
                "retries_failed_symbols": run.kind == RefreshKind.PRICES and bool(run.failed_symbols),
                "autoreload_seconds": None if run.is_finished else AUTORELOAD_SECONDS,
                "api_url": reverse("refresh-run-detail", kwargs={"refresh_id": run.refresh_id}),
            }
        return super().change_view(request, object_id, form_url, extra_context)

    def refresh_now_view(self, request):
        """Start the run; a full refresh first shows its plan, and the page's button posts back confirmed."""
        kind = request.POST.get("kind", "")
        mode = request.POST.get("mode") or RefreshMode.INCREMENTAL
        if kind not in LIST_KINDS:
            messages.error(request, f"Choose one of: {', '.join(LIST_KINDS)}.")
        elif needs_confirmation(mode) and not request.POST.get("confirmed"):
            plan = plan_refresh_from_admin(request, kind=kind, mode=mode)
            if plan is not None:
                return self._confirm_refresh_page(request, plan)
        else:
            start_refresh_from_admin(request, kind=kind, mode=mode)
        return redirect("admin:refresh_refreshrun_changelist")

    def _confirm_refresh_page(self, request, plan: dict) -> TemplateResponse:
        from refresh.services.dry_run import OUTCOMES  # noqa: PLC0415 - loaded by the plan already, not at start-up

        context = {
            **self.admin_site.each_context(request),
            "title": "Start a full refresh of everything?"
            if plan["kind"] == RefreshKind.ALL
            else f"Start a full {plan['kind']} refresh?",
            "opts": self.opts,
            "plan": plan,
            "outcome": OUTCOMES[plan["outcome"]],
        }
        return TemplateResponse(request, "admin/refresh/refreshrun/refresh_confirm.html", context)

    def cancel_view(self, request, object_id):
        run = self._run_or_404(request, object_id)
        try:
            run = cancel_run(run=run, requested_by=request.user)  # anyone else's PermissionDenied: a 403
        except RunNotCancellable as exc:
            messages.warning(request, exc.message)
        else:
            note = "cancelled" if run.is_finished else "asked to stop at its next batch"
            messages.success(request, f"Run {run.refresh_id} {note}.")
        return redirect("admin:refresh_refreshrun_change", run.pk)

    def reprioritise_view(self, request, object_id):
        run = self._run_or_404(request, object_id)
        try:
            run = reprioritise_run(run=run, requested_by=request.user, priority=request.POST.get("priority", ""))
        except RefreshError as exc:
            messages.warning(request, exc.message)
        else:
            messages.success(request, f"Run {run.refresh_id} is now at {run.priority_name} priority.")
        return redirect("admin:refresh_refreshrun_change", run.pk)

    def retry_view(self, request, object_id):
        run = self._run_or_404(request, object_id)
        all_symbols = request.POST.get("all_symbols") == "1"
        try:
            retry, created = retry_run(
                run=run, requested_by=request.user, source=RunSource.ADMIN, all_symbols=all_symbols
            )
        except RefreshError as exc:
            retry_after = getattr(exc, "retry_after", None)
            messages.error(request, exc.message + (f" Try again in {retry_after} s." if retry_after else ""))
            return redirect("admin:refresh_refreshrun_change", run.pk)
        note = "started" if created else "joined an identical active run"
        messages.success(request, f"Retry of {run.refresh_id} {note}: run {retry.refresh_id}.")
        return redirect("admin:refresh_refreshrun_change", retry.pk)

    def _run_or_404(self, request, object_id) -> RefreshRun:
        run = self.get_object(request, unquote(object_id))
        if run is None:
            raise Http404("No such refresh run.")
        return run

    def dashboard_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "title": "Refresh dashboard",
            "opts": self.opts,
            "dashboard": dashboard_data(days=14),
        }
        return TemplateResponse(request, "admin/refresh/refreshrun/dashboard.html", context)

    @admin.action(description="Cancel selected runs")
    def cancel_selected_runs(self, request, queryset):
        """Cancel the active runs among the selection that this user may cancel; report the rest."""
        active = list(queryset.filter(status__in=UNFINISHED_STATUSES))
        outcome = {
            "cancelled": 0,
            "asked to stop": 0,
            "not yours to cancel": 0,
            "already finished": queryset.count() - len(active),
        }
        for run in active:
            if not self._may_cancel(request, run):
                outcome["not yours to cancel"] += 1
                continue
            try:
                ended = cancel_run(run=run, requested_by=request.user)
            except RunNotCancellable:
                outcome["already finished"] += 1
            else:
                outcome["cancelled" if ended.is_finished else "asked to stop"] += 1
        level = messages.SUCCESS if outcome["cancelled"] + outcome["asked to stop"] else messages.WARNING
        self.message_user(request, ", ".join(f"{n} {what}" for what, n in outcome.items() if n) + ".", level)

    def _priorities_for(self, request, run) -> list[str]:
        """The priorities this user may move a queued run to; none when it is not theirs to move."""
        if run.status != RunStatus.QUEUED or not self._may_cancel(request, run):
            return []
        allowed = []
        for priority in RunPriority:
            try:
                access.check_priority_allowed(user=request.user, priority=priority)
            except PermissionDenied:
                continue
            allowed.append(priority.label)
        return allowed

    @staticmethod
    def _may_cancel(request, run) -> bool:
        try:
            access.check_cancel_allowed(user=request.user, run=run)
        except PermissionDenied:
            return False
        return True


@admin.register(ScopeLease)
class ScopeLeaseAdmin(admin.ModelAdmin):
    list_display = ["scope", "run", "expires_at"]
    readonly_fields = ["scope", "run", "expires_at"]

    def has_add_permission(self, request):
        return False
