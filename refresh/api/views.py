"""Refresh API: one small trigger viewset per kind on a shared base, and the runs."""

from http import HTTPStatus

from django.urls import reverse
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from refresh.api.permissions import CanRequestRefresh
from refresh.api.schema import run_schema, trigger_schema
from refresh.api.serializers import (
    RefreshRequestSerializer,
    RefreshRunListSerializer,
    RefreshRunSerializer,
    RunStatusSerializer,
)
from refresh.models import RefreshKind, RunSource
from refresh.selectors import get_run_for_user, runs_visible_to
from refresh.services.execution import cancel_run
from refresh.services.requests import request_refresh
from refresh.services.waiting import wait_for_run_within_bounds


def run_response(run, *, created: bool) -> Response:
    """202 with a Location while the run is active; 200 once it finished or when deduplicated."""
    code = HTTPStatus.ACCEPTED if created and not run.is_finished else HTTPStatus.OK
    location = reverse("refresh-run-detail", kwargs={"refresh_id": run.refresh_id}) + "/"
    return Response(RunStatusSerializer(run).data, status=code, headers={"Location": location})


@trigger_schema
class RefreshTriggerViewSet(viewsets.GenericViewSet):
    """Starts a refresh run of one kind; subclasses only name the kind. GET lists recent runs."""

    kind: str
    permission_classes = [IsAuthenticated, CanRequestRefresh]
    serializer_class = RefreshRequestSerializer

    def get_queryset(self):
        return runs_visible_to(user=self.request.user).filter(kind=self.kind)

    def list(self, request, **kwargs):
        runs = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(RefreshRunListSerializer(runs, many=True).data)

    def create(self, request, **kwargs):
        params = self.get_serializer(data=request.data)
        params.is_valid(raise_exception=True)
        wait = params.validated_data.pop("wait")
        target = kwargs.get("target_user_id")
        run, created = request_refresh(
            kind=self.kind,
            requested_by=request.user,
            source=RunSource.API,
            target_user_id=int(target) if target else None,
            **params.validated_data,
        )
        if wait and not run.is_finished:
            run = wait_for_run_within_bounds(run=run, requester_id=request.user.pk, seconds=wait)
        return run_response(run, created=created)


class AllRefreshViewSet(RefreshTriggerViewSet):
    """Every asset's quote and missing history, every portfolio, the strategy and the benchmark."""

    kind = RefreshKind.ALL


class PricesRefreshViewSet(RefreshTriggerViewSet):
    """Latest prices (history too in full mode); no calculations."""

    kind = RefreshKind.PRICES


class PortfolioRefreshViewSet(RefreshTriggerViewSet):
    """One user's holdings' quotes, allocations and performance metrics."""

    kind = RefreshKind.PORTFOLIO

    def get_queryset(self):
        return super().get_queryset().filter(target_user_id=self.kwargs["target_user_id"])


class StrategyRefreshViewSet(RefreshTriggerViewSet):
    """Signals, allocations and rebalance proposals; applies them only when asked."""

    kind = RefreshKind.STRATEGY


class BenchmarkRefreshViewSet(RefreshTriggerViewSet):
    """The benchmark's history and quote, and every portfolio's comparison with it."""

    kind = RefreshKind.BENCHMARK


@run_schema
class RefreshRunViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Runs the requester may see, newest first; filter with ?kind=&status=&mode=&source=."""

    serializer_class = RefreshRunListSerializer
    lookup_field = "refresh_id"
    lookup_value_regex = "ref_[A-Za-z0-9_-]+"

    def get_queryset(self):
        return runs_visible_to(user=self.request.user, filters=self.request.query_params)

    def retrieve(self, request, refresh_id=None):
        run = get_run_for_user(user=request.user, refresh_id=refresh_id)
        return Response(RefreshRunSerializer(run).data)

    @action(detail=True, methods=["post"], serializer_class=serializers.Serializer)  # no body: a bare button
    def cancel(self, request, refresh_id=None):
        run = get_run_for_user(user=request.user, refresh_id=refresh_id)
        return Response(RunStatusSerializer(cancel_run(run=run, requested_by=request.user)).data)
