"""An asyncio SQLite connection that makes statements cheap.

SQLAlchemy's aiosqlite adapter makes four thread hops for every statement
(cursor, execute, fetch, close), and each hop costs a wake-up of the event
loop from the worker thread: about 0.15 ms of CPU a hop here, twenty times
the statement itself. A statement only needs a thread when it may wait:
for the write lock another process holds, or for a checkpoint's fsync. So
this connection runs every statement right on the event loop, with
SQLite's busy timeout at zero; a statement that finds the database locked
by another process is run again on the connection's own thread with the
full busy timeout. In WAL mode a SELECT never waits for a lock, a commit
does not fsync (``synchronous=NORMAL``), and the automatic checkpoint
(which does) is turned off: every ``CHECKPOINT_EVERY`` commits of a
process, the committing connection checkpoints on its thread. It speaks
the subset of aiosqlite's interface that SQLAlchemy's ``sqlite+aiosqlite``
dialect uses, and is handed to it through ``async_creator``.

SQLite has one writer at a time. A second connection that tries to write
meanwhile gets SQLITE_BUSY. So the connections of one process queue for a
``WriteGate`` first: a connection takes it at the first write of a
transaction and gives it back at commit or rollback; the busy timeout
remains for writers in other processes.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
Row = tuple[Any, ...]
# How long a writer waits for another process's write lock, and as long
# for the gate of this process's writers.
BUSY_TIMEOUT = 30.0
GATE_TIMEOUT = BUSY_TIMEOUT
# Commits of one process between two checkpoints of the WAL into the
# database file (SQLite's automatic checkpoint runs every 1,000 pages).
CHECKPOINT_EVERY = 500
# Every connection's settings. WAL lets readers run beside the one writer;
# the busy timeout is this module's business (zero on the event loop).
PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", "PRAGMA foreign_keys=ON")


class WriteGate:
    """The right to write, for the connections of one database in one
    process: an asyncio lock per event loop (tests run several loops)."""

    def __init__(self) -> None:
        self._locks: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}
        self.commits = 0  # since the last checkpoint

    def lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            self._locks = {k: v for k, v in self._locks.items() if not k.is_closed()}
            lock = self._locks[loop] = asyncio.Lock()
        return lock


def _execute(conn: sqlite3.Connection, sql: str, params: Any) -> tuple[Any, list[Row], int, int | None]:
    cur = conn.execute(sql, params)
    try:
        description = cur.description
        rows = cur.fetchall() if description else []
        return description, rows, cur.rowcount, cur.lastrowid
    finally:
        cur.close()


def _executemany(conn: sqlite3.Connection, sql: str, params: Iterable[Any]) -> tuple[int, int | None]:
    cur = conn.executemany(sql, params)
    try:
        return cur.rowcount, cur.lastrowid
    finally:
        cur.close()


def _is_read(sql: str) -> bool:
    head = sql.lstrip()[:6].upper()
    return head == "SELECT"


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    return str(exc).startswith("database is locked")


def _waiting(conn: sqlite3.Connection, fn: Callable[..., T], *args: Any) -> T:
    """``fn`` with the busy timeout on: on the connection's thread, for a
    statement that found another process writing."""
    conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT * 1000)}").close()
    try:
        return fn(*args)
    finally:
        conn.execute("PRAGMA busy_timeout=0").close()


class Cursor:
    arraysize = 1

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self._rows: list[Row] = []

    async def __aenter__(self) -> Cursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def execute(self, sql: str, parameters: Any = ()) -> Cursor:
        if _is_read(sql):
            result = await self._conn._now(_execute, self._conn._sqlite, sql, parameters)
        else:
            result = await self._conn._write(_execute, self._conn._sqlite, sql, parameters)
        self.description, self._rows, self.rowcount, self.lastrowid = result
        return self

    async def executemany(self, sql: str, parameters: Iterable[Any]) -> Cursor:
        self.description, self._rows = None, []
        self.rowcount, self.lastrowid = await self._conn._write(
            _executemany, self._conn._sqlite, sql, list(parameters))
        return self

    async def fetchall(self) -> list[Row]:
        rows, self._rows = self._rows, []
        return rows

    async def fetchone(self) -> Row | None:
        return self._rows.pop(0) if self._rows else None

    async def fetchmany(self, size: int | None = None) -> Sequence[Row]:
        size = size or self.arraysize
        rows, self._rows = self._rows[:size], self._rows[size:]
        return rows

    async def close(self) -> None:
        self._rows = []


class Connection:
    """One sqlite3 connection, used only from its own worker thread."""

    def __init__(self, sqlite: sqlite3.Connection, executor: ThreadPoolExecutor, gate: WriteGate | None = None) -> None:
        self._sqlite = sqlite
        self._executor = executor
        self._gate = gate or WriteGate()
        self._held: asyncio.Lock | None = None
        # Present so SQLAlchemy's adapter finds a live connection.
        self._connection = sqlite

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def _now(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn`` on the event loop if it needs no lock another process
        holds; on the connection's thread, waiting for it, if it does."""
        try:
            return fn(*args)
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc):
                raise
        return await self._run(_waiting, self._sqlite, fn, *args)

    async def _write(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a statement that may write, holding the gate from the first
        write of a transaction to its end."""
        if self._held is None:
            lock = self._gate.lock()
            try:
                if lock.locked():
                    await asyncio.wait_for(lock.acquire(), GATE_TIMEOUT)
                else:
                    await lock.acquire()  # free: no timeout task to pay for
            except TimeoutError:
                raise sqlite3.OperationalError("database is locked (waited for this process's writers)") from None
            self._held = lock
        try:
            return await self._now(fn, *args)
        finally:
            if not self._sqlite.in_transaction:
                self._release()  # a statement outside a transaction (a pragma), or one that ended it

    def _release(self) -> None:
        if self._held is not None:
            self._held, held = None, self._held
            held.release()

    async def begin_write(self) -> None:
        """Start a transaction that holds the write lock from its first
        statement (BEGIN IMMEDIATE), so what it reads cannot change before
        it writes: read-check-write transactions then never race another
        writer and never need retrying."""
        if self._sqlite.in_transaction:
            return  # it has written already, so it holds the lock
        await self._write(self._sqlite.execute, "BEGIN IMMEDIATE")

    @property
    def isolation_level(self) -> str | None:
        return self._sqlite.isolation_level

    def cursor(self) -> Cursor:
        return Cursor(self)

    async def execute(self, sql: str, parameters: Any = ()) -> Cursor:
        return await self.cursor().execute(sql, parameters)

    async def commit(self) -> None:
        try:
            if not self._sqlite.in_transaction:
                return
            await self._now(self._sqlite.commit)
        finally:
            self._release()
        self._gate.commits += 1
        if self._gate.commits >= CHECKPOINT_EVERY:
            self._gate.commits = 0
            # PASSIVE: copies what no reader still needs, waits for no one.
            await self._run(_execute, self._sqlite, "PRAGMA wal_checkpoint(PASSIVE)", ())

    async def rollback(self) -> None:
        try:
            # Nothing to undo outside a transaction: skip the hop.
            if self._sqlite.in_transaction:
                await self._now(self._sqlite.rollback)
        finally:
            self._release()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        await self._run(lambda: self._sqlite.create_function(*args, **kwargs))

    async def close(self) -> None:
        if self._connection is None:
            return
        self._release()
        self._connection = None  # type: ignore[assignment]
        await self._run(self._sqlite.close)
        self._executor.shutdown(wait=False)

    def stop(self) -> None:
        """Close without waiting (SQLAlchemy's terminate)."""
        self._release()
        self._connection = None  # type: ignore[assignment]
        self._executor.submit(self._sqlite.close)
        self._executor.shutdown(wait=False)


async def connect(path: str, gate: WriteGate | None = None) -> Connection:
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")

    def open_db() -> sqlite3.Connection:
        # Autocommit is left to the sqlite3 module's default transaction
        # handling, which SQLAlchemy's pysqlite dialect expects. No busy
        # timeout: a statement that would wait is sent to this thread.
        conn = sqlite3.connect(path, check_same_thread=False, timeout=0)
        conn.execute("PRAGMA wal_autocheckpoint=0").close()  # a pragma's row left unread keeps it running
        return conn

    sqlite = await asyncio.get_running_loop().run_in_executor(executor, open_db)
    return Connection(sqlite, executor, gate)
