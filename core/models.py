"""Tables of the shared infrastructure."""

from django.db import models

COUNTER_KEY_MAX_LENGTH = 255


class SharedCounter(models.Model):
    """One entry of the database cache in core/counter_cache.py: a number every process changes atomically."""

    key = models.CharField(max_length=COUNTER_KEY_MAX_LENGTH, primary_key=True)
    # A number, not a pickle: the database adds to it in place. Whole numbers read back as int.
    value = models.FloatField()
    expires_at = models.DateTimeField(null=True, db_index=True, help_text="Empty: never expires.")

    def __str__(self):
        return f"{self.key} = {self.value:g}"
