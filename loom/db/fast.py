"""Hot statements compiled once and run on the driver's connection.

Through an ORM session a small SELECT costs about 160 µs of CPU here and
the same statement on the sqlite3 driver 7 µs: the difference is
SQLAlchemy's per-execution work (the ORM's compile state, the execution
context, result metadata, a greenlet switch for every driver call). The
boot path runs some fifty statements per server, so on SQLite a
``Statement`` is compiled once into its SQL text, the order of its
parameters, their type conversions (bind processors), literal values and
Python-side column defaults, and the type conversions of its result
columns; then each run only converts the parameters and calls the driver,
inside the session's transaction (the same connection, the same
write gate), or a ``loom.db.tx.Tx``'s. On other databases, where the
driver call dominates, it runs through the session as any statement does.

Rows are named tuples (attributes as on SQLAlchemy's rows), not ORM
objects: a ``Statement`` is for Core statements (selected columns, inserts, updates, deletes). Pending ORM
changes in the session are flushed first, as autoflush would.
"""

from __future__ import annotations

import collections
import re
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Executable

from loom.db import sqlite
from loom.db.tx import Tx

Params = Mapping[str, Any]
# Where compiled statements run: an ORM session's transaction or a Tx.
Session = AsyncSession | Tx
_POSTCOMPILE = re.compile(r"__\[POSTCOMPILE_(\w+)\]")
_DRIVER = "loom.fast.driver"
_EMPTY_SET = "SELECT 1 FROM (SELECT 1) WHERE 1!=1"


@dataclass(frozen=True)
class _Plan:
    sql: str
    names: tuple[str, ...]
    expanding: frozenset[str]
    binds: Mapping[str, Callable[[Any], Any]]
    literals: Mapping[str, Any]
    defaults: tuple[tuple[str, Any], ...]  # (bind name, ColumnDefault)
    results: tuple[tuple[int, Callable[[Any], Any]], ...]  # (column, its type conversion)
    row: Any  # a named tuple of the result columns, as SQLAlchemy's rows are


def _plan(stmt: Executable, dialect: Dialect, keys: tuple[str, ...]) -> _Plan:
    # An insert or update sets the columns its parameters name (and the
    # defaults of the others): its SQL depends on their keys.
    compiled: Any = stmt.compile(dialect=dialect, column_keys=list(keys))
    names = tuple(compiled.positiontup or ())
    expanding = frozenset(name for name in names if compiled.binds[name].expanding)
    if any(compiled.binds[name].type._is_tuple_type for name in expanding):
        raise ValueError("tuple IN is not supported here")
    literals = {}
    for name in names:
        bind = compiled.binds[name]
        if bind.callable is not None:
            raise ValueError(f"bind parameter {name} computes its value: not supported here")
        if bind.value is not None or not bind.required:
            literals[name] = bind.value
    defaults = []
    for column in [*compiled.insert_prefetch, *compiled.update_prefetch]:
        default = column.onupdate if column in compiled.update_prefetch else column.default
        if not (default.is_callable or default.is_scalar):
            raise ValueError(f"default of {column} is neither a value nor a Python function")
        defaults.append((column.key, default))
    results: tuple[tuple[int, Callable[[Any], Any]], ...] = ()
    row = None
    if compiled._result_columns:
        procs = [entry[3]._cached_result_processor(dialect, None) for entry in compiled._result_columns]
        results = tuple((i, p) for i, p in enumerate(procs) if p is not None)
        row = collections.namedtuple("Row", [entry[0] for entry in compiled._result_columns],  # type: ignore[misc]
                                     rename=True)
    return _Plan(compiled.string, names, expanding, dict(compiled._bind_processors), literals, tuple(defaults),
                 results, row)


class Statement:
    """A Core statement to run many times with different parameters."""

    def __init__(self, stmt: Executable) -> None:
        self.stmt = stmt
        self._plans: dict[tuple[str, tuple[str, ...]], _Plan] = {}

    def plan(self, dialect: Dialect, params: Params) -> _Plan:
        keys = tuple(sorted(params))
        plan = self._plans.get((dialect.name, keys))
        if plan is None:
            plan = self._plans[(dialect.name, keys)] = _plan(self.stmt, dialect, keys)
        return plan


async def _driver(session: Session) -> sqlite.Connection | None:
    """The session's SQLite connection inside its current transaction, or
    None on other databases."""
    if isinstance(session, Tx):
        return session.driver
    sync = session.sync_session
    if sync.autoflush and (sync.new or sync.deleted or sync.dirty):
        await session.flush()
    if sync.bind is not None and sync.bind.dialect.name != "sqlite":
        return None
    transaction = sync.get_transaction()
    cached = session.info.get(_DRIVER)
    if cached is not None and transaction is not None and cached[0] is transaction:
        return cached[1]
    conn = await session.connection()
    driver = (await conn.get_raw_connection()).driver_connection
    if not isinstance(driver, sqlite.Connection):
        return None
    session.info[_DRIVER] = (sync.get_transaction(), driver)
    return driver


