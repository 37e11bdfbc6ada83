"""Insert several model instances with one SQL statement, atomically.

A create writes the order, its outbox event (and its idempotency key) together. Inside
`transaction.atomic()` that costs four round trips to PostgreSQL (BEGIN, two or three
INSERTs, COMMIT); chained as data-modifying CTEs (`WITH a AS (INSERT ...) INSERT ...`)
it is one statement, which PostgreSQL runs in one implicit transaction: all rows or
none. Each INSERT is compiled by Django's own insert compiler (once per model), and its
values adapted as the compiler adapts them, so fields, defaults and value adaptation
(JSON, UUID, Decimal) are exactly what `Model.save()` would send.
"""

from __future__ import annotations

import functools

from django.db import connections, models, router
from django.db.models.sql import InsertQuery


def _fields(model: type[models.Model], with_pk: bool) -> tuple[models.Field, ...]:
    meta = model._meta
    return tuple(
        field
        for field in meta.local_concrete_fields
        if with_pk or not (field is meta.pk and getattr(field, "db_returning", False))
    )


@functools.cache
def _insert_sql_text(model: type[models.Model], with_pk: bool, using: str) -> str:
    """The INSERT of one `model` row, compiled by Django once per model: compiling it on
    every request took about a seventh of a create's CPU."""
    query = InsertQuery(model)
    query.insert_values(list(_fields(model, with_pk)), [model()])
    [(sql, _)] = query.get_compiler(using=using).as_sql()
    return sql


def _insert_sql(instance: models.Model, using: str) -> tuple[str, tuple]:
    model = type(instance)
    with_pk = instance.pk is not None
    connection = connections[using]
    # What the insert compiler sends for each field (pre_save, then get_db_prep_save).
    params = tuple(
        field.get_db_prep_save(field.pre_save(instance, True), connection=connection)
        for field in _fields(model, with_pk)
    )
    return _insert_sql_text(model, with_pk, using), params


def insert_in_one_statement(*instances: models.Model) -> None:
    """INSERT every instance in one atomic statement (all on the same database alias).

    Auto-increment primary keys are left to the database and not read back. Raises the
    database's IntegrityError, with no row written, when any of the INSERTs fails.
    """
    aliases = {router.db_for_write(type(instance)) for instance in instances}
    if len(aliases) != 1:
        raise ValueError(f"instances span several databases: {sorted(aliases)}")
    using = aliases.pop()
    statements = [_insert_sql(instance, using) for instance in instances]
    *leading, (last_sql, last_params) = statements
    ctes = ", ".join(f"insert_{index} AS ({sql})" for index, (sql, _) in enumerate(leading))
    sql = f"WITH {ctes} {last_sql}" if leading else last_sql
    params = tuple(p for _, ps in leading for p in ps) + last_params
    with connections[using].cursor() as cursor:
        cursor.execute(sql, params)
    for instance in instances:
        instance._state.adding = False
        instance._state.db = using
