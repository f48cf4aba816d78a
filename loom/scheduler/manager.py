"""The scheduler service: picks hosts for instances."""

from __future__ import annotations

from loom.manager import Manager

TOPIC = "scheduler"


class SchedulerManager(Manager):
    binary = "loom-scheduler"
    topic = TOPIC
