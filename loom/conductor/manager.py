"""The conductor: runs workflows and owns database access on behalf of
compute hosts, which never open the database themselves."""

from __future__ import annotations

from loom.bus.rpc import expose
from loom.conductor.rpcapi import TOPIC
from loom.context import RequestContext
from loom.db import services
from loom.db.engine import Database
from loom.manager import Manager


class ConductorManager(Manager):
    binary = "loom-conductor"
    topic = TOPIC

    def __init__(self, host: str, db: Database) -> None:
        super().__init__(host)
        self.db = db

    @expose
    async def service_report(self, ctx: RequestContext, host: str, binary: str, topic: str) -> None:
        await services.report(self.db, host, binary, topic)
