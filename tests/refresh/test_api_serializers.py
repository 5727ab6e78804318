"""The trigger's serializers copy their declared fields shallowly (refresh.api.serializers.CopiedFieldsSerializer):
each instance still gets fields of its own, and answers exactly as with DRF's deep copies."""

import threading

import pytest
from rest_framework import serializers

from refresh.api.serializers import (
    ActiveRunStatusSerializer,
    CopiedFieldsSerializer,
    FinishedRunStatusSerializer,
    RefreshRequestSerializer,
    run_status,
)
from refresh.models import RunStatus
from refresh.services.execution import execute_run_in_process
from refresh.services.requests import request_refresh


def _with_deep_copies(serializer_class):
    """The same serializer with DRF's own get_fields: every declared field deep-copied."""
    return type(
        f"Deep{serializer_class.__name__}", (serializer_class,), {"get_fields": serializers.Serializer.get_fields}
    )


def test_each_instance_binds_fields_of_its_own():
    first, second = RefreshRequestSerializer(data={}), RefreshRequestSerializer(data={})
    for name, field in first.fields.items():
        assert field is not second.fields[name]
        assert field.parent is first
        assert second.fields[name].parent is second
        assert field.field_name == name
    declared = RefreshRequestSerializer._declared_fields["mode"]
    assert declared.parent is None  # the class's own field is never bound
    assert declared.field_name is None


def test_a_field_holding_another_is_copied_whole():
    first, second = (
        RefreshRequestSerializer(data={}).fields["symbols"],
        RefreshRequestSerializer(data={}).fields["symbols"],
    )
    assert isinstance(first, serializers.ListField)
    assert isinstance(second, serializers.ListField)
    assert first.child is not second.child
    assert first.child.parent is first  # type: ignore[comparison-overlap]  # DRF's stubs type a parent as a serializer
    assert second.child.parent is second  # type: ignore[comparison-overlap]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"mode": "smart", "priority": "high", "symbols": ["AAPL", "MSFT"], "wait": 5},
        {"mode": "sideways"},
        {"symbols": ["A" * 21], "wait": -1, "run_at": "2026-12-08T02:00:00"},
        {"dry_run": "maybe", "unknown": 1},
    ],
)
def test_validation_answers_as_with_deep_copies(body):
    ours, drfs = RefreshRequestSerializer(data=body), _with_deep_copies(RefreshRequestSerializer)(data=body)
    assert ours.is_valid() == drfs.is_valid()
    assert ours.errors == drfs.errors
    if not ours.errors:
        assert ours.validated_data == drfs.validated_data


def test_a_status_renders_as_with_deep_copies(demo, admin):
    queued, _ = request_refresh(kind="prices", requested_by=admin, source="command", enqueue=False)
    assert ActiveRunStatusSerializer(queued).data == _with_deep_copies(ActiveRunStatusSerializer)(queued).data
    assert run_status(queued)["queue_position"] == 1
    execute_run_in_process(run=queued)
    queued.refresh_from_db()
    assert queued.status == RunStatus.SUCCESS
    assert FinishedRunStatusSerializer(queued).data == _with_deep_copies(FinishedRunStatusSerializer)(queued).data


def test_instances_in_threads_do_not_share_state():
    """gunicorn's threads make serializers side by side: each validates its own body."""
    results: dict[int, object] = {}

    def validate(i: int) -> None:
        for _ in range(50):
            body = RefreshRequestSerializer(data={"symbols": [f"S{i}"], "wait": i})
            body.is_valid(raise_exception=True)
            results[i] = (body.validated_data["symbols"], body.validated_data["wait"])

    threads = [threading.Thread(target=validate, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {i: ([f"S{i}"], i) for i in range(8)}


def test_every_plain_api_serializer_copies_shallowly():
    """The request bodies and the run status; ModelSerializers build their fields from the model."""
    assert issubclass(RefreshRequestSerializer, CopiedFieldsSerializer)
    assert issubclass(ActiveRunStatusSerializer, CopiedFieldsSerializer)
    assert issubclass(FinishedRunStatusSerializer, CopiedFieldsSerializer)
