"""The weigher contract, and how weights add up (Nova's way): each
weigher's raw values are normalised to 0..1 across the hosts being
weighed, multiplied by the weigher's multiplier and summed; the highest
total wins. A multiplier may be overridden per host by its aggregates'
metadata (``<aggregate_key>``; the smallest value wins)."""

from __future__ import annotations

import abc
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from loom.scheduler.hosts import HostState
from loom.scheduler.request import RequestSpec

if TYPE_CHECKING:
    from loom.scheduler.context import SchedulingContext

LOG = logging.getLogger(__name__)


class Weigher(abc.ABC):
    # The name the configuration uses: the class name unless set.
    name: ClassVar[str] = ""
    default_multiplier: ClassVar[float] = 1.0
    # Aggregate metadata overriding the multiplier on its hosts (e.g. ram_weight_multiplier).
    aggregate_key: ClassVar[str | None] = None
    # Fixed bounds for normalising; None: the smallest/largest raw value.
    minval: ClassVar[float | None] = None
    maxval: ClassVar[float | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            cls.name = cls.__name__

    def __init__(self, multiplier: float | None = None) -> None:
        self.multiplier = self.default_multiplier if multiplier is None else float(multiplier)

    def needs_num_instances(self, spec: RequestSpec) -> bool:
        """Whether ``weigh`` reads ``HostState.num_instances`` (see Filter)."""
        return False

    def applies(self, spec: RequestSpec) -> bool:
        """False when ``weigh`` would give every host the same value for
        this request: it then adds nothing, and the hosts are not asked."""
        return True

    def weight_multiplier(self, host: HostState) -> float:
        if self.aggregate_key and host.aggregates:
            values = host.aggregate_metadata().get(self.aggregate_key)
            if values:
                try:
                    return min(float(v) for v in values)
                except ValueError:
                    LOG.warning("%s: aggregate metadata %s=%s is not a number; using %s", host,
                                self.aggregate_key, sorted(values), self.multiplier)
        return self.multiplier

    @abc.abstractmethod
    def weigh(self, host: HostState, spec: RequestSpec, context: SchedulingContext) -> float:
        """The host's raw weight: higher is better before the multiplier."""


@dataclass
class WeighedHost:
    host: HostState
    weight: float = 0.0


def normalize(values: Sequence[float], minval: float | None = None, maxval: float | None = None) -> list[float]:
    """``values`` scaled to 0..1 (all 0 when they are equal)."""
    if not values:
        return []
    low = min(values) if minval is None else minval
    high = max(values) if maxval is None else maxval
    if low == high:
        return [0.0] * len(values)
    return [(v - low) / (high - low) for v in values]


def weigh_hosts(weighers: Sequence[Weigher], hosts: Sequence[HostState], spec: RequestSpec,
                context: SchedulingContext) -> list[WeighedHost]:
    """``hosts`` best first; equal weights keep placement's order."""
    weighed = [WeighedHost(h) for h in hosts]
    if len(weighed) <= 1:
        return weighed
    for weigher in weighers:
        if not weigher.applies(spec):
            continue
        raw = [weigher.weigh(w.host, spec, context) for w in weighed]
        for w, value in zip(weighed, normalize(raw, weigher.minval, weigher.maxval), strict=True):
            w.weight += weigher.weight_multiplier(w.host) * value
    return sorted(weighed, key=lambda w: w.weight, reverse=True)


def order_hosts(weighers: Sequence[Weigher], hosts: Sequence[HostState], spec: RequestSpec,
                context: SchedulingContext, subset_size: int = 1,
                rng: random.Random | None = None) -> list[HostState]:
    """The hosts in the order to try them: one picked at random among the
    best ``subset_size`` first (spreading concurrent schedulers), then the
    rest best first."""
    ranked = [w.host for w in weigh_hosts(weighers, hosts, spec, context)]
    if subset_size > 1 and len(ranked) > 1:
        pick = (rng or random).randrange(min(subset_size, len(ranked)))
        ranked.insert(0, ranked.pop(pick))
    return ranked
