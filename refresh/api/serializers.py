"""The refresh API's request body and the serializers that render its runs (the status, the run in
full) and each symbol's outcome in a run."""

import copy
from typing import ClassVar

from django.conf import settings
from django.utils import timezone
from rest_framework import serializers

from refresh.models import RefreshKind, RefreshMode, RefreshRun, RefreshStep, RunPriority, RunStatus, RunSymbol
from refresh.services.dry_run import OUTCOMES
from refresh.services.queue_estimates import QueueStanding, queue_standing
from refresh.services.tracking import current_eta

# Reads the format and time zone from the settings when it formats, so one serves every request.
_DATETIME = serializers.DateTimeField()


class CopiedFieldsSerializer(serializers.Serializer):
    """A plain serializer whose instances copy its fields shallowly from one set built per class.

    DRF's get_fields deep-copies every declared field for each serializer it makes, building each
    field, its choices and validators again: for the trigger's body and status that was more than
    half of their cost. Here DRF's get_fields runs once per class, and each instance copies what it
    returned: a field's settings are only read once it is built, and binding it to a serializer
    sets attributes on the copy, so a shallow copy serves. A field holding other fields (a list's
    child, a nested serializer) is still deep-copied, since binding it binds them too.
    """

    _built_fields: ClassVar[dict[str, serializers.Field]]  # each class's own, set on its first instance

    def get_fields(self):
        cls = type(self)
        built = cls.__dict__.get("_built_fields")  # this class's own, never a parent's
        if built is None:
            built = super().get_fields()
            cls._built_fields = built
        return {name: copy.deepcopy(f) if _holds_fields(f) else copy.copy(f) for name, f in built.items()}


def _holds_fields(field: serializers.Field) -> bool:
    return isinstance(field, serializers.BaseSerializer) or hasattr(field, "child") or hasattr(field, "child_relation")


class StrictSerializer(CopiedFieldsSerializer):
    """A request body whose unknown fields are a 400, not silently dropped; the browsable API's
    HTML form posts its CSRF token with the fields."""

    def validate(self, attrs):
        unknown = set(getattr(self, "initial_data", {}) or {}) - set(self.fields) - {"csrfmiddlewaretoken"}
        if unknown:
            raise serializers.ValidationError(f"Unknown fields: {', '.join(sorted(unknown))}.")
        return attrs


class ZonedDateTimeField(serializers.DateTimeField):
    """An ISO 8601 time that names its zone: a naive one would be read in the server's zone."""

    default_error_messages = {"naive": "Give the time with its zone, e.g. 2026-12-08T02:00:00Z."}

    def enforce_timezone(self, value):
        if timezone.is_naive(value):
            self.fail("naive")
        return super().enforce_timezone(value)


class RefreshRequestSerializer(StrictSerializer):
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
    run_at = ZonedDateTimeField(
        required=False,
        help_text="Defer the run: it is recorded as scheduled and enters the queue at this time (ISO 8601 "
        "with its zone, within 7 days). Admin and system only.",
    )
    dry_run = serializers.BooleanField(
        default=False,
        help_text="Answer 200 with the plan (what the run would fetch, spend and recalculate, and the active runs "
        "it would join or wait for) and start nothing: no run, no event, no rate limit spent, no provider call.",
    )

    def validate(self, attrs):
        attrs = super().validate(attrs)
        if attrs.get("run_at") and attrs.get("wait"):
            raise serializers.ValidationError("A deferred run (run_at) cannot be waited for.")
        if attrs.get("dry_run") and attrs.get("wait"):
            raise serializers.ValidationError({"wait": "A dry run starts nothing to wait for."})
        return attrs


class PrioritySerializer(StrictSerializer):
    """Body of PATCH on a run: its new priority."""

    priority = serializers.ChoiceField(choices=[p.label for p in RunPriority])


class RetrySerializer(StrictSerializer):
    """Body of a retry; empty retries a prices run's failed symbols only."""

    all_symbols = serializers.BooleanField(
        default=False, help_text="Prices runs: retry every symbol of the run, not only the failed ones."
    )


def _standing(field: serializers.Field, run) -> QueueStanding | None:
    """A queued run's standing (refresh.services.queue_estimates), looked up once per rendering."""
    if run.status != RunStatus.QUEUED:
        return None
    memo: dict[int, QueueStanding] = vars(field.parent).setdefault("_queue_standings", {})
    if run.pk not in memo:
        memo[run.pk] = queue_standing(run)
    return memo[run.pk]


class QueuePositionField(serializers.IntegerField):
    """A queued run's place among the conflicting runs it waits for; null once a worker has it."""

    def get_attribute(self, run):
        standing = _standing(self, run)
        return standing.position if standing else None


