from django.db import migrations

from core.fillfactor import leave_pages_half_free


class Migration(migrations.Migration):
    """Every refresh rewrites these rows: room on each page makes the rewrites heap-only (core/fillfactor.py)."""

    dependencies = [
        ("portfolios", "0004_no_index_where_a_unique_one_leads"),
    ]

    operations = [
        leave_pages_half_free("portfolios", "Allocation", "BenchmarkComparison", "PortfolioMetrics", "Signal"),
    ]
