"""The cancel flag is now the cancel's time (0008, 0009)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("refresh", "0009_run_control_data")]

    operations = [migrations.RemoveField(model_name="refreshrun", name="cancel_requested")]
