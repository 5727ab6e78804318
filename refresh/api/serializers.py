"""Request bodies and run representations of the refresh API."""
import copy

from django.conf import settings
from rest_framework import serializers

from refresh.models import RefreshMode, RefreshRun, RefreshStep, RunPriority, RunStatus
from refresh.services.tracking import current_eta


# Reads the format and time zone from the settings when it formats, so one serves every request.
_DATETIME = serializers.DateTimeField()


class RefreshRequestSerializer(serializers.Serializer):
    """Body of every trigger endpoint; kind-specific fields are checked by the service."""

    mode = serializers.ChoiceField(choices=RefreshMode.choices, default=RefreshMode.INCREMENTAL)
    priority = serializers.ChoiceField(choices=[p.label for p in RunPriority], required=False)
    wait = serializers.IntegerField(min_value=0, max_value=settings.REFRESH_MAX_WAIT_SECONDS, default=0,
                                    help_text="Seconds to wait for the run to finish before answering. A "
                                              "requester's waits beyond a few at once answer at once.")
    symbols = serializers.ListField(child=serializers.CharField(max_length=20), required=False, max_length=5000,
                                    help_text="Prices only: refresh just these symbols.")
    apply_rebalancing = serializers.BooleanField(default=False, help_text="Strategy only: apply the proposals.")

    def get_fields(self):
        # DRF deep-copies the declared fields for every instance: four fifths of validating this
        # small body, on every trigger request. A shallow copy of each is enough here: binding sets
        # only the copy's own attributes, and validating changes nothing the copies share
        # (choices, validators, the symbols list's child field).
        return {name: copy.copy(field) for name, field in self._declared_fields.items()}

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
    requested_by = serializers.CharField(source="requested_by.username", default=None, allow_null=True,
                                         help_text="Username; null for command, webhook and schedule runs.")
    target_user_id = serializers.IntegerField(allow_null=True)
    timestamp = serializers.SerializerMethodField()
    steps = RefreshStepSerializer(many=True, read_only=True)

    class Meta:
        model = RefreshRun
        fields = ["status", "refresh_id", "request_id", "kind", "mode", "priority", "source", "requested_by",
                  "requested_role", "target_user_id", "params", "progress", "current_step", "estimated_completion",
                  "timestamp", "created_at", "started_at", "finished_at", "duration_ms", "items_updated", "provider_calls",
                  "credits_used", "errors", "failed_symbols", "anomalies", "cache_impact", "steps"]

    def get_timestamp(self, run) -> str:
        moment = run.finished_at or run.started_at or run.created_at
        return _DATETIME.to_representation(moment)


class RefreshRunListSerializer(RefreshRunSerializer):
    class Meta(RefreshRunSerializer.Meta):
        fields = [f for f in RefreshRunSerializer.Meta.fields if f != "steps"]


def run_status_data(run: RefreshRun) -> dict:
    """The status response: progress while active, the outcome once finished."""
    if not run.is_finished:
        return {
            "status": run.status, "refresh_id": run.refresh_id, "kind": run.kind, "mode": run.mode,
            "priority": run.priority_name, "progress": round(run.progress, 4), "current_step": run.current_step,
            "estimated_completion": _DATETIME.to_representation(current_eta(run)),
        }
    data = {
        "status": run.status, "refresh_id": run.refresh_id, "kind": run.kind, "mode": run.mode,
        "timestamp": _DATETIME.to_representation(run.finished_at), "duration_ms": run.duration_ms or 0,
        "items_updated": run.items_updated, "provider_calls": run.provider_calls,
    }
    if run.params.get("skip_reason"):
        data["reason"] = run.params["skip_reason"]
    if run.status != RunStatus.SUCCESS:
        data["errors"] = run.errors + [f"{s}: {reason}" for s, reason in sorted(run.failed_symbols.items())]
    return data
