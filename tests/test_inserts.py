"""insert_new saves a new row exactly as Model.save() would, with a statement built once."""
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import F, signals
from django.forms.models import model_to_dict
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from refresh.models import RefreshRun, RunStatus
from refresh_project.inserts import insert_new

pytestmark = pytest.mark.django_db


SOON = timezone.now() + timedelta(seconds=42)


def run_values(user, key: str) -> dict:
    return dict(kind="portfolio", mode="smart", priority=30, requested_by=user, requested_role="user", source="api",
                target_user=user, params={"symbols": ["AAPL"], "apply_rebalancing": False}, dedup_key=key,
                request_id="req-1", scope=f"portfolio:{user.pk}",
                estimated_completion=SOON, items_updated={"prices": 3},
                errors=["one"], status=RunStatus.QUEUED)


def stored(run: RefreshRun) -> dict:
    """Every column as read back from the database, bar those that differ between two rows anyway."""
    row = model_to_dict(RefreshRun.objects.get(pk=run.pk))
    return {name: value for name, value in row.items() if name not in ("id", "refresh_id", "dedup_key")}


def test_the_row_is_the_one_save_would_write(alice):
    by_save = RefreshRun.objects.create(**run_values(alice, "a"))
    by_insert = RefreshRun(**run_values(alice, "b"))

    insert_new(by_insert)

    assert by_insert.pk is not None and by_insert.pk != by_save.pk
    assert stored(by_insert) == stored(by_save)
    fresh = RefreshRun.objects.get(pk=by_insert.pk)
    assert fresh.refresh_id == by_insert.refresh_id and fresh.created_at == by_insert.created_at  # defaults, auto_now_add
    assert fresh.created_at is not None


def test_the_instance_is_saved_afterwards(alice):
    run = RefreshRun(**run_values(alice, "a"))

    insert_new(run)
    run.current_step = "Fetching data"
    run.save()  # an update of the same row, not a second insert

    assert not run._state.adding and run._state.db == "default"
    assert RefreshRun.objects.get().current_step == "Fetching data"


def test_one_statement_and_the_save_signals(alice):
    sent = []

    def pre(sender, instance, raw, using, update_fields, **kwargs):
        sent.append(("pre_save", instance.pk, raw, using, update_fields))

    def post(sender, instance, created, raw, using, update_fields, **kwargs):
        sent.append(("post_save", instance.pk is not None, created, raw, using, update_fields))

    signals.pre_save.connect(pre, sender=RefreshRun)
    signals.post_save.connect(post, sender=RefreshRun)
    try:
        with CaptureQueriesContext(connection) as queries:
            insert_new(RefreshRun(**run_values(alice, "a")))
    finally:
        signals.pre_save.disconnect(pre, sender=RefreshRun)
        signals.post_save.disconnect(post, sender=RefreshRun)

    assert [q["sql"].split()[0] for q in queries] == ["INSERT"]
    assert sent == [("pre_save", None, False, "default", None), ("post_save", True, True, False, "default", None)]


def test_an_expression_is_refused_before_anything_is_written(alice):
    run = RefreshRun(**run_values(alice, "a"))
    run.priority = F("priority") + 1

    with pytest.raises(ValueError, match="priority is an expression"):
        insert_new(run)

    assert not RefreshRun.objects.exists()
