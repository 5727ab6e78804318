"""The tables every refresh rewrites leave half of each page free on PostgreSQL (core/fillfactor.py)."""

import pytest
from django.apps import apps
from django.db import connection
from django.db.migrations.state import ProjectState

from core.fillfactor import leave_pages_half_free
from market_data.models import Quote
from portfolios.models import Allocation, BenchmarkComparison, PortfolioMetrics, Signal

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite has no fillfactor")


def fillfactor(model) -> str | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT reloptions FROM pg_class WHERE relname = %s", [model._meta.db_table])
        (options,) = cursor.fetchone()
    return next((option.split("=")[1] for option in options or [] if option.startswith("fillfactor=")), None)


@pytest.mark.django_db
def test_the_migrations_leave_half_of_each_page_free_in_the_rewritten_tables():
    assert {
        model.__name__: fillfactor(model)
        for model in (Allocation, BenchmarkComparison, PortfolioMetrics, Signal, Quote)
    } == {
        "Allocation": "50",
        "BenchmarkComparison": "50",
        "PortfolioMetrics": "50",
        "Signal": "50",
        "Quote": "50",
    }


@pytest.mark.django_db
def test_the_operation_reverses_to_the_default_and_applies_again():
    operation = leave_pages_half_free("market_data", "Quote")
    state = ProjectState.from_apps(apps).apps
    assert operation.reverse_code is not None
    with connection.schema_editor() as editor:
        operation.reverse_code(state, editor)
        reset = fillfactor(Quote)
        operation.code(state, editor)

    assert (reset, fillfactor(Quote)) == (None, "50")
