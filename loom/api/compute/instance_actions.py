"""``/servers/{id}/os-instance-actions``: what was done to a server, and the
events of each action (what ``openstack server event list`` shows)."""

from __future__ import annotations

import hashlib
from typing import Any

from starlette.responses import Response

from loom.api.compute.base import authorized, enforce
from loom.api.http import JSON, Call
from loom.errors import NotFound
from loom.objects import instances


def _time(value: Any) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f") if value is not None else None


def _action(call: Call, a: Any) -> dict[str, Any]:
    out = {"action": a.action, "instance_uuid": a.instance_uuid, "message": a.message, "project_id": a.project_id,
           "request_id": a.request_id, "start_time": _time(a.start_time), "user_id": a.user_id}
    if call.version.at_least("2.58"):
        out["updated_at"] = _time(a.updated_at or a.start_time)
    return out


async def list_(call: Call) -> Response:
    async with call.deps.db.session() as session:
        instance = await instances.get(session, call.ctx, call.params["server_id"], deleted=True)
        enforce(call, "os_compute_api:os-instance-actions:list", {"project_id": instance.project_id})
        rows = await instances.actions(session, instance.uuid)
    return JSON({"instanceActions": [_action(call, a) for a in rows]})


async def show(call: Call) -> Response:
    async with call.deps.db.session() as session:
        instance = await instances.get(session, call.ctx, call.params["server_id"], deleted=True)
        enforce(call, "os_compute_api:os-instance-actions:show", {"project_id": instance.project_id})
        action = next((a for a in await instances.actions(session, instance.uuid)
                       if a.request_id == call.params["request_id"]), None)
        if action is None:
            raise NotFound(f"Action for request_id {call.params['request_id']} on instance {instance.uuid} not "
                           "found")
        events = await instances.action_events(session, action.id)
    body = _action(call, action)
    if call.version.at_least("2.51") or authorized(call, "os_compute_api:os-instance-actions:events"):
        admin = authorized(call, "os_compute_api:os-instance-actions:events:details")
        body["events"] = []
        for e in events:
            item: dict[str, Any] = {"event": e.event, "start_time": _time(e.start_time),
                                    "finish_time": _time(e.finish_time), "result": e.result}
            if admin:
                item["traceback"] = e.traceback
            if call.version.at_least("2.62"):
                item["hostId"] = (hashlib.sha224((instance.project_id + e.host).encode()).hexdigest()
                                  if e.host else "")
                if admin:
                    item["host"] = e.host
            body["events"].append(item)
    return JSON({"instanceAction": body})