class EstimatedCompletionField(serializers.DateTimeField):
    """A queued run's estimate after the runs ahead of it; a running run's as its worker keeps it,
    moved on when waiting has made the stored one pass; none once finished."""

    def get_attribute(self, run):
        if run.is_finished:
            return None
        standing = _standing(self, run)
        return standing.estimated_completion if standing else current_eta(run)


_QUEUE_POSITION_HELP = (
    "Queued runs only: 1 + the conflicting runs queued ahead of it (runs on other scopes go side by side)."
)
_ETA_HELP = "Active runs only: for a queued run, after the conflicting runs ahead of it and its own expected duration."


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
    retry_of: "serializers.SlugRelatedField[RefreshRun]" = serializers.SlugRelatedField(
        slug_field="refresh_id", read_only=True, allow_null=True, help_text="The run this one retries."
    )
    timestamp = serializers.SerializerMethodField()
    queue_position = QueuePositionField(read_only=True, allow_null=True, help_text=_QUEUE_POSITION_HELP)
    estimated_completion: serializers.DateTimeField = EstimatedCompletionField(
        read_only=True, allow_null=True, help_text=_ETA_HELP
    )
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
            "queue_position",
            "estimated_completion",
            "run_at",
            "cancel_requested_at",
            "retry_of",
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
    """Runs in a list: no timeline, and the estimate made when each was requested or last
    reported (a queued run's standing would cost a query per run: its detail has it)."""

    estimated_completion = serializers.DateTimeField(read_only=True, allow_null=True)  # the stored estimate

    class Meta(RefreshRunSerializer.Meta):
        fields = [f for f in RefreshRunSerializer.Meta.fields if f not in ("steps", "queue_position")]


class FinishedDurationField(serializers.IntegerField):
    """A finished run's duration; 0 when none was recorded (a run cancelled before it started)."""

    def get_attribute(self, run):
        return run.duration_ms or 0


class ReportedErrorsField(serializers.ListField):
    """The run's errors, then each failed symbol with its reason."""

    def get_attribute(self, run):
        return run.errors + [f"{symbol}: {reason}" for symbol, reason in sorted(run.failed_symbols.items())]


class _RunStatusSerializer(CopiedFieldsSerializer):
    """What every run's status says, active or finished."""

    status = serializers.ChoiceField(choices=RunStatus.choices)
    refresh_id = serializers.CharField()
    kind = serializers.ChoiceField(choices=RefreshKind.choices)
    mode = serializers.ChoiceField(choices=RefreshMode.choices)


class ActiveRunStatusSerializer(_RunStatusSerializer):
    """A queued, scheduled or running run's status: where it stands and when it should finish."""

    priority = serializers.ChoiceField(choices=[p.label for p in RunPriority], source="priority_name")
    progress = serializers.FloatField(help_text="0 to 1.")
    current_step = serializers.CharField()
    queue_position = QueuePositionField(allow_null=True, help_text=_QUEUE_POSITION_HELP)
    estimated_completion = EstimatedCompletionField(allow_null=True, help_text=_ETA_HELP)
    run_at = serializers.DateTimeField(allow_null=True, help_text="A deferred run's time; null for others.")
    cancel_requested_at = serializers.DateTimeField(
        allow_null=True, help_text="When a cancel was asked for; the run stops at its next batch."
    )


class FinishedRunStatusSerializer(_RunStatusSerializer):
    """A finished run's status: its outcome."""

    timestamp = serializers.DateTimeField(source="finished_at", help_text="When it finished.")
    duration_ms = FinishedDurationField()
    items_updated = serializers.DictField(
        child=serializers.IntegerField(),
        help_text="Prices, portfolios and metrics always (0 when none), then others (bars, ...).",
    )
    provider_calls = serializers.IntegerField()
    # Not required: left out when the run has no skip reason.
    reason = serializers.CharField(
        source="params.skip_reason", required=False, help_text="Skipped runs only: why nothing was done."
    )
    # A declared field, not Serializer.errors: DRF's metaclass takes it off the class.
    errors = ReportedErrorsField(  # type: ignore[assignment]
        child=serializers.CharField(),
        required=False,
        help_text="Runs that did not succeed: errors and failed symbols.",
    )

    def to_representation(self, run):
        data = super().to_representation(run)
        if run.status == RunStatus.SUCCESS:
            del data["errors"]
        return data


def run_status(run: RefreshRun) -> dict:
    """A run's status body: its progress while it is active, its outcome once it has finished.

    Two serializers rather than one with every field, of which each state shows half: the trigger
    answers with this on every request, and building and rendering fields it then drops cost as
    much as the rest of the answer.
    """
    serializer = FinishedRunStatusSerializer if run.is_finished else ActiveRunStatusSerializer
    return serializer(run).data


