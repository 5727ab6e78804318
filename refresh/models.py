"""Refresh runs, their steps and symbol outcomes, and the scope leases that keep two runs off the same data."""

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
    SCHEDULED = "scheduled", "Scheduled"  # deferred: enters the queue at its run_at
    QUEUED = "queued", "Queued"
    IN_PROGRESS = "in_progress", "In progress"
    SUCCESS = "success", "Success"
    PARTIAL = "partial", "Partial"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    TIMEOUT = "timeout", "Timeout"
    SKIPPED = "skipped", "Skipped"


ACTIVE_STATUSES = (RunStatus.QUEUED, RunStatus.IN_PROGRESS)
UNFINISHED_STATUSES = (RunStatus.SCHEDULED, *ACTIVE_STATUSES)  # what a cancel can still stop
FINISHED_STATUSES = tuple(s for s in RunStatus if s not in UNFINISHED_STATUSES)
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


# Every run reports these counts, 0 when it touched none of them; steps add others (bars, signals, ...).
REPORTED_COUNTS = ("prices", "portfolios", "metrics")


def no_items_updated() -> dict[str, int]:
    return dict.fromkeys(REPORTED_COUNTS, 0)


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

    run_at = models.DateTimeField(
        null=True, blank=True, help_text="A deferred run: when it enters the queue (status scheduled until then)."
    )
    progress = models.FloatField(default=0.0)
    current_step = models.CharField(max_length=100, default="Queued")
    estimated_completion = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)

    items_updated = models.JSONField(default=no_items_updated, blank=True)
    provider_calls = models.PositiveIntegerField(default=0)
    credits_used = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    failed_symbols = models.JSONField(default=dict, blank=True, help_text="Symbol to the reason it failed.")
    anomalies = models.JSONField(default=list, blank=True, help_text="Suspicious prices found, quarantined.")
    cache_impact = models.JSONField(default=dict, blank=True, help_text="Cache keys invalidated and warmed.")

    cancel_requested_at = models.DateTimeField(
        null=True, blank=True, help_text="When a cancel was asked for; a running run stops at its next batch."
    )
    preempted_by = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="An emergency run this running run makes way for at its next batch.",
    )
    retry_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="retries", help_text="The run retried."
    )
    worker = models.CharField(max_length=100, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "-priority", "created_at"], name="run_queue_order"),
            models.Index(fields=["kind", "mode", "status", "-finished_at"], name="run_recent_by_kind"),
            # The active runs on conflicting scopes, which a queued run's standing reads.
            models.Index(fields=["scope"], condition=Q(status__in=["queued", "in_progress"]), name="active_run_scope"),
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
            ("defer_runs", "Can defer a run to a later time"),
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

    @property
    def cancelling(self) -> bool:
        """A cancel was asked for and the run has not stopped yet."""
        return self.cancel_requested_at is not None and not self.is_finished


class IdempotentRequest(models.Model):
    """A trigger request sent with an ``Idempotency-Key``: the same key and body get the same run."""

    requester = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of the request's path and body.")
    run = models.ForeignKey(RefreshRun, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["requester", "key"], name="one_request_per_idempotency_key")]

    def __str__(self) -> str:
        return f"{self.key} -> {self.run_id}"


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


class SymbolOutcome(models.TextChoices):
    """What a run did with one symbol; the later ones in this list win when a run learns several."""

    SKIPPED = "skipped", "Skipped"
    UNCHANGED = "unchanged", "Unchanged"
    UPDATED = "updated", "Updated"
    QUARANTINED = "quarantined", "Quarantined"
    FAILED = "failed", "Failed"


OUTCOME_REASON_LENGTH = 300


class RunSymbol(models.Model):
    """One symbol a run dealt with and its outcome, with the reason when it failed or was held back."""

    # No index of its own: the unique constraint's index leads with the run.
    run = models.ForeignKey(RefreshRun, on_delete=models.CASCADE, related_name="symbol_outcomes", db_index=False)
    symbol = models.CharField(max_length=20)
    outcome = models.CharField(max_length=12, choices=SymbolOutcome.choices)
    reason = models.CharField(max_length=OUTCOME_REASON_LENGTH, blank=True)

    class Meta:
        ordering = ["symbol"]  # a run's rows in the order of its unique index
        constraints = [models.UniqueConstraint(fields=["run", "symbol"], name="one_outcome_per_run_symbol")]

    def __str__(self) -> str:
        return f"{self.symbol}: {self.outcome}"


class ScopeLease(models.Model):
    """A run's hold on a scope; it lapses unless the worker renews it."""

    scope = models.CharField(max_length=40, primary_key=True)
    run = models.OneToOneField(RefreshRun, on_delete=models.CASCADE, related_name="lease")
    expires_at = models.DateTimeField()

    def __str__(self):
        return f"{self.scope} held by {self.run_id}"
