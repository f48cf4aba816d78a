"""The request context, and the request id it puts on every log line."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Iterator

import pytest

from loom import context, log
from loom.bus import serialize
from loom.config import LogSettings
from loom.context import RequestContext


def user_context() -> RequestContext:
    return RequestContext(
        request_id="req-1234",
        user_id="alice",
        project_id="demo",
        domain_id="default",
        roles=("member", "reader"),
        global_request_id="req-upstream",
    )


def test_to_dict_is_plain_json() -> None:
    data = user_context().to_dict()
    assert data == {
        "request_id": "req-1234",
        "user_id": "alice",
        "project_id": "demo",
        "domain_id": "default",
        "roles": ["member", "reader"],
        "is_admin": False,
        "service": None,
        "global_request_id": "req-upstream",
        "system_scope": None,
        "user_name": None,
        "project_name": None,
        "user_domain_id": None,
        "project_domain_id": None,
    }
    assert serialize.loads(serialize.dumps(data)) == data


def test_round_trip_over_the_bus() -> None:
    ctx = user_context()
    back = RequestContext.from_dict(serialize.loads(serialize.dumps(ctx.to_dict())))
    assert back == ctx
    assert back.roles == ("member", "reader")


def test_from_dict_ignores_unknown_keys() -> None:
    """A newer sender may add fields an older receiver does not know."""
    data = {**user_context().to_dict(), "auth_token": "secret", "tenant": "x"}
    assert RequestContext.from_dict(data) == user_context()


def test_from_dict_fills_in_missing_fields() -> None:
    ctx = RequestContext.from_dict({"user_id": "bob"})
    assert ctx.user_id == "bob"
    assert ctx.roles == ()
    assert ctx.request_id.startswith("req-")


def test_new_contexts_get_distinct_request_ids() -> None:
    assert RequestContext().request_id != RequestContext().request_id


def test_for_service() -> None:
    ctx = RequestContext.for_service("conductor")
    assert ctx.service == "conductor"
    assert ctx.is_admin is True
    assert ctx.user_id is None
    assert ctx.request_id.startswith("req-")


def test_elevated_keeps_the_request() -> None:
    ctx = user_context()
    admin = ctx.elevated()
    assert admin.is_admin is True
    assert admin.request_id == ctx.request_id
    assert admin.user_id == ctx.user_id
    assert ctx.is_admin is False


def test_bind_and_unbind() -> None:
    assert context.current() is None
    outer, inner = user_context(), RequestContext.for_service("compute")
    outer_token = context.bind(outer)
    try:
        assert context.current() is outer
        inner_token = context.bind(inner)
        assert context.current() is inner
        context.unbind(inner_token)
        assert context.current() is outer
    finally:
        context.unbind(outer_token)
    assert context.current() is None


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """Loom's logging set up to write into a buffer; the logging state the
    rest of the run relies on (root handlers, levels) is restored after."""
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    saved_levels = {
        name: logger.level
        for name, logger in logging.Logger.manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
    }
    stream = io.StringIO()
    log.setup(LogSettings(), stream=stream)
    try:
        yield stream
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        for name, logger in logging.Logger.manager.loggerDict.items():
            if isinstance(logger, logging.Logger):
                logger.setLevel(saved_levels.get(name, logging.NOTSET))


def test_log_lines_carry_the_bound_request_id(log_stream: io.StringIO) -> None:
    token = context.bind(user_context())
    try:
        logging.getLogger("loom.test").info("building server")
    finally:
        context.unbind(token)
    assert "[req-1234] building server" in log_stream.getvalue()


def test_log_lines_outside_a_request_show_a_dash(log_stream: io.StringIO) -> None:
    logging.getLogger("loom.test").warning("periodic task")
    assert "[-] periodic task" in log_stream.getvalue()


def test_log_level_comes_from_settings(log_stream: io.StringIO) -> None:
    logging.getLogger("loom.test").debug("hidden at INFO")
    assert "hidden at INFO" not in log_stream.getvalue()


async def test_request_id_follows_into_tasks(log_stream: io.StringIO) -> None:
    async def work() -> None:
        logging.getLogger("loom.test").info("in a task")

    token = context.bind(user_context())
    try:
        task = asyncio.create_task(work())
    finally:
        context.unbind(token)
    await task
    assert "[req-1234] in a task" in log_stream.getvalue()
