from django.db import migrations

from core.fillfactor import leave_pages_half_free


class Migration(migrations.Migration):
    """Every refresh rewrites the quotes: room on each page makes the rewrites heap-only (core/fillfactor.py)."""

    dependencies = [
        ("market_data", "0003_no_index_where_a_unique_one_leads"),
    ]

    operations = [
        leave_pages_half_free("market_data", "Quote"),
    ]
