"""The scheduler's errors. They cross the bus by class name, so a caller
gets ``NoValidHost`` back as ``NoValidHost`` once this module is imported
(``loom.scheduler.rpcapi`` does)."""

from __future__ import annotations

from loom import errors


class NoValidHost(errors.NoResources):
    """No valid host was found."""


class UnknownPlugin(errors.Invalid):
    """A filter or weigher named in the configuration does not exist."""
