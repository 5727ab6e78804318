"""Turning numpy figures into stored values, and the bulk write every analytics table uses.

A full refresh writes about fifteen analytics rows per portfolio. Building a model instance
and running Django's per-value field preparation for each of them cost more than the
database itself, so rows go to the driver as plain columns in one ``executemany`` per
chunk, the way market data's bars do.
"""
from collections.abc import Sequence

import numpy as np
import psycopg
from django.conf import settings
from django.db import connections, models, router

# Fields whose values callers already give in a form both drivers take as they are
# (ints, floats, str, None); every other field's values go through Django's preparation.
RAW_FIELD_TYPES = frozenset({
    "AutoField", "BigAutoField", "BigIntegerField", "CharField", "DecimalField", "FloatField", "ForeignKey",
    "IntegerField", "OneToOneField", "PositiveIntegerField", "SmallIntegerField", "TextField",
})


def finite_or_none(values) -> list[float | None]:
    """Floats with NaN and infinities as None (stored as NULL: the figure could not be calculated)."""
    values = np.asarray(values, dtype=np.float64)
    out = values.astype(object)
    out[~np.isfinite(values)] = None
    return out.tolist()


def rounded(values, places: int) -> list[float]:
    """Floats rounded to a DecimalField's places; non-finite values become 0.

    Both SQLite (REAL affinity) and PostgreSQL (numeric, from the literal's shortest repr)
    store the rounded float exactly as the Decimal it stands for.
    """
    values = np.asarray(values, dtype=np.float64)
    return np.round(np.where(np.isfinite(values), values, 0.0), places).tolist()


def _conflict_clause(connection, model: type[models.Model], names: list[str],
                     unique_fields: Sequence[str] | None) -> str:
    if not unique_fields:
        return ""
    quote = connection.ops.quote_name
    conflict = [quote(model._meta.get_field(name).column) for name in unique_fields]
    updates = ", ".join(f"{name} = EXCLUDED.{name}" for name in names if name not in conflict)
    return f" ON CONFLICT ({', '.join(conflict)}) DO UPDATE SET {updates}"


def _execute(connection, model, fields: list[models.Field], data: list[list], count: int,
             constants: int, unique_fields: Sequence[str] | None) -> None:
    """Runs the insert for `count` rows: data holds one list per column, then one value per constant.

    PostgreSQL gets each chunk as one statement over typed arrays (binary, one round trip);
    SQLite runs the row statement over every row in its own C loop.
    """
    quote = connection.ops.quote_name
    names = [quote(field.column) for field in fields]
    table = quote(model._meta.db_table)
    conflict = _conflict_clause(connection, model, names, unique_fields)
    batch = settings.REFRESH_WRITE_BATCH
    split = len(fields) - constants
    if connection.vendor == "postgresql":
        types = [field.db_type(connection) for field in fields]
        arrays = ", ".join(f"%s::{kind}[]" for kind in types[:split])
        scalars = "".join(f", %s::{kind}" for kind in types[split:])
        sql = (f"INSERT INTO {table} ({', '.join(names)}) SELECT row.*{scalars} FROM unnest({arrays}) AS row"
               f"{conflict}")
        # A server-binding cursor sends the arrays as binary; Django's client-side cursor
        # would quote every value into the SQL text.
        with psycopg.Cursor(connection.connection) as cursor:
            for start in range(0, count, batch):
                cursor.execute(sql, data[split:] + [column[start:start + batch] for column in data[:split]])
        return
    sql = f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join(['%s'] * len(names))}){conflict}"
    constant_values = tuple(data[split:])
    rows = [row + constant_values for row in zip(*data[:split])]
    with connection.cursor() as cursor:
        for start in range(0, count, batch):
            cursor.executemany(sql, rows[start:start + batch])


def write_rows(model: type[models.Model], *, columns: dict[str, Sequence], constants: dict | None = None,
               unique_fields: Sequence[str] | None = None) -> int:
    """Inserts rows given as columns (field name -> one value per row) plus constants (the
    same value in every row); with unique_fields, a row matching an existing one on them
    overwrites its other given fields instead. Returns how many rows were written.

    Values of the fields in RAW_FIELD_TYPES must already be plain ints, floats, str or None
    (see finite_or_none and rounded); the rest (dates, JSON) are prepared by their field.
    Runs in the caller's transaction.
    """
    constants = constants or {}
    lengths = {len(values) for values in columns.values()}
    if len(lengths) != 1:
        raise ValueError(f"columns must be given, all of one length: {sorted(lengths)}")
    count = lengths.pop()
    if not count:
        return 0
    connection = connections[router.db_for_write(model)]
    fields = [model._meta.get_field(name) for name in [*columns, *constants]]

    def prepared(field, values):
        if field.get_internal_type() in RAW_FIELD_TYPES:
            return values
        return [field.get_db_prep_save(value, connection) for value in values]

    data = [prepared(field, list(values)) for field, values in zip(fields, columns.values())]
    data += [field.get_db_prep_save(value, connection) for field, value in zip(fields[len(columns):],
                                                                               constants.values())]
    connection.ensure_connection()
    _execute(connection, model, fields, data, count, len(constants), unique_fields)
    return count
