"""The compute service: one per hypervisor host, driving its virt driver."""

from __future__ import annotations

from loom.manager import Manager

TOPIC = "compute"


class ComputeManager(Manager):
    binary = "loom-compute"
    topic = TOPIC
