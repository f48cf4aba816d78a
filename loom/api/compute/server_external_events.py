"""``POST /os-server-external-events``: other services (the network,
volume and bare-metal services) tell the compute service what happened to
a server. Each event gets a code: 200 when it was handed to the server's
host, 404 for an unknown (or deleted) server, 422 for one with no host,
400 for a missing tag where one is needed; the response is 200 when every
event was accepted, else 207 (Nova's multi-status)."""

from __future__ import annotations

import logging
import uuid as uuidlib
from collections import defaultdict
from typing import Any

from sqlalchemy import select
from starlette.responses import Response

from loom.api.compute.base import enforce, field_error
from loom.api.http import JSON, Call, Endpoint
from loom.compute.rpcapi import ComputeAPI
from loom.db.models import Instance
from loom.errors import Invalid
from loom.objects import instances
from loom.policy.enforcer import ADMIN, Rule

LOG = logging.getLogger(__name__)
NETWORK_EVENTS = ("network-changed", "network-vif-plugged", "network-vif-unplugged", "network-vif-deleted")
STATUSES = ["failed", "completed", "in-progress"]
TAG_REQUIRED = ("volume-extended", "power-update")
# The instance action the API records for an event, as Nova's compute API does.
_ACTIONS = {"volume-extended": "extend_volume"}
_POWER_ACTIONS = {"POWER_ON": "start", "POWER_OFF": "stop"}


def event_names(call: Call) -> list[str]:
    names = list(NETWORK_EVENTS)
    if call.version.at_least("2.51"):
        names.append("volume-extended")
    if call.version.at_least("2.76"):
        names.append("power-update")
    return names


def _validate(call: Call, body: dict[str, Any]) -> list[dict[str, Any]]:
    extra = set(body) - {"events"}
    if extra:
        raise Invalid(f"Additional properties are not allowed ({', '.join(map(repr, sorted(extra)))} was "
                      "unexpected)")
    if "events" not in body:
        raise Invalid("'events' is a required property")
    events = body["events"]
    if not isinstance(events, list):
        raise field_error("events", events, f"{events!r} is not of type 'array'")
    if not events:
        raise field_error("events", events, "[] is too short")
    names = event_names(call)
    for index, event in enumerate(events):
        if not isinstance(event, dict):
            raise field_error(index, event, f"{event!r} is not of type 'object'")
        for key in ("server_uuid", "name"):
            if key not in event:
                raise field_error(index, event, f"'{key}' is a required property")
        extra = set(event) - {"server_uuid", "name", "status", "tag"}
        if extra:
            raise field_error(index, event, f"Additional properties are not allowed "
                                            f"({', '.join(map(repr, sorted(extra)))} was unexpected)")
        for key in ("server_uuid", "name", "status", "tag"):
            if key in event and not isinstance(event[key], str):
                raise field_error(key, event[key], f"{event[key]!r} is not of type 'string'")
        try:
            uuidlib.UUID(event["server_uuid"])
        except ValueError:
            raise field_error("server_uuid", event["server_uuid"], f"'{event['server_uuid']}' is not a 'uuid'") \
                from None
        if event["name"] not in names:
            raise field_error("name", event["name"], f"'{event['name']}' is not one of {names}")
        if "status" in event and event["status"] not in STATUSES:
            raise field_error("status", event["status"], f"'{event['status']}' is not one of {STATUSES}")
        if "tag" in event and len(event["tag"]) > 255:
            raise field_error("tag", event["tag"], f"'{event['tag']}' is too long")
    return events


async def create(call: Call) -> Response:
    enforce(call, "os_compute_api:os-server-external-events:create", {})
    events = _validate(call, await call.json_object())
    result = 200
    by_host: dict[str, list[dict[str, Any]]] = defaultdict(list)
    async with call.deps.db.session.begin() as session:
        rows = {r.uuid: r for r in await session.scalars(select(Instance).where(
            Instance.uuid.in_({e["server_uuid"] for e in events}), Instance.deleted.is_(False)))}
        for event in events:
            row = rows.get(event["server_uuid"])
            if row is None:
                LOG.debug("dropping event %s for unknown instance %s", event["name"], event["server_uuid"])
                event["status"], event["code"], result = "failed", 404, 207
            elif event["name"] in TAG_REQUIRED and event.get("tag") is None:
                event["status"], event["code"], result = "failed", 400, 207
            elif not row.host:
                LOG.debug("instance %s has no host; dropping event %s", row.uuid, event["name"])
                event["status"], event["code"], result = "failed", 422, 207
            else:
                LOG.info("creating event %s:%s for instance %s on %s", event["name"], event.get("tag"), row.uuid,
                         row.host)
                delivered = {"name": event["name"], "server_uuid": row.uuid, "status": event.get("status",
                             "completed"), "tag": event.get("tag"), "instance": {
                    "vm_state": row.vm_state, "task_state": row.task_state, "power_state": row.power_state}}
                event["status"], event["code"] = "completed", 200
                action = _ACTIONS.get(event["name"])
                if event["name"] == "power-update":
                    action = _POWER_ACTIONS.get(event["tag"])
                    if action is None:
                        LOG.warning("invalid power state %s: power-update for %s skipped", event["tag"], row.uuid)
                        continue
                if action is not None:
                    await instances.start_action(session, call.ctx, row.uuid, action)
                by_host[row.host].append(delivered)
    compute = ComputeAPI(call.deps.bus)
    for host, delivered_events in by_host.items():
        await compute.external_instance_event(call.ctx, host, delivered_events)
    return JSON({"events": events}, status_code=result)


ENDPOINTS = [Endpoint("POST", "/os-server-external-events", create)]

RULES = [
    Rule("os_compute_api:os-server-external-events:create", f"({ADMIN}) or role:service",
         "Report events about servers (for the network, volume and bare-metal services)."),
]
