"""The raw DB-API fast path shared by the engine and the audit chain.

On the hot statements (one-key loads, versioned updates, outbox and audit inserts) SQLAlchemy's
execution -- compiled-cache lookup, per-row parameter dicts and processing, result set-up -- costs
several times the statement itself (see bench/). Here such statements run on the driver's own
cursor inside the connection's open transaction, with the bind and result processors SQLAlchemy
would have applied, and with DB-API errors raised as SQLAlchemy's exception types. Every function
returns None where the fast path does not apply (no open transaction, a driver without
positional marks); the caller then goes through SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Select
from sqlalchemy.exc import DBAPIError

POSITIONAL_MARKS = {"qmark": "?", "format": "%s", "pyformat": "%s"}  # by DB-API paramstyle


def raw_cursor(conn: Connection) -> Any:
    """The driver's own cursor on ``conn``'s connection, for reads that need no transaction
    (e.g. walking the audit chain); its errors are the driver's."""
    return conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]


def driver_error(conn: Connection, statement: str, params: Any, exc: Exception) -> Exception:
    """The SQLAlchemy exception (``IntegrityError``, ``OperationalError`` …) for a DB-API error."""
    return DBAPIError.instance(statement, params, exc, conn.dialect.loaded_dbapi.Error,
                               dialect=conn.dialect)


class Cursor:
    """A driver cursor inside a connection's open transaction whose errors are SQLAlchemy's.

    Use it as a context manager: leaving the block closes the cursor."""

    __slots__ = ("conn", "raw")

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.raw = raw_cursor(conn)

    def __enter__(self) -> Cursor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.raw.close()

    def execute(self, sql: str, params: Any = None) -> Any:
        """Run one statement; returns the driver's cursor (to fetch from)."""
        try:
            return self.raw.execute(sql) if params is None else self.raw.execute(sql, params)
        except self.conn.dialect.loaded_dbapi.Error as exc:  # looked up only on an error
            raise driver_error(self.conn, sql, params, exc) from exc

    def executemany(self, sql: str, rows: Any) -> int:
        """Run one statement for many parameter tuples; returns the rowcount."""
        try:
            self.raw.executemany(sql, rows)
            return int(self.raw.rowcount)
        except self.conn.dialect.loaded_dbapi.Error as exc:
            raise driver_error(self.conn, sql, rows, exc) from exc


def cursor(conn: Connection) -> Cursor | None:
    """A ``Cursor`` inside ``conn``'s open transaction; None when none is open (then go through
    SQLAlchemy, which begins one)."""
    return Cursor(conn) if conn.in_transaction() else None


# ---- one-key SELECTs -----------------------------------------------------------------------


@dataclass(frozen=True)
class DriverSelect:
    """A SELECT with one ``key`` parameter compiled once for a dialect, for the driver's cursor:
    its SQL, its other (constant) parameters already bind-processed, and its result keys and
    result processors by position -- what a Core execution would apply, without its overhead."""

    sql: str
    order: tuple[str, ...] | None  # parameter names by position; None for named paramstyles
    constants: dict[str, Any]
    key_processor: Callable[[Any], Any] | None
    names: tuple[str, ...]
    processors: tuple[Callable[[Any], Any] | None, ...]

    @property
    def processing(self) -> list[tuple[int, Callable[[Any], Any]]]:
        """(position, processor) of the columns that have one."""
        return [(i, p) for i, p in enumerate(self.processors) if p is not None]

    def params(self, key: Any) -> Any:
        value = key if self.key_processor is None else self.key_processor(key)
        if self.order is None:
            return {**self.constants, "key": value}
        return tuple(value if name == "key" else self.constants[name] for name in self.order)


@lru_cache(maxsize=64)
def driver_select(dialect: Any, stmt: Select[Any]) -> DriverSelect:
    compiled = stmt.compile(dialect=dialect)

    def bind_processor(name: str) -> Callable[[Any], Any] | None:
        return compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)

    constants = {}
    for name, value in compiled.params.items():
        if name != "key":
            process = bind_processor(name)
            constants[name] = value if process is None else process(value)
    order = tuple(compiled.positiontup or ()) if compiled.positional else None
    columns = stmt.selected_columns
    # SQLite's result processors never look at the driver's type code; other dialects' may
    # (PostgreSQL's Numeric), so there the rows are only used raw (plain int/str columns).
    processors = tuple(c.type.dialect_impl(dialect).result_processor(dialect, None)
                       if dialect.name == "sqlite" else None for c in columns)
    return DriverSelect(str(compiled), order, constants, bind_processor("key"),
                        tuple(c.key for c in columns), processors)


def _fetch(conn: Connection, spec: DriverSelect, key: Any) -> list[Any] | None:
    found = cursor(conn)
    if found is None:
        return None
    with found:
        return list(found.execute(spec.sql, spec.params(key)).fetchall())


def query(conn: Connection, stmt: Select[Any], key: Any) -> list[Any] | None:
    """Raw rows of a SELECT with a single ``key`` parameter whose columns are plain ints and
    strings (no result processing to miss), through the driver's cursor; None when outside a
    transaction (then run it through SQLAlchemy)."""
    return _fetch(conn, driver_select(conn.dialect, stmt), key)


