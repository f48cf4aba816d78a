"""Compute API microversions: negotiated per request from
``OpenStack-API-Version: compute 2.N`` or ``X-OpenStack-Nova-API-Version``,
echoed on every response."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from functools import total_ordering

from loom.errors import Invalid, LoomError

MIN = (2, 1)
# The highest microversion whose behaviour Loom implements; every lower one
# keeps its own bodies and behaviour.
MAX = (2, 79)
_VERSION = re.compile(r"^([1-9]\d*)\.([1-9]\d*|0)$")


class NotAcceptable(LoomError):
    """The requested microversion is outside the supported range."""

    status = 406


@total_ordering
@dataclass(frozen=True)
class Version:
    major: int
    minor: int

    def __lt__(self, other: object) -> bool:
        if isinstance(other, str):
            other = parse(other)
        if not isinstance(other, Version):
            return NotImplemented
        return (self.major, self.minor) < (other.major, other.minor)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            other = parse(other)
        return isinstance(other, Version) and (self.major, self.minor) == (other.major, other.minor)

    def __hash__(self) -> int:
        return hash((self.major, self.minor))

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"

    def at_least(self, version: str) -> bool:
        return self >= parse(version)


@functools.lru_cache(maxsize=256)
def parse(text: str) -> Version:
    match = _VERSION.match(text.strip())
    if not match:
        raise Invalid(f"Invalid API version request string {text!r}.")
    return Version(int(match.group(1)), int(match.group(2)))


LEGACY = Version(2, 0)
MINIMUM = Version(*MIN)
MAXIMUM = Version(*MAX)


def negotiate(headers: dict[str, str], legacy: bool) -> Version:
    """The version a request asks for; 2.0 on the ``/v2`` endpoint."""
    if legacy:
        return LEGACY
    requested = None
    header = headers.get("openstack-api-version")
    if header:
        for item in header.split(","):
            service, _, value = item.strip().partition(" ")
            if service.lower() == "compute":
                requested = value.strip()
    if requested is None:
        requested = headers.get("x-openstack-nova-api-version")
    if not requested:
        return MINIMUM
    if requested.strip().lower() == "latest":
        return MAXIMUM
    version = parse(requested)
    if not MINIMUM <= version <= MAXIMUM:
        raise NotAcceptable(f"Version {version} is not supported by the API. Minimum is {MINIMUM} and "
                            f"maximum is {MAXIMUM}.")
    return version


def response_headers(version: Version) -> dict[str, str]:
    if version == LEGACY:
        return {}
    return {"OpenStack-API-Version": f"compute {version}", "X-OpenStack-Nova-API-Version": str(version),
            "Vary": "OpenStack-API-Version, X-OpenStack-Nova-API-Version"}
