"""loom.db.fast runs compiled statements on the driver's connection: each
case checks that it reads and writes exactly what the same statement does
through the session (types converted both ways, literal values, Python
column defaults, IN lists, RETURNING, many rows), inside the session's
transaction."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from loom.db import fast
from loom.db.engine import Database
from loom.db.models import Instance, InstanceAction

ROW = {"project_id": "p1", "user_id": "u1", "display_name": "one", "flavor": {"vcpus": 1, "extra": {"a": "b"}},
       "reservation_id": "r-1", "locked": True, "launched_at": dt.datetime(2026, 1, 2, 3, 4, 5, 678000)}

SELECT = fast.Statement(select(Instance.uuid, Instance.flavor, Instance.locked, Instance.launched_at,
                               Instance.created_at, Instance.updated_at)
                        .where(Instance.project_id == bindparam("project"), Instance.deleted.is_(False),
                               Instance.vm_state != "error")
                        .order_by(Instance.display_name))
BY_UUIDS = fast.Statement(select(Instance.display_name).where(Instance.uuid.in_(bindparam("uuids", expanding=True)))
                          .order_by(Instance.display_name))
RENAME = fast.Statement(update(Instance).where(Instance.uuid == bindparam("match"))
                        .values(display_name=bindparam("name")))
INSERT = fast.Statement(insert(Instance))
ACTION = fast.Statement(insert(InstanceAction))
DROP = fast.Statement(delete(Instance).where(Instance.uuid.in_(bindparam("uuids", expanding=True)))
                      .returning(Instance.display_name))


async def _add(db: Database, **values: object) -> str:
    async with db.session.begin() as s:
        row = Instance(**{**ROW, **values})
        s.add(row)
        await s.flush()
        return row.uuid


async def test_select_converts_types_as_the_session_does(db: Database) -> None:
    await _add(db, display_name="a")
    await _add(db, display_name="b", vm_state="error")
    async with db.session() as s:
        got = await fast.rows(s, SELECT, {"project": "p1"})
        want = [tuple(r) for r in await s.execute(SELECT.stmt, {"project": "p1"})]
    assert got == want and len(got) == 1
    _, flavor, locked, launched, created, updated = got[0]
    assert flavor == ROW["flavor"] and locked is True and launched == ROW["launched_at"]
    assert isinstance(created, dt.datetime) and updated is None


async def test_in_lists_and_an_empty_one(db: Database) -> None:
    uuids = [await _add(db, display_name=name) for name in ("x", "y", "z")]
    async with db.session() as s:
        assert await fast.rows(s, BY_UUIDS, {"uuids": uuids[:2]}) == [("x",), ("y",)]
        assert await fast.rows(s, BY_UUIDS, {"uuids": []}) == []
        assert await fast.scalar(s, BY_UUIDS, {"uuids": [uuids[2]]}) == "z"


async def test_update_sets_onupdate_default_and_counts_rows(db: Database) -> None:
    uuid = await _add(db)
    async with db.session.begin() as s:
        assert await fast.run(s, RENAME, {"match": uuid, "name": "renamed"}) == 1
        assert await fast.run(s, RENAME, {"match": "missing", "name": "x"}) == 0
    async with db.session() as s:
        row = await s.scalar(select(Instance).where(Instance.uuid == uuid))
    assert row is not None and row.display_name == "renamed" and row.updated_at is not None


async def test_insert_fills_python_defaults_and_many_rows(db: Database) -> None:
    async with db.session.begin() as s:
        await fast.run(s, INSERT, {**ROW, "uuid": "00000000-0000-0000-0000-000000000001"})
        await fast.run_many(s, ACTION, [
            {"instance_uuid": "00000000-0000-0000-0000-000000000001", "action": a, "request_id": "req",
             "start_time": dt.datetime(2026, 1, 1)} for a in ("create", "stop")])
    async with db.session() as s:
        row = await s.scalar(select(Instance).where(Instance.uuid == "00000000-0000-0000-0000-000000000001"))
        actions = list(await s.scalars(select(InstanceAction.action).order_by(InstanceAction.id)))
    assert row is not None
    assert row.vm_state == "building" and row.metadata_ == {} and row.tags == [] and row.deleted is False
    assert row.flavor == ROW["flavor"] and isinstance(row.created_at, dt.datetime)
    assert actions == ["create", "stop"]


async def test_delete_returning_and_rollback(db: Database) -> None:
    uuids = [await _add(db, display_name=name) for name in ("d1", "d2")]
    with pytest.raises(RuntimeError):
        async with db.session.begin() as s:
            assert sorted(await fast.rows(s, DROP, {"uuids": uuids})) == [("d1",), ("d2",)]
            raise RuntimeError("roll back")
    async with db.session() as s:
        assert await fast.rows(s, BY_UUIDS, {"uuids": uuids}) == [("d1",), ("d2",)]


async def test_pending_orm_changes_are_flushed_first(db: Database) -> None:
    async with db.session.begin() as s:
        row = Instance(**{**ROW, "display_name": "pending"})
        s.add(row)
        assert await fast.rows(s, BY_UUIDS, {"uuids": [row.uuid or ""]}) in ([], [("pending",)])
        s.add(Instance(**{**ROW, "display_name": "pending2", "uuid": "00000000-0000-0000-0000-000000000002"}))
        assert await fast.rows(s, BY_UUIDS, {"uuids": ["00000000-0000-0000-0000-000000000002"]}) == [("pending2",)]


def test_a_missing_parameter_is_named() -> None:
    from sqlalchemy.dialects import sqlite

    plan = RENAME.plan(sqlite.dialect(), {"match": "x"})
    with pytest.raises(KeyError, match="name"):
        fast._arguments(plan, {"match": "x"})


async def test_driver_errors_are_sqlalchemy_errors(db: Database) -> None:
    async with db.session.begin() as s:
        await fast.run(s, INSERT, {**ROW, "uuid": "00000000-0000-0000-0000-000000000003"})
        with pytest.raises(IntegrityError):
            await fast.run(s, INSERT, {**ROW, "uuid": "00000000-0000-0000-0000-000000000003"})


async def test_rows_have_attributes(db: Database) -> None:
    await _add(db, display_name="named")
    async with db.session() as s:
        (row,) = await fast.rows(s, SELECT, {"project": "p1"})
    assert row.flavor == ROW["flavor"] and row.locked is True


async def test_literal_in_lists_run_compiled(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    literal = fast.Statement(select(Instance.display_name).where(Instance.vm_state.in_(("building", "active"))))
    await _add(db, display_name="lit")

    async def no_core(*args: object) -> None:
        raise AssertionError("ran through the session, not compiled")

    monkeypatch.setattr(fast, "_core", no_core)
    async with db.session() as s:
        assert await fast.rows(s, literal) == [("lit",)]
