"""Garbage collection tuned for a long-running service.

Imports and start-up leave hundreds of thousands of objects that live as
long as the process. CPython's cyclic collector walks all of them on every
full collection (a tenth of a second each in ``loom up``, a fifth of its
CPU under a boot storm). Frozen after start-up, they are never walked
again; and with a larger first generation, the objects of a request that
has finished are freed by reference counting before a collection sees
them, so fewer reach the older generations at all."""

from __future__ import annotations

import gc
import logging

LOG = logging.getLogger(__name__)


def settle(threshold: int) -> None:
    """Freeze what start-up made and set the first generation's threshold
    (0 leaves the collector as it is)."""
    if threshold <= 0:
        return
    gc.collect()
    gc.freeze()
    _, second, third = gc.get_threshold()
    gc.set_threshold(threshold, second, third)
    LOG.debug("%d objects frozen; first-generation threshold %d", gc.get_freeze_count(), threshold)
