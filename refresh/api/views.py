"""Refresh API: one small trigger viewset per kind on a shared base, and the runs with their symbols."""

from functools import lru_cache, partial
from http import HTTPStatus

from django.urls import get_script_prefix, reverse
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from refresh.api.filters import RunFilter, RunSymbolFilter, StrictFilterBackend
from refresh.api.permissions import CanRequestRefresh
from refresh.api.schema import run_schema, trigger_schema
from refresh.api.serializers import (
    PrioritySerializer,
    RefreshPlanSerializer,
    RefreshRequestSerializer,
    RefreshRunListSerializer,
    RefreshRunSerializer,
    RetrySerializer,
    RunSymbolSerializer,
    run_status,
)
from refresh.models import RefreshKind, RefreshRun, RunSource, RunSymbol
from refresh.selectors import get_run_for_user, run_symbol_outcomes, runs_visible_to
from refresh.services.dry_run import plan_refresh
from refresh.services.execution import cancel_run
from refresh.services.idempotency import request_fingerprint, start_once
from refresh.services.requests import request_refresh
from refresh.services.run_control import reprioritise_run, retry_run
from refresh.services.waiting import wait_for_run_within_bounds

IDEMPOTENCY_HEADER = "Idempotency-Key"


@lru_cache(maxsize=8)
def _runs_url(script_prefix: str) -> str:
    """The runs' list URL where the API is mounted. Reversed once: reverse() costs a trigger as much
    as a tenth of its answer, and a run's URL is this plus its id, which is URL-safe."""
    return reverse("refresh-run-list") + "/"


def run_location(run: RefreshRun) -> str:
    """The URL of a run's detail, as the Location of the answer that started it."""
    return f"{_runs_url(get_script_prefix())}{run.refresh_id}/"


def run_response(run, *, created: bool) -> Response:
    """202 with a Location while the run is active; 200 once it finished or when deduplicated."""
    code = HTTPStatus.ACCEPTED if created and not run.is_finished else HTTPStatus.OK
    return Response(run_status(run), status=code, headers={"Location": run_location(run)})


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
        dry_run = params.validated_data.pop("dry_run")
        target = kwargs.get("target_user_id")
        target_user_id = int(target) if target else None
        key = request.headers.get(IDEMPOTENCY_HEADER)
        fingerprint = (
            ""
            if key is None
            else request_fingerprint({"kind": self.kind, "target_user_id": target_user_id, **params.validated_data})
        )
        if dry_run:
            plan = plan_refresh(
                kind=self.kind,
                requested_by=request.user,
                target_user_id=target_user_id,
                idempotency_key=key,
                fingerprint=fingerprint,
                **params.validated_data,
            )
            return Response(RefreshPlanSerializer(plan).data, status=HTTPStatus.OK)
        start = partial(
            request_refresh,
            kind=self.kind,
            requested_by=request.user,
            source=RunSource.API,
            target_user_id=target_user_id,
            **params.validated_data,
        )
        run, created = start_once(requester=request.user, key=key, fingerprint=fingerprint, start=start)
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
    """Runs the requester may see, newest first, filtered by the query string (refresh.api.filters),
    and each one's symbols."""

    serializer_class = RefreshRunListSerializer
    filter_backends = [StrictFilterBackend]
    filterset_class = RunFilter
    lookup_field = "refresh_id"
    lookup_value_regex = "ref_[A-Za-z0-9_-]+"

    def get_queryset(self):
        """The runs the requester may see; for `symbols`, the outcomes of the run in the path."""
        symbols = self.action == "symbols"
        if getattr(self, "swagger_fake_view", False):  # the schema generator asks with no user, for the model
            return RunSymbol.objects.none() if symbols else RefreshRun.objects.none()
        if symbols:
            run = get_run_for_user(user=self.request.user, refresh_id=self.kwargs["refresh_id"])
            return run_symbol_outcomes(run=run)
        return runs_visible_to(user=self.request.user)

    def retrieve(self, request, refresh_id=None):
        run = get_run_for_user(user=request.user, refresh_id=refresh_id)
        return Response(RefreshRunSerializer(run).data)

    def partial_update(self, request, refresh_id=None):
        """PATCH {"priority": ...}: move a queued run in the queue."""
        body = PrioritySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        run = get_run_for_user(user=request.user, refresh_id=refresh_id)
        run = reprioritise_run(run=run, requested_by=request.user, priority=body.validated_data["priority"])
        return Response(run_status(run))

    @action(detail=True, methods=["post"], serializer_class=serializers.Serializer)  # no body: a bare button
    def cancel(self, request, refresh_id=None):
        run = get_run_for_user(user=request.user, refresh_id=refresh_id)
        return Response(run_status(cancel_run(run=run, requested_by=request.user)))

    @action(detail=True, methods=["post"], serializer_class=RetrySerializer)
    def retry(self, request, refresh_id=None):
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        run = get_run_for_user(user=request.user, refresh_id=refresh_id)
        retry, created = retry_run(run=run, requested_by=request.user, source=RunSource.API, **body.validated_data)
        return run_response(retry, created=created)

    @action(detail=True, methods=["get"], serializer_class=RunSymbolSerializer, filterset_class=RunSymbolFilter)
    def symbols(self, request, refresh_id=None):
        """Each symbol the run dealt with and its outcome, by symbol; ?outcome= narrows them."""
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)
