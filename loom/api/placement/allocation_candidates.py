"""``GET /allocation_candidates`` (from 1.10)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from loom.api.http import Call
from loom.api.placement import query
from loom.api.placement.base import at_least, enforce, params, respond
from loom.api.placement.microversion import version
from loom.placement import resource_classes, traits
from loom.placement.allocation_candidates import Candidate, ProviderSummary, candidates
from loom.placement.errors import PlacementInvalid, PlacementNotFound
from loom.placement.request import CandidateRequest


async def list_(call: Call) -> Response:
    if not at_least(call, 10):
        raise PlacementNotFound("The resource could not be found.")
    enforce(call, "allocation_candidates:list")
    request = query.parse_candidates(params(call), version(call))
    async with call.deps.db.session() as session:
        unknown = await resource_classes.missing(session, request.resource_classes())
        if unknown:
            raise PlacementInvalid(f"Invalid resource class in resources parameter: No such resource class "
                                   f"{', '.join(sorted(unknown))}.")
        await traits.require(session, request.trait_names())
        found = await candidates(session, request)
    return respond(call, render(call, request, found))


def render(call: Call, request: CandidateRequest, found: list[Candidate]) -> dict[str, Any]:
    summaries: dict[str, ProviderSummary] = {}
    for cand in found:
        summaries.update(cand.summaries)
    requested = request.resource_classes()
    return {"allocation_requests": [_request(call, c) for c in found],
            "provider_summaries": {uuid: _summary(call, s, requested) for uuid, s in summaries.items()}}


def _request(call: Call, cand: Candidate) -> dict[str, Any]:
    if not at_least(call, 12):
        return {"allocations": [{"resource_provider": {"uuid": rp}, "resources": dict(res)}
                                for rp, res in cand.allocations.items()]}
    out: dict[str, Any] = {"allocations": {rp: {"resources": dict(res)} for rp, res in cand.allocations.items()}}
    if at_least(call, 34):
        out["mappings"] = {k: list(v) for k, v in cand.mappings.items()}
    return out


def _summary(call: Call, s: ProviderSummary, requested: set[str]) -> dict[str, Any]:
    resources = s.resources if at_least(call, 27) else {rc: v for rc, v in s.resources.items() if rc in requested}
    out: dict[str, Any] = {"resources": resources}
    if at_least(call, 17):
        out["traits"] = sorted(s.traits)
    if at_least(call, 29):
        out["parent_provider_uuid"] = s.parent_provider_uuid
        out["root_provider_uuid"] = s.root_provider_uuid
    return out
