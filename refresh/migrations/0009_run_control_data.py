"""Runs cancelled before 0008 get a cancel time; every run gets the three reported counts."""

from django.db import migrations
from django.db.models.functions import Coalesce

REPORTED_COUNTS = ("prices", "portfolios", "metrics")


def forwards(apps, schema_editor):
    RefreshRun = apps.get_model("refresh", "RefreshRun")
    RefreshRun.objects.filter(cancel_requested=True).update(
        cancel_requested_at=Coalesce("finished_at", "created_at")
    )
    batch = []
    for run in RefreshRun.objects.only("pk", "items_updated").iterator(chunk_size=2000):
        counts = run.items_updated or {}
        if any(name not in counts for name in REPORTED_COUNTS):
            run.items_updated = {**dict.fromkeys(REPORTED_COUNTS, 0), **counts}
            batch.append(run)
        if len(batch) >= 2000:
            RefreshRun.objects.bulk_update(batch, ["items_updated"])
            batch = []
    RefreshRun.objects.bulk_update(batch, ["items_updated"])


def backwards(apps, schema_editor):
    RefreshRun = apps.get_model("refresh", "RefreshRun")
    RefreshRun.objects.filter(cancel_requested_at__isnull=False).update(cancel_requested=True)


class Migration(migrations.Migration):
    dependencies = [("refresh", "0008_run_control")]

    operations = [migrations.RunPython(forwards, backwards, elidable=True)]
