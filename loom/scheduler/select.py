"""Choosing hosts for the instances of one request, and claiming them.

For a request, once:

1. ask placement for allocation candidates: the hosts with room for the
   flavor (and the traits it and the image require);
2. build a HostState per candidate host (service, zone, aggregates...);
3. drop ``ignore_hosts``; keep only ``force_hosts``/``force_nodes`` if
   given (forced hosts skip the filters, as in Nova);
4. let the filters fetch what they need (``prepare``).

Then for each instance in turn:

5. filter the hosts left (the once-per-request filters only for the
   first instance), keep those with room left, weigh them;
6. claim the allocation in placement on the best host, the next best if
   the claim fails (another scheduler got there first); the claim is the
   only arbiter between concurrent schedulers, so none overcommits;
7. account for the claim (the host's usage, the server group's hosts)
   before the next instance, and pick up to ``max_attempts - 1``
   alternates among the other hosts that passed.

If an instance cannot be placed, the claims made for the earlier
instances of the request are released and ``NoValidHost`` says why.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from collections.abc import Sequence

from loom import metrics, placement
from loom.db.engine import Database
from loom.errors import Invalid
from loom.placement import Candidate
from loom.scheduler.context import SchedulingContext
from loom.scheduler.errors import NoValidHost
from loom.scheduler.filters import FilterResult, run_filters
from loom.scheduler.hosts import HostState, host_states
from loom.scheduler.placement_request import candidate_request, describe
from loom.scheduler.request import RequestSpec, Selection
from loom.scheduler.weighers import order_hosts

LOG = logging.getLogger(__name__)

NO_VALID_HOST = "No valid host was found. There are not enough hosts available."
CONSUMER_TYPE = "INSTANCE"


async def select_destinations(db: Database, spec: RequestSpec, instance_uuids: Sequence[str], *,
                              return_alternates: bool, context: SchedulingContext) -> list[list[Selection]]:
    """For each instance, the host claimed for it first, then its alternates
    (hosts that passed the filters, not claimed: the conductor claims one
    of them itself to reschedule). The claims are made for the instance
    uuids as placement consumers, which must hold nothing yet."""
    uuids = list(instance_uuids)
    if len(set(uuids)) != len(uuids):
        raise Invalid("select_destinations was given the same instance uuid twice")
    if not uuids:
        return []
    # Placed instances join the server group: work on a copy, not the caller's spec.
    spec = dataclasses.replace(spec, instance_group=copy.deepcopy(spec.instance_group))
    opts = context.options
    forcing = bool(spec.force_hosts or spec.force_nodes)
    request = candidate_request(spec, limit=None if forcing else opts.max_placement_results)
    if not request.resource_classes():
        raise Invalid(f"Flavor {spec.flavor.name} asks for no resources: nothing to schedule")
    async with db.transaction() as tx:
        found = await placement.candidates(tx, request, context.trees)
    if not found:
        metrics.SCHEDULER_HOSTS.observe(0)
        raise NoValidHost(f"{NO_VALID_HOST} No host has room for {describe(request)}.", reason="no_room")
    hosts, skipped = await host_states(db, found, info_source=context.host_info,
                                       service_down_time=opts.service_down_time,
                                       default_availability_zone=opts.default_availability_zone,
                                       count_instances=any(p.needs_num_instances(spec)
                                                           for p in (*context.filters, *context.weighers)))
    metrics.SCHEDULER_HOSTS.observe(len(hosts))
    if not hosts:
        raise NoValidHost(f"{NO_VALID_HOST} Resource providers with room ({', '.join(skipped)}) have no "
                          f"compute service.", reason="no_compute_service")
    hosts = _ignore_and_force(hosts, spec)
    for f in context.filters:
        await f.prepare(spec, context)
    run = _Run(db, spec, context, hosts, forcing, len(uuids))
    try:
        return [await run.place(index, uuid, return_alternates) for index, uuid in enumerate(uuids)]
    except BaseException:
        await run.release()
        raise


def _ignore_and_force(hosts: list[HostState], spec: RequestSpec) -> list[HostState]:
    start = len(hosts)
    if spec.ignore_hosts:
        ignored = set(spec.ignore_hosts)
        hosts = [h for h in hosts if h.host not in ignored]
        if not hosts:
            raise NoValidHost(f"{NO_VALID_HOST} All {start} host(s) with room are among the ignored hosts "
                              f"{sorted(ignored)}.", reason="ignored")
    if spec.requested_host:
        hosts = [h for h in hosts if h.host == spec.requested_host]
        if not hosts:
            raise NoValidHost(f"{NO_VALID_HOST} The requested host {spec.requested_host} is not among the {start} "
                              "host(s) with room and a compute service.", reason="requested")
    if spec.force_hosts or spec.force_nodes:
        forced_hosts = {h.lower() for h in spec.force_hosts}
        forced_nodes = {n.lower() for n in spec.force_nodes}
        hosts = [h for h in hosts if (not forced_hosts or h.host.lower() in forced_hosts)
                 and (not forced_nodes or h.nodename.lower() in forced_nodes)]
        if not hosts:
            wanted = sorted(spec.force_hosts) + sorted(spec.force_nodes)
            raise NoValidHost(f"{NO_VALID_HOST} The forced host(s) {wanted} are not among the {start} host(s) "
                              "with room and a compute service.", reason="forced")
    return hosts


class _Run:
    """The instances of one request, placed one after the other."""

    def __init__(self, db: Database, spec: RequestSpec, context: SchedulingContext, hosts: list[HostState],
                 forcing: bool, count: int) -> None:
        self.db = db
        self.spec = spec
        self.context = context
        # The hosts still in the running: those that passed the filters for the previous instance.
        self.hosts = hosts
        self.forcing = forcing
        self.count = count
        self.claimed: list[str] = []

    async def place(self, index: int, uuid: str, return_alternates: bool) -> list[Selection]:
        ctx, opts = self.context, self.context.options
        results: list[FilterResult] = []
        if self.forcing:
            passed = list(self.hosts)
        else:
            passed, results = run_filters(ctx.filters, self.hosts, self.spec, ctx, index)
        roomy = [h for h in passed if h.fitting_candidate() is not None]
        ordered = order_hosts(ctx.weighers, roomy, self.spec, ctx, opts.host_subset_size, ctx.rng)
        full: list[HostState] = []
        chosen: tuple[HostState, Candidate] | None = None
        for host in ordered:
            cand = await self._claim(host, uuid)
            if cand is not None:
                chosen = (host, cand)
                break
            full.append(host)
        self.hosts = [h for h in passed if h not in full]
        if chosen is None:
            message = self._failure(index, results, len(passed), len(roomy), len(full))
            LOG.info("instance %s: %s", uuid, message)
            raise NoValidHost(message, instance_uuid=uuid, filter_results=[str(r) for r in results],
                              reason="filtered" if not passed else "full")
        host, cand = chosen
        self.claimed.append(uuid)
        host.consume(cand.allocations)
        self._join_group(uuid, host)
        LOG.debug("instance %s: claimed %s on %s", uuid, cand.allocations, host)
        choices = [_selection(host, cand)]
        if return_alternates:
            for alt in ordered:
                if len(choices) >= opts.max_attempts:
                    break
                alt_cand = alt.fitting_candidate() if alt is not host and alt not in full else None
                if alt_cand is not None:
                    choices.append(_selection(alt, alt_cand))
        return choices

    async def _claim(self, host: HostState, uuid: str) -> Candidate | None:
        for cand in host.candidates:
            if not host.fits(cand.allocations):
                continue
            try:
                await placement.claim(self.db, uuid, cand.allocations, self.spec.project_id, self.spec.user_id,
                                      consumer_generation=None, consumer_type=CONSUMER_TYPE)
                return cand
            except placement.ConcurrentUpdate as exc:
                if exc.details.get("consumer"):
                    raise  # the instance already holds allocations: not a boot's claim
                LOG.info("claim for %s on %s kept racing other writers: %s", uuid, host, exc)
            except placement.InsufficientCapacity as exc:
                LOG.info("claim for %s on %s failed, another request got there first: %s", uuid, host, exc)
            except placement.PlacementInvalid as exc:
                if not exc.details.get("provider"):
                    raise
                LOG.info("claim for %s on %s failed, its provider is gone: %s", uuid, host, exc)
        return None

    def _join_group(self, uuid: str, host: HostState) -> None:
        group = self.spec.instance_group
        if group is None:
            return
        group["hosts"] = [*(group.get("hosts") or []), host.host]
        members = list(group.get("members") or [])
        if uuid not in members:
            group["members"] = [*members, uuid]

    def _failure(self, index: int, results: list[FilterResult], passed: int, roomy: int, full: int) -> str:
        parts = [NO_VALID_HOST]
        if self.count > 1:
            parts.append(f"Instance {index + 1} of {self.count} could not be placed.")
        if results:
            parts.append(f"Filter results: {[str(r) for r in results]}")
        elif self.forcing:
            parts.append(f"Forced host(s) skip the filters: {passed} left.")
        if passed > roomy:
            parts.append(f"{passed - roomy} host(s) that passed were filled by the earlier instances of this "
                         "request.")
        if full:
            parts.append(f"{full} host(s) that passed were filled by other requests first.")
        return " ".join(parts)

    async def release(self) -> None:
        """Give back the claims of this request's instances placed so far."""
        for uuid in self.claimed:
            try:
                await placement.release(self.db, uuid)
            except Exception:
                LOG.exception("could not release the claim of instance %s", uuid)
        self.claimed.clear()


def _selection(host: HostState, cand: Candidate) -> Selection:
    # allocation_request["allocations"] is what placement.claim takes as is.
    return Selection(host=host.host, nodename=host.nodename, provider_uuid=host.provider_uuid,
                     allocation_request={"allocations": {rp: dict(r) for rp, r in cand.allocations.items()},
                                         "mappings": {k: list(v) for k, v in cand.mappings.items()}},
                     availability_zone=host.availability_zone)
