"""Saving one new row with a statement built once, for the rows written on every request.

Model.save() builds its INSERT anew for each row. For a model of thirty fields that cost more
than the database's own work, and on SQLite it ran inside the single write lock, so every
other writer waited for Django's query building too.
"""
from functools import lru_cache

from django.db import connections, models, router
from django.db.models import signals


@lru_cache(maxsize=None)
def _insert_statement(model: type[models.Model], alias: str) -> tuple[str, list, tuple]:
    """The INSERT of one new row of `model` (every concrete field but the automatic primary key),
    returning its primary key."""
    connection = connections[alias]
    meta = model._meta
    fields = [field for field in meta.local_concrete_fields if not field.generated and field is not meta.auto_field]
    quote = connection.ops.quote_name
    returning, returning_params = connection.ops.return_insert_columns([meta.pk])
    sql = (f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(field.column) for field in fields)}) "
           f"VALUES ({', '.join(['%s'] * len(fields))}) {returning}")
    return sql, fields, tuple(returning_params)


def insert_new(instance: models.Model) -> None:
    """Save a new instance with one INSERT, as Model.save() would.

    The statement is built once per model and database; values are prepared by their fields
    (pre_save fills auto_now_add and the like), and pre_save and post_save are sent as save()
    sends them. Plain values only: an expression (F(), Now()) needs save().
    """
    model = type(instance)
    alias = router.db_for_write(model, instance=instance)
    connection = connections[alias]
    if not connection.features.can_return_columns_from_insert:
        raise NotImplementedError(f"{connection.vendor} cannot return the new row's key from its INSERT")
    sql, fields, returning_params = _insert_statement(model, alias)
    signals.pre_save.send(sender=model, instance=instance, raw=False, using=alias, update_fields=None)
    params = []
    for field in fields:
        value = field.pre_save(instance, True)
        if hasattr(value, "resolve_expression"):
            raise ValueError(f"{field.name} is an expression; save() it instead")
        params.append(field.get_db_prep_save(value, connection))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        (pk,) = connection.ops.fetch_returned_insert_columns(cursor, returning_params)
    instance.pk = pk
    instance._state.adding = False
    instance._state.db = alias
    signals.post_save.send(sender=model, instance=instance, created=True, update_fields=None, raw=False,
                           using=alias)
