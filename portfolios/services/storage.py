"""Turning numpy figures into stored values, and the bulk upsert every analytics write uses."""
import math
from collections.abc import Sequence
from decimal import Decimal

from django.conf import settings
from django.db import models


def float_or_none(value: float) -> float | None:
    """NaN and infinities are stored as NULL: the figure could not be calculated."""
    value = float(value)
    return value if math.isfinite(value) else None


def to_decimal(value: float, places: int) -> Decimal:
    """A float rounded to `places` decimals for a DecimalField; non-finite values become 0."""
    value = float(value)
    return Decimal(f"{value:.{places}f}") if math.isfinite(value) else Decimal(0)


def upsert(model: type[models.Model], rows: Sequence[models.Model], *, unique_fields: list[str]) -> int:
    """Inserts rows or, where unique_fields already match, overwrites every other concrete field."""
    if not rows:
        return 0
    update_fields = [
        field.name for field in model._meta.concrete_fields
        if not field.primary_key and field.name not in unique_fields
    ]
    model.objects.bulk_create(
        rows, batch_size=settings.REFRESH_WRITE_BATCH, update_conflicts=True,
        unique_fields=unique_fields, update_fields=update_fields,
    )
    return len(rows)