def records(conn: Connection, stmt: Select[Any], key: Any) -> list[dict[str, Any]] | None:
    """A one-key SELECT's rows as dicts, through the driver's cursor with SQLAlchemy's own
    result processors applied (dates, JSON, decimals): a fifth of the cost of a Core execution.
    SQLite only (its processors never depend on the driver's type codes); None elsewhere or
    outside a transaction."""
    if conn.dialect.name != "sqlite":
        return None
    spec = driver_select(conn.dialect, stmt)
    rows = _fetch(conn, spec, key)
    if rows is None:
        return None
    names = spec.names
    if len(rows) < 8:
        processors = spec.processors
        return [
            dict(zip(names, [v if p is None else p(v) for p, v in zip(processors, row, strict=True)],
                     strict=True))
            for row in rows
        ]
    # Many rows: process column by column (``map`` in C per column) rather than value by value.
    columns: list[Any] = list(zip(*rows, strict=True))
    for i, process in spec.processing:
        columns[i] = map(process, columns[i])
    return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]


# ---- INSERT and UPDATE by position ---------------------------------------------------------


@lru_cache(maxsize=128)
def dml(
    dialect: Any, table: Any, columns: tuple[str, ...], where: tuple[str, ...]
) -> tuple[str, tuple[tuple[int, Callable[[Any], Any]], ...]] | None:
    """Positional SQL for ``INSERT (columns)`` or, with ``where``, ``UPDATE SET columns WHERE
    where = …``, and the columns' bind processors by position (what SQLAlchemy would apply);
    None if the driver's paramstyle has no positional mark."""
    mark = POSITIONAL_MARKS.get(dialect.paramstyle)
    if mark is None:
        return None
    quote = dialect.identifier_preparer.quote
    name = dialect.identifier_preparer.format_table(table)
    if where:
        sets = ", ".join(f"{quote(c)} = {mark}" for c in columns)
        cond = " AND ".join(f"{quote(c)} = {mark}" for c in where)
        sql = f"UPDATE {name} SET {sets} WHERE {cond}"
    else:
        sql = (f"INSERT INTO {name} ({', '.join(quote(c) for c in columns)}) "
               f"VALUES ({', '.join([mark] * len(columns))})")
    processors = []
    for i, column in enumerate((*columns, *where)):
        process = table.c[column].type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            processors.append((i, process))
    return sql, tuple(processors)


def executemany(
    conn: Connection, table: Any, columns: tuple[str, ...], where: tuple[str, ...],
    rows: list[tuple[Any, ...]],
) -> int | None:
    """Run many rows of one INSERT/UPDATE through the driver's executemany with positional
    tuples: the per-row parameter dicts and processing of an SQLAlchemy executemany cost more
    than the statement. Returns the rowcount, or None where this is not possible."""
    spec = dml(conn.dialect, table, columns, where)
    found = cursor(conn) if spec is not None else None
    if found is None or spec is None:
        return None
    sql, processors = spec
    if processors:
        lists = list(map(list, rows))  # ``rows`` keeps every original value alive meanwhile
        for i, process in processors:
            done: dict[int, Any] = {}  # by identity: a batch shares one moment, one state …
            for values in lists:
                value = values[i]
                key = id(value)
                if key not in done:
                    done[key] = process(value)
                values[i] = done[key]
        rows = list(map(tuple, lists))
    with found:
        return found.executemany(sql, rows)


# ---- PostgreSQL's set-wise forms --------------------------------------------------------------


def copy_rows(found: Cursor, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> bool:
    """``COPY table (columns) FROM STDIN`` of ``rows`` on psycopg (3); False on any other driver
    (the caller then uses executemany). Values must be what the driver adapts itself (no bind
    processing): ints, strings, booleans, aware datetimes."""
    copy = getattr(found.raw, "copy", None)
    if copy is None or found.conn.dialect.name != "postgresql":
        return False
    sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    try:
        with copy(sql) as stream:
            for row in rows:
                stream.write_row(row)
    except found.conn.dialect.loaded_dbapi.Error as exc:
        raise driver_error(found.conn, sql, None, exc) from exc
    return True


@lru_cache(maxsize=64)
def _unnest_update(dialect: Any, table: Any, columns: tuple[str, ...]) -> tuple[
        str, tuple[Callable[[Any], Any] | None, ...]]:
    quote = dialect.identifier_preparer.quote
    name = dialect.identifier_preparer.format_table(table)
    types = [table.c[c].type.compile(dialect=dialect) for c in columns]
    arrays = ", ".join(f"%s::{t}[]" for t in (*types, "BIGINT", "BIGINT"))
    aliases = ", ".join([*(f"v_{c}" for c in columns), "k_id", "k_version"])
    sets = ", ".join(f"{quote(c)} = v.v_{c}" for c in columns)
    sql = (f"UPDATE {name} SET {sets} FROM unnest({arrays}) AS v({aliases}) "
           f"WHERE {name}.id = v.k_id AND {name}.version = v.k_version")
    processors = tuple(table.c[c].type.dialect_impl(dialect).bind_processor(dialect)
                       for c in columns)
    return sql, processors


def update_from_unnest(conn: Connection, table: Any, columns: tuple[str, ...],
                       rows: list[tuple[Any, ...]]) -> int | None:
    """``UPDATE table SET columns … FROM unnest(arrays) WHERE id = … AND version = …``: one
    statement for many versioned updates on PostgreSQL (each row ``(*values, id, old_version)``);
    the rowcount, or None where it does not apply (then use ``executemany``)."""
    if conn.dialect.name != "postgresql" or not rows:
        return None
    found = cursor(conn)
    if found is None:
        return None
    sql, processors = _unnest_update(conn.dialect, table, columns)
    arrays = [list(values) for values in zip(*rows, strict=True)]
    for i, process in enumerate(processors):
        if process is not None:
            arrays[i] = [process(v) for v in arrays[i]]
    with found:
        try:  # binary: arrays of 10,000 values go without text quoting (psycopg)
            return int(found.raw.execute(sql, arrays, binary=True).rowcount)
        except conn.dialect.loaded_dbapi.Error as exc:
            raise driver_error(conn, sql, None, exc) from exc
