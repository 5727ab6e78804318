"""Run control: a cancel's time beside the old flag, retries linked to their run, idempotency keys,
and the three counts every run reports by default. 0009 copies the data, 0010 drops the flag
(each its own transaction: PostgreSQL will not alter a table with pending trigger events)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

import refresh.models


class Migration(migrations.Migration):
    dependencies = [
        ("refresh", "0007_delete_waitingpickup"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="refreshrun",
            name="cancel_requested_at",
            field=models.DateTimeField(
                blank=True, help_text="When a cancel was asked for; a running run stops at its next batch.", null=True
            ),
        ),
        migrations.AddField(
            model_name="refreshrun",
            name="retry_of",
            field=models.ForeignKey(
                blank=True,
                help_text="The run retried.",
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="retries",
                to="refresh.refreshrun",
            ),
        ),
        migrations.AlterField(
            model_name="refreshrun",
            name="items_updated",
            field=models.JSONField(blank=True, default=refresh.models.no_items_updated),
        ),
        migrations.CreateModel(
            name="IdempotentRequest",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("key", models.CharField(max_length=255)),
                ("fingerprint", models.CharField(help_text="SHA-256 of the request's path and body.", max_length=64)),
                ("created_at", models.DateTimeField(auto_now_add=True, db_index=True)),
                (
                    "requester",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="+", to=settings.AUTH_USER_MODEL
                    ),
                ),
                (
                    "run",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="+", to="refresh.refreshrun"
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(fields=("requester", "key"), name="one_request_per_idempotency_key")
                ],
            },
        ),
    ]
