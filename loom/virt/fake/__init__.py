"""A hypervisor that keeps real state: the driver of ``loom up`` where QEMU
is absent, and the compute host of the functional tests.

Power states change only as a hypervisor's do (driver.ALLOWED_STATES),
memory and disk are accounted honestly against the host's (spawns that do
not fit are refused; vCPUs are only counted), and a guest prints to its
serial console on every boot, as a real one does::

    loom-fake-guest: booted <hostname> <uuid>

Its knobs are constructor arguments, so many fake hosts live in one process:

- ``vcpus``, ``memory_mb``, ``disk_gb``: the host's physical resources.
- ``spawn_delay``, ``op_delay``: seconds a spawn, or any other operation
  that changes a guest, takes.
- ``fail_spawn``: injected spawn failures (SpawnFailed, "injected failure"):
  an int fails the next N spawns, True fails every one, a predicate on the
  InstanceSpec fails those it accepts. A public attribute: change it any time.
- ``live_migration_time``: seconds a live migration's copy takes (progress is
  reported along the way, so it can be watched, aborted or forced to end).
  A public attribute.
- ``state_path``: a directory the guests are kept in (one small JSON file
  each, written when the guest changes), so that a new FakeDriver for the
  host (a restarted compute service) finds them running.
- ``host``: the host it will serve, if known when it is made; init_host
  must then name the same one.
- ``fail_operations``: names of operations to fail (DriverError, "injected
  failure") where a hypervisor would: ``prepare_migration``,
  ``migrate_disk_and_power_off`` (after the guest stopped),
  ``finish_migration`` (after the disk arrived, before the guest starts),
  ``confirm_migration``, ``finish_revert_migration`` (after the copy is
  back, before it starts), ``live_migration`` (after the copy, before the
  guest moves) and ``destroy``. A public set: change it any time.
- ``hypervisor_hostname``: defaults to the host.
- ``clock``: wall-clock seconds, from which uptime and CPU time derive.

Consoles: a unix socket per guest and protocol, served on the driver's
event loop from a temporary directory, so that the console proxy has
something real to bridge to (``FakeConsoles``). The serial one sends the
console log so far, then echoes what it receives, as a terminal does; the
VNC one sends RFB's greeting (``RFB 003.008\\n``) and nothing more. A
connection to a guest that is gone, or neither running nor paused, is
closed at once.

``FakeDriver.hosts`` maps each initialised host to its driver (init_host
registers it, cleanup removes it): how tests reach the fake of a host, and
how live migration between fakes in one process hands a guest over. A cold
migration hands the disk over by a handle in its disk_info.
"""

from loom.virt.fake.driver import FakeDriver, SpawnFailure
from loom.virt.fake.guest import (
    BOOT_MARKER,
    CONSOLE_LINES,
    CPU_LOAD,
    RESCUE_MARKER,
    SNAPSHOT_SIZE,
    FakeGuest,
)

__all__ = ["BOOT_MARKER", "CONSOLE_LINES", "CPU_LOAD", "RESCUE_MARKER", "SNAPSHOT_SIZE", "FakeDriver", "FakeGuest",
           "SpawnFailure"]
