"""The refresh API's request body and the serializers that render its runs: the status, and the run in full."""

from django.conf import settings
from rest_framework import serializers

from refresh.models import RefreshKind, RefreshMode, RefreshRun, RefreshStep, RunPriority, RunStatus
from refresh.services.tracking import current_eta

# Reads the format and time zone from the settings when it formats, so one serves every request.
_DATETIME = serializers.DateTimeField()


class RefreshRequestSerializer(serializers.Serializer):
    """Body of every trigger endpoint; kind-specific fields are checked by the service."""

    mode = serializers.ChoiceField(choices=RefreshMode.choices, default=RefreshMode.INCREMENTAL)
    priority = serializers.ChoiceField(choices=[p.label for p in RunPriority], required=False)
    wait = serializers.IntegerField(
        min_value=0,
        max_value=settings.REFRESH_MAX_WAIT_SECONDS,
        default=0,
        help_text="Seconds to wait for the run to finish before answering. A "
        "requester's waits beyond a few at once answer at once.",
    )
    symbols = serializers.ListField(
        child=serializers.CharField(max_length=20),
        required=False,
        max_length=5000,
        help_text="Prices only: refresh just these symbols.",
    )
    apply_rebalancing = serializers.BooleanField(default=False, help_text="Strategy only: apply the proposals.")

    def validate(self, attrs):
        # The browsable API's HTML form posts its CSRF token with the fields.
        unknown = set(getattr(self, "initial_data", {}) or {}) - set(self.fields) - {"csrfmiddlewaretoken"}
        if unknown:
            raise serializers.ValidationError(f"Unknown fields: {', '.join(sorted(unknown))}.")
        return attrs


class RefreshStepSerializer(serializers.ModelSerializer):
    class Meta:
        model = RefreshStep
        fields = ["position", "name", "status", "started_at", "finished_at", "duration_ms", "counts", "message"]


class RefreshRunSerializer(serializers.ModelSerializer):
    """A run in full: the status response's fields plus who, what and the step timeline."""

    priority = serializers.CharField(source="priority_name")
    requested_by = serializers.CharField(
        source="requested_by.username",
        default=None,
        allow_null=True,
        help_text="Username; null for command, webhook and schedule runs.",
    )
    target_user_id = serializers.IntegerField(allow_null=True)
    timestamp = serializers.SerializerMethodField()
    steps = RefreshStepSerializer(many=True, read_only=True)

    class Meta:
        model = RefreshRun
        fields = [
            "status",
            "refresh_id",
            "request_id",
            "kind",
            "mode",
            "priority",
            "source",
            "requested_by",
            "requested_role",
            "target_user_id",
            "params",
            "progress",
            "current_step",
            "estimated_completion",
            "timestamp",
            "created_at",
            "started_at",
            "finished_at",
            "duration_ms",
            "items_updated",
            "provider_calls",
            "credits_used",
            "errors",
            "failed_symbols",
            "anomalies",
            "cache_impact",
            "steps",
        ]

    def get_timestamp(self, run) -> str:
        moment = run.finished_at or run.started_at or run.created_at
        return _DATETIME.to_representation(moment)


class RefreshRunListSerializer(RefreshRunSerializer):
    class Meta(RefreshRunSerializer.Meta):
        fields = [f for f in RefreshRunSerializer.Meta.fields if f != "steps"]


class EstimatedCompletionField(serializers.DateTimeField):
    """An active run's estimate, moved on when waiting has made the stored one pass."""

    def get_attribute(self, run):
        return None if run.is_finished else current_eta(run)  # a finished run's would cost a query


class FinishedDurationField(serializers.IntegerField):
    """A finished run's duration; 0 when none was recorded (a run cancelled before it started)."""

    def get_attribute(self, run):
        return run.duration_ms or 0


class ReportedErrorsField(serializers.ListField):
    """The run's errors, then each failed symbol with its reason."""

    def get_attribute(self, run):
        return run.errors + [f"{symbol}: {reason}" for symbol, reason in sorted(run.failed_symbols.items())]


class RunStatusSerializer(serializers.Serializer):
    """A run's status: its progress while it is active, its outcome once it has finished."""

    ACTIVE_FIELDS = (
        "status",
        "refresh_id",
        "kind",
        "mode",
        "priority",
        "progress",
        "current_step",
        "estimated_completion",
    )
    FINISHED_FIELDS = (
        "status",
        "refresh_id",
        "kind",
        "mode",
        "timestamp",
        "duration_ms",
        "items_updated",
        "provider_calls",
        "reason",
    )

    status = serializers.ChoiceField(choices=RunStatus.choices)
    refresh_id = serializers.CharField()
    kind = serializers.ChoiceField(choices=RefreshKind.choices)
    mode = serializers.ChoiceField(choices=RefreshMode.choices)
    priority = serializers.ChoiceField(
        choices=[p.label for p in RunPriority], source="priority_name", required=False, help_text="Active runs only."
    )
    progress = serializers.FloatField(required=False, help_text="Active runs only: 0 to 1.")
    current_step = serializers.CharField(required=False, help_text="Active runs only.")
    estimated_completion = EstimatedCompletionField(required=False, allow_null=True, help_text="Active runs only.")
    timestamp = serializers.DateTimeField(
        source="finished_at", required=False, help_text="Finished runs only: when it finished."
    )
    duration_ms = FinishedDurationField(required=False, help_text="Finished runs only.")
    items_updated = serializers.DictField(
        child=serializers.IntegerField(),
        required=False,
        help_text="Finished runs only: prices, bars, portfolios, metrics, ...",
    )
    provider_calls = serializers.IntegerField(required=False, help_text="Finished runs only.")
    # Not required: left out when the run has no skip reason.
    reason = serializers.CharField(
        source="params.skip_reason", required=False, help_text="Skipped runs only: why nothing was done."
    )
    # A declared field, not Serializer.errors: DRF's metaclass takes it off the class.
    errors = ReportedErrorsField(  # type: ignore[assignment]
        child=serializers.CharField(),
        required=False,
        help_text="Finished runs other than success: errors and failed symbols.",
    )

    def to_representation(self, run):
        data = super().to_representation(run)
        shown: tuple[str, ...]
        if not run.is_finished:
            shown = self.ACTIVE_FIELDS
        elif run.status == RunStatus.SUCCESS:
            shown = self.FINISHED_FIELDS
        else:
            shown = (*self.FINISHED_FIELDS, "errors")
        return {name: value for name, value in data.items() if name in shown}