class OutcomeReasonField(serializers.CharField):
    """Why a symbol failed or was held back; null for the other outcomes, which need no reason."""

    def get_attribute(self, row):
        return row.reason or None


class RunSymbolSerializer(serializers.ModelSerializer):
    """One symbol a run dealt with and what came of it."""

    reason = OutcomeReasonField(
        read_only=True,
        allow_null=True,
        help_text="failed: why it could not be fetched; quarantined: what looked wrong with the price. Else null.",
    )

    class Meta:
        model = RunSymbol
        fields = ["symbol", "outcome", "reason"]
        extra_kwargs = {
            "outcome": {
                "help_text": "updated: a new quote or bars stored; unchanged: fetched, the same as stored; "
                "skipped: fresh enough not to fetch (smart mode); failed: could not be fetched; "
                "quarantined: a suspicious price held back."
            }
        }


class SymbolFetchSerializer(serializers.Serializer):
    """One symbol a dry run's plan would ask the provider for, and how."""

    symbol = serializers.CharField()
    quote = serializers.BooleanField(help_text="Its latest quote.")
    history_start = serializers.DateField(
        allow_null=True, help_text="First day of the daily bars it would backfill; null: no history."
    )
    history_end = serializers.DateField(allow_null=True, help_text="Last day of those bars (the last closed session).")


class RefreshPlanSerializer(serializers.Serializer):
    """A dry run's answer (refresh.services.dry_run): what the request would do, with nothing started."""

    dry_run = serializers.SerializerMethodField(help_text="Always true: nothing was started or spent.")
    kind = serializers.ChoiceField(choices=RefreshKind.choices)
    mode = serializers.ChoiceField(choices=RefreshMode.choices)
    priority = serializers.ChoiceField(choices=[p.label for p in RunPriority])
    target_user_id = serializers.IntegerField(allow_null=True)
    outcome = serializers.ChoiceField(
        choices=list(OUTCOMES),
        help_text="What the request would do: " + "; ".join(f"{name}: {what}" for name, what in OUTCOMES.items()) + ".",
    )
    refresh_id = serializers.CharField(allow_null=True, help_text="join and replay: the run the request would get.")
    queued_behind = serializers.ListField(
        child=serializers.CharField(),
        help_text="refresh_ids of the active runs on the same or an overlapping scope that the run would wait for, "
        "running ones first.",
    )
    queue_position = serializers.IntegerField(
        allow_null=True, help_text="1 + the conflicting runs queued ahead; null for a run already in progress."
    )
    symbols = SymbolFetchSerializer(many=True, help_text="What it would fetch, most important first.")
    skipped_fresh = serializers.ListField(
        child=serializers.CharField(), help_text="Smart mode: symbols whose quote is still fresh, not fetched."
    )
    provider = serializers.CharField(help_text="The market-data provider it would call: twelvedata or mock.")
    provider_calls = serializers.IntegerField(help_text="Provider requests, if none fails and needs a retry.")
    credits = serializers.IntegerField(help_text="Provider credits: one per symbol of each quote or history request.")
    credit_minutes = serializers.IntegerField(
        help_text="Per-minute credit windows the fetch spans (MARKET_DATA_CREDITS_PER_MINUTE): above 1 it waits "
        "for later minutes."
    )
    credits_left_today = serializers.IntegerField(
        allow_null=True, help_text="Credits the shared budget has left today; null: no daily limit."
    )
    symbols_not_fetched_today = serializers.IntegerField(
        help_text="Symbol requests today's credits would not cover: the run would end partial."
    )
    recalculates = serializers.ListField(
        source="calculations",
        child=serializers.ChoiceField(choices=["signals", "strategies", "metrics", "comparisons"]),
        help_text="Calculations, in the order the run does them.",
    )
    portfolios = serializers.IntegerField(
        help_text="Portfolios whose metrics, strategy or benchmark comparison it would recalculate."
    )
    portfolios_only_if_changed = serializers.BooleanField(
        help_text="Incremental and smart all runs: of those, only the portfolios whose prices change are "
        "recalculated, so portfolios is at most what the run does."
    )
    apply_rebalancing = serializers.BooleanField()
    expected_duration_seconds = serializers.FloatField(
        help_text="The run's own estimate: the median of recent runs of this kind and mode, else the default."
    )
    estimated_completion = serializers.DateTimeField(
        allow_null=True, help_text="After the runs it waits for; null for a finished run it would replay."
    )

    def get_dry_run(self, plan) -> bool:
        return True
