"""What callers ask placement for: filters on providers and requests for
allocation candidates. Plain values; parsing query strings into them is
the API's job (``loom.api.placement.query``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

UNNUMBERED = ""


@dataclass(frozen=True)
class TraitFilter:
    """Traits a provider must have and must not have. Each entry of
    ``any_of`` is satisfied by one of its traits (a single trait: required)."""

    any_of: tuple[frozenset[str], ...] = ()
    forbidden: frozenset[str] = frozenset()

    @classmethod
    def of(cls, required: Iterable[str] = (), forbidden: Iterable[str] = (),
           any_of: Iterable[Iterable[str]] = ()) -> TraitFilter:
        groups = [frozenset([t]) for t in required] + [frozenset(g) for g in any_of]
        return cls(tuple(groups), frozenset(forbidden))

    def __bool__(self) -> bool:
        return bool(self.any_of or self.forbidden)

    @property
    def required(self) -> frozenset[str]:
        """Traits that are required on their own (not one of several)."""
        return frozenset(next(iter(g)) for g in self.any_of if len(g) == 1)

    def names(self) -> set[str]:
        return set().union(*self.any_of, self.forbidden)

    def matches(self, traits: Iterable[str]) -> bool:
        have = set(traits)
        return all(have & group for group in self.any_of) and not (have & self.forbidden)

    def merged(self, other: TraitFilter) -> TraitFilter:
        return TraitFilter(self.any_of + other.any_of, self.forbidden | other.forbidden)


@dataclass(frozen=True)
class AggregateFilter:
    """Aggregates a provider must be in (one of each ``any_of`` entry) and
    must not be in. A provider is in an aggregate when it or its root is."""

    any_of: tuple[frozenset[str], ...] = ()
    forbidden: frozenset[str] = frozenset()

    @classmethod
    def of(cls, any_of: Iterable[Iterable[str]] = (), forbidden: Iterable[str] = ()) -> AggregateFilter:
        return cls(tuple(frozenset(g) for g in any_of), frozenset(forbidden))

    def __bool__(self) -> bool:
        return bool(self.any_of or self.forbidden)

    def matches(self, aggregates: Iterable[str]) -> bool:
        have = set(aggregates)
        return all(have & group for group in self.any_of) and not (have & self.forbidden)


@dataclass(frozen=True)
class ProviderQuery:
    """Filters of ``GET /resource_providers``; all must hold."""

    name: str | None = None
    uuid: str | None = None
    in_tree: str | None = None
    member_of: AggregateFilter = AggregateFilter()
    traits: TraitFilter = TraitFilter()
    # Providers with room for each amount (capacity, min/max unit, step).
    resources: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class RequestGroup:
    """Resources wanted together, with what their providers must offer.
    Suffixed groups come from one provider each; the unnumbered group's
    resources may come from several providers of one tree."""

    resources: Mapping[str, int] = field(default_factory=dict)
    traits: TraitFilter = TraitFilter()
    member_of: AggregateFilter = AggregateFilter()
    in_tree: str | None = None


@dataclass(frozen=True)
class CandidateRequest:
    """A request for allocation candidates."""

    groups: Mapping[str, RequestGroup]
    # "none" or "isolate" (suffixed groups on different providers).
    group_policy: str = "none"
    limit: int | None = None
    # Traits the root of each candidate's tree must (not) have.
    root_required: TraitFilter = TraitFilter()
    # Groups of suffixes whose providers must share a subtree: one of them
    # is an ancestor of (or the same as) all the others.
    same_subtree: tuple[tuple[str, ...], ...] = ()

    @classmethod
    def simple(cls, resources: Mapping[str, int], *, required: Iterable[str] = (), forbidden: Iterable[str] = (),
               member_of: Iterable[str] = (), in_tree: str | None = None, limit: int | None = None
               ) -> CandidateRequest:
        """One group of resources from one tree: what a plain boot asks for.
        ``member_of`` means "in any of these aggregates"."""
        aggs = list(member_of)
        group = RequestGroup(dict(resources), TraitFilter.of(required, forbidden),
                             AggregateFilter.of([aggs] if aggs else []), in_tree)
        return cls({UNNUMBERED: group}, limit=limit)

    def resource_classes(self) -> set[str]:
        return {rc for g in self.groups.values() for rc in g.resources}

    def trait_names(self) -> set[str]:
        names = self.root_required.names()
        for g in self.groups.values():
            names |= g.traits.names()
        return names
