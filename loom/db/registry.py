"""Heartbeats written straight to the database, for services that own it."""

from __future__ import annotations

from loom.context import RequestContext
from loom.db import services
from loom.db.engine import Database


class DbServiceRegistry:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def report(self, ctx: RequestContext, host: str, binary: str, topic: str) -> None:
        await services.report(self.db, host, binary, topic)
