"""Refresh runs, their steps, and the scope leases that keep two runs off the same data."""

import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q

from core.roles import Role


def new_refresh_id() -> str:
    """A public run id that cannot be guessed from another one."""
    return f"ref_{secrets.token_urlsafe(16)}"


class RefreshKind(models.TextChoices):
    ALL = "all", "All"
    PRICES = "prices", "Prices"
    PORTFOLIO = "portfolio", "Portfolio"
    STRATEGY = "strategy", "Strategy"
    BENCHMARK = "benchmark", "Benchmark"


class RefreshMode(models.TextChoices):
    FULL = "full", "Full"
    INCREMENTAL = "incremental", "Incremental"
    SMART = "smart", "Smart"


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    IN_PROGRESS = "in_progress", "In progress"
    SUCCESS = "success", "Success"
    PARTIAL = "partial", "Partial"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    TIMEOUT = "timeout", "Timeout"
    SKIPPED = "skipped", "Skipped"


ACTIVE_STATUSES = (RunStatus.QUEUED, RunStatus.IN_PROGRESS)
FINISHED_STATUSES = tuple(s for s in RunStatus if s not in ACTIVE_STATUSES)
# Runs that did their work, some symbols perhaps failing: they count as completed and are timed.
COMPLETED_STATUSES = (RunStatus.SUCCESS, RunStatus.PARTIAL)


class RunPriority(models.IntegerChoices):
    """Higher runs first; the API speaks the lower-case names."""

    LOW = 10, "low"
    MEDIUM = 20, "medium"
    HIGH = 30, "high"
    EMERGENCY = 40, "emergency"


class RunSource(models.TextChoices):
    API = "api", "API"
    ADMIN = "admin", "Admin"
    COMMAND = "command", "Command"
    WEBHOOK = "webhook", "Webhook"
    SCHEDULE = "schedule", "Schedule"


class RefreshRun(models.Model):
    """One requested refresh, from the request through its steps to the final report."""

    refresh_id = models.CharField(max_length=40, default=new_refresh_id, editable=False)  # unique: Meta
    kind = models.CharField(max_length=12, choices=RefreshKind.choices)
    mode = models.CharField(max_length=12, choices=RefreshMode.choices, default=RefreshMode.INCREMENTAL)
    status = models.CharField(max_length=12, choices=RunStatus.choices, default=RunStatus.QUEUED)
    priority = models.PositiveSmallIntegerField(choices=RunPriority.choices, default=RunPriority.MEDIUM)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="refresh_runs"
    )
    requested_role = models.CharField(max_length=10, choices=Role.choices)
    source = models.CharField(max_length=10, choices=RunSource.choices)
    target_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    params = models.JSONField(default=dict, blank=True, help_text="Kind-specific options: symbols, apply_rebalancing.")
    scope = models.CharField(max_length=40, help_text="What the run locks: all, prices, portfolio:<user id>, ...")
    dedup_key = models.CharField(max_length=200, help_text="Equal for requests that would do the same work.")
    request_id = models.CharField(
        max_length=64,
        blank=True,
        help_text="X-Request-ID of the HTTP request that started the run; its worker's log records carry it too.",
    )

    progress = models.FloatField(default=0.0)
    current_step = models.CharField(max_length=100, default="Queued")
    estimated_completion = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)

    items_updated = models.JSONField(default=dict, blank=True)
    provider_calls = models.PositiveIntegerField(default=0)
    credits_used = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    failed_symbols = models.JSONField(default=dict, blank=True, help_text="Symbol to the reason it failed.")
    anomalies = models.JSONField(default=list, blank=True, help_text="Suspicious prices found, quarantined.")
    cache_impact = models.JSONField(default=dict, blank=True, help_text="Cache keys invalidated and warmed.")

    cancel_requested = models.BooleanField(default=False)
    worker = models.CharField(max_length=100, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "-priority", "created_at"], name="run_queue_order"),
            models.Index(fields=["kind", "mode", "status", "-finished_at"], name="run_recent_by_kind"),
        ]
        permissions = [
            ("refresh_all", "Can refresh all"),
            ("refresh_prices", "Can refresh prices"),
            ("refresh_any_portfolio", "Can refresh any user's portfolio"),
            ("refresh_strategy", "Can refresh the strategy"),
            ("refresh_benchmark", "Can refresh the benchmark"),
            ("use_full_mode", "Can request full mode"),
            ("request_high_priority", "Can request high priority"),
            ("request_emergency", "Can request emergency priority"),
            ("apply_rebalancing", "Can apply rebalancing"),
            ("cancel_any_run", "Can cancel any run"),
            ("view_all_runs", "Can view all runs"),
        ]
        # Every request inserts a run, so it keeps only the indexes that queries use: status
        # lookups go through run_queue_order, and refresh_id's uniqueness is a constraint
        # rather than unique=True, which on PostgreSQL adds a second (LIKE) index never used.
        constraints = [
            models.UniqueConstraint(fields=["refresh_id"], name="unique_refresh_id"),
            # Two identical requests cannot both be active: the database decides, not a check.
            models.UniqueConstraint(
                fields=["dedup_key"],
                condition=Q(status__in=["queued", "in_progress"]),
                name="one_active_run_per_request",
            ),
        ]

    def __str__(self):
        return self.refresh_id

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    @property
    def priority_name(self) -> str:
        return RunPriority(self.priority).label


class StepStatus(models.TextChoices):
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    SKIPPED = "skipped", "Skipped"
    FAILED = "failed", "Failed"


class RefreshStep(models.Model):
    """One step of a run's flow, with its timing, counts and outcome."""

    run = models.ForeignKey(RefreshRun, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=100)
    status = models.CharField(max_length=10, choices=StepStatus.choices, default=StepStatus.RUNNING)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    counts = models.JSONField(default=dict, blank=True)
    message = models.TextField(blank=True)

    class Meta:
        ordering = ["run", "position"]

    def __str__(self) -> str:
        return f"{self.position}. {self.name}"


class ScopeLease(models.Model):
    """A run's hold on a scope; it lapses unless the worker renews it."""

    scope = models.CharField(max_length=40, primary_key=True)
    run = models.OneToOneField(RefreshRun, on_delete=models.CASCADE, related_name="lease")
    expires_at = models.DateTimeField()

    def __str__(self):
        return f"{self.scope} held by {self.run_id}"
