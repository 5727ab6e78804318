from django.db import migrations, models


class Migration(migrations.Migration):
    """Batches name their recalculation, so that a helping worker moves on from one pass to the next."""

    dependencies = [
        ("portfolios", "0005_rewritten_tables_leave_pages_half_free"),
    ]

    operations = [
        migrations.AddField(
            model_name="calculationbatch",
            name="series",
            field=models.CharField(
                blank=True,
                help_text="The coordinator's shared reads: the passes of one recalculation share it, and a worker "
                "that helped with one pass moves on to the next, keeping what it read.",
                max_length=32,
            ),
        ),
    ]