def _arguments(plan: _Plan, params: Params) -> tuple[str, list[Any]]:
    sql, out = plan.sql, []
    computed = {name: default.arg(None) if default.is_callable else default.arg
                for name, default in plan.defaults if name not in params}
    for name in plan.names:
        if name in params:
            value = params[name]
        elif name in computed:
            value = computed[name]
        elif name in plan.literals:
            value = plan.literals[name]
        else:
            raise KeyError(f"no value for bind parameter {name!r}")
        convert = plan.binds.get(name)
        if name in plan.expanding:
            values = list(value)
            out.extend(convert(v) for v in values) if convert else out.extend(values)
            # IN () is not SQL: an empty subquery, as SQLAlchemy renders it.
            sql = sql.replace(f"__[POSTCOMPILE_{name}]", ", ".join("?" * len(values)) or _EMPTY_SET, 1)
        else:
            out.append(convert(value) if convert is not None else value)
    return sql, out


_new_tuple = tuple.__new__


def _convert(plan: _Plan, rows: Sequence[tuple[Any, ...]]) -> list[Any]:
    # tuple.__new__ on the row class: namedtuple's own constructor checks
    # what the query's fixed columns already guarantee, at three times the cost.
    row = plan.row
    if not plan.results:
        return [_new_tuple(row, r) for r in rows]
    out = []
    for r in rows:
        values = list(r)
        for i, convert in plan.results:
            values[i] = convert(values[i])
        out.append(_new_tuple(row, values))
    return out


async def rows(session: Session, statement: Statement, params: Params | None = None) -> list[Any]:
    """The rows the statement returns, as named tuples."""
    params = params or {}
    driver = await _driver(session)
    if driver is None:
        return list(await _core(session, statement, params))
    plan = statement.plan(_dialect(session), params)
    sql, args = _arguments(plan, params)
    cursor = await _execute(driver, sql, args)
    return _convert(plan, await cursor.fetchall())


async def first(session: Session, statement: Statement, params: Params | None = None) -> tuple[Any, ...] | None:
    found = await rows(session, statement, params)
    return found[0] if found else None


async def scalar(session: Session, statement: Statement, params: Params | None = None) -> Any:
    row = await first(session, statement, params)
    return row[0] if row else None


async def run(session: Session, statement: Statement, params: Params | None = None) -> int:
    """Run a statement that returns no rows; the number of rows it touched."""
    params = params or {}
    driver = await _driver(session)
    if driver is None:
        return int((await _core(session, statement, params)).rowcount)
    plan = statement.plan(_dialect(session), params)
    sql, args = _arguments(plan, params)
    cursor = await _execute(driver, sql, args)
    return int(cursor.rowcount)


async def run_many(session: Session, statement: Statement, many: Sequence[Params]) -> None:
    """Run a statement once per parameter set (an insert of many rows)."""
    if not many:
        return
    driver = await _driver(session)
    if driver is None:
        await _core(session, statement, list(many))
        return
    plan = statement.plan(_dialect(session), many[0])
    if plan.expanding:
        raise ValueError("run_many takes no expanding parameters")
    args = [_arguments(plan, params)[1] for params in many]
    try:
        await driver.cursor().executemany(plan.sql, args)
    except sqlite3.Error as exc:
        raise DBAPIError.instance(plan.sql, args, exc, sqlite3.Error) from exc


def _dialect(session: Session) -> Dialect:
    if isinstance(session, Tx):
        return session.dialect
    return session.sync_session.bind.dialect  # type: ignore[union-attr]


async def _core(session: Session, statement: Statement, params: Any) -> Any:
    """The statement as Core runs it on the session's connection: the same
    parameter keys (column keys) and results as the compiled path."""
    if isinstance(session, Tx):
        assert session.session is not None, "a Tx on SQLite runs on its driver"
        session = session.session
    conn = await session.connection()
    return await conn.execute(statement.stmt, params)


async def _execute(driver: sqlite.Connection, sql: str, args: list[Any]) -> sqlite.Cursor:
    """The statement on the driver; its errors as SQLAlchemy raises them
    (IntegrityError, OperationalError...), so callers catch one kind."""
    try:
        return await driver.execute(sql, args)
    except sqlite3.Error as exc:
        raise DBAPIError.instance(sql, args, exc, sqlite3.Error) from exc
