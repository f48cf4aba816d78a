"""The scheduler: picks hosts for instances and claims them in placement
(docs/scheduler.md). Other services use ``loom.scheduler.rpcapi``."""
