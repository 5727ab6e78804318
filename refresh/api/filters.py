"""The query-string filters of the run history and of a run's symbols (django-filter). An unknown
filter or a malformed value is a 400 invalid_filter: silently ignoring one would make a filtered
list look complete."""

from datetime import UTC

from django import forms
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema_field

from refresh.errors import InvalidRefreshRequest
from refresh.models import (
    RefreshKind,
    RefreshMode,
    RefreshRun,
    RunPriority,
    RunSource,
    RunStatus,
    RunSymbol,
    SymbolOutcome,
)

# Query parameters that are not filters: DRF's page number and format suffix.
NOT_FILTERS = frozenset({"page", "format"})


class IntegerFilter(filters.Filter):
    """A whole number: "1.5" is a malformed user id, not user 1."""

    field_class = forms.IntegerField


def _iso_8601(what: str):
    """The schema of a time filter: a string, since a date alone (its midnight) is accepted as well as a
    date-time, which the schema's "date-time" format would call invalid."""
    return extend_schema_field({"type": "string", "description": f"ISO 8601 date-time or date; {what}."})


class UtcDateTimeFilter(filters.IsoDateTimeFilter):
    """An ISO 8601 time, compared in UTC: PostgreSQL refuses offsets past ±15:59, which ISO allows."""

    def filter(self, qs, value):
        return super().filter(qs, value.astimezone(UTC) if value else value)


class RunFilter(filters.FilterSet):
    kind = filters.ChoiceFilter(choices=RefreshKind.choices)
    status = filters.ChoiceFilter(choices=RunStatus.choices)
    mode = filters.ChoiceFilter(choices=RefreshMode.choices)
    source = filters.ChoiceFilter(choices=RunSource.choices)
    priority = filters.ChoiceFilter(
        choices=[(p.label, p.label) for p in RunPriority], method="filter_priority", help_text="low … emergency."
    )
    requested_by = filters.CharFilter(field_name="requested_by__username", help_text="The requester's username.")
    target_user_id = IntegerFilter(field_name="target_user_id", help_text="Portfolio runs of this user.")
    created_after = _iso_8601("created at or after")(
        UtcDateTimeFilter(field_name="created_at", lookup_expr="gte", help_text="ISO 8601; created at or after.")
    )
    created_before = _iso_8601("created before")(
        UtcDateTimeFilter(field_name="created_at", lookup_expr="lt", help_text="ISO 8601; created before.")
    )
    retry_of = filters.CharFilter(field_name="retry_of__refresh_id", help_text="Retries of this run (its refresh_id).")

    class Meta:
        model = RefreshRun
        fields: list[str] = []

    # A name, though the model's priority column is a number (which the schema would otherwise say).
    @extend_schema_field({"type": "string", "enum": [p.label for p in RunPriority], "description": "low … emergency."})
    def filter_priority(self, queryset, name, value):
        return queryset.filter(priority=next(p.value for p in RunPriority if p.label == value))


class RunSymbolFilter(filters.FilterSet):
    outcome = filters.ChoiceFilter(choices=SymbolOutcome.choices)

    class Meta:
        model = RunSymbol
        fields: list[str] = []


class StrictFilterBackend(filters.DjangoFilterBackend):
    """django-filter's backend, refusing what it would ignore (unknown names) or report as a
    field-keyed ValidationError, with the API's invalid_filter code and one clear message."""

    def filter_queryset(self, request, queryset, view):
        filterset_class = self.get_filterset_class(view, queryset)
        if filterset_class is None:
            return queryset
        unknown = sorted(set(request.query_params) - set(filterset_class.base_filters) - NOT_FILTERS)
        if unknown:
            raise InvalidRefreshRequest(
                f"Unknown filter {unknown[0]!r}; use {', '.join(filterset_class.base_filters)}.", code="invalid_filter"
            )
        filterset = filterset_class(request.query_params, queryset=queryset, request=request)
        if not filterset.is_valid():
            name, errors = next(iter(filterset.errors.items()))
            raise InvalidRefreshRequest(f"{name}: {errors[0]}", code="invalid_filter")
        return filterset.qs
