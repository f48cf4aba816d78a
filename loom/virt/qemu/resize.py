"""Resize and cold migration, as Nova's libvirt driver does them.

The source shuts the guest down cleanly (shutdown.py) and sets its
directory aside, untouched, as the kept copy: ``<state_dir>/kept/<uuid>/``.
The destination (this host again for a resize to the same host) makes a
new instance directory from copies of its disks: the root disk's base
image through its own image cache (inspected as any image; found there
already on the same host), the overlay rebased onto it, the root and
ephemeral disks grown to the new flavor (never shrunk: Invalid, as Nova's
"Unable to resize disk down"), the config drive made again, the attached
volumes and NICs carried over; the new vCPUs and RAM are QEMU's on that
start. Confirming deletes the kept copy; reverting moves it back, so the
guest has exactly the disk it had.

The destination reads the kept copy by its path: it must see the source's
state directory at the same path (one machine, or a file system shared by
the hosts at the same mount point); otherwise finish_migration says so.

The public functions are QemuDriver's methods of the resize capability
(the driver's class takes them as they are: ``driver`` is its ``self``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loom import errors
from loom.virt.driver import (
    DriverError,
    InstanceExists,
    InstanceInvalidState,
    InstanceSpec,
    PowerState,
)
from loom.virt.qemu import configdrive, disks, interfaces, rescue, shutdown
from loom.virt.qemu.command import InstancePaths
from loom.virt.qemu.images import local_source, run

if TYPE_CHECKING:
    from loom.virt.qemu.driver import QemuDriver, QemuGuest

LOG = logging.getLogger(__name__)
KEPT = "kept"
ATTACHMENTS = "attachments.json"  # hotplug.py's record of volumes and NICs


def kept_dir(state_dir: Path, uuid: str) -> Path:
    return state_dir / KEPT / uuid


def kept_specs(state_dir: Path) -> list[InstanceSpec]:
    """The kept copies here: each holds its resources until confirmed or
    reverted."""
    specs = []
    for path in sorted((state_dir / KEPT).glob("*/spec.json")):
        try:
            specs.append(InstanceSpec.from_dict(json.loads(path.read_text(encoding="utf-8"))))
        except (OSError, ValueError, TypeError) as exc:
            LOG.warning("ignoring the kept copy %s: %s", path.parent, exc)
    return specs


async def resize(driver: QemuDriver, uuid: str, spec: InstanceSpec) -> None:
    """In place, keeping the power state: a running guest is shut down and
    started again with the new size."""
    driver.check_capability("resize")
    async with driver._operate(uuid, "resize") as (guest, state):
        _check_target(guest, spec, uuid, "resize")
        driver._check_room(spec, replacing=uuid)
        old, qemu_img = guest.spec, driver.options.qemu_img
        await shutdown.power_off(driver, guest, state)
        undo: list[tuple[Path, int | None]] = []  # (disk, its size before) or (made disk, None)
        try:
            await _grow_disks(qemu_img, guest.paths, spec, undo)
            guest.spec = spec
            _save_spec(guest.paths, spec)
            if state == PowerState.RUNNING:
                await driver._start(guest)
        except BaseException:
            await driver._stop(guest, 0)
            guest.spec = old
            _save_spec(guest.paths, old)
            for disk, size in reversed(undo):
                if size is None:
                    disk.unlink(missing_ok=True)
                else:
                    await disks.shrink_back(qemu_img, disk, size)
            if state == PowerState.RUNNING:
                with contextlib.suppress(DriverError):
                    await driver._start(guest)
            raise


async def prepare_migration(driver: QemuDriver, spec: InstanceSpec) -> None:
    driver.check_capability("resize")
    driver._ready()
    driver._check_room(spec)


async def migrate_disk_and_power_off(driver: QemuDriver, uuid: str, dest_host: str,
                                     spec: InstanceSpec) -> dict[str, Any]:
    driver.check_capability("resize")
    async with driver._operate(uuid, "resize") as (guest, state):
        _check_target(guest, spec, uuid, "migrate")
        kept = kept_dir(driver.state_dir, uuid)
        if kept.exists():
            raise InstanceInvalidState(f"instance {uuid} has a copy kept from an earlier move on host {driver.host}: "
                                       "confirm or revert that move first", instance=uuid)
        await shutdown.power_off(driver, guest, state)
        kept.parent.mkdir(exist_ok=True)
        guest.paths.directory.rename(kept)
        del driver._guests[uuid]
    LOG.info("instance %s is stopped and kept in %s for host %s", uuid, kept, dest_host)
    return {"source_host": driver.host, "path": str(kept)}


async def finish_migration(driver: QemuDriver, spec: InstanceSpec, disk_info: dict[str, Any],
                           power_on: bool) -> None:
    from loom.virt.qemu.driver import QemuGuest  # the driver imports this module

    driver.check_capability("resize")
    host = driver._ready()
    if spec.uuid in driver._guests:
        raise InstanceExists(f"instance {spec.uuid} is already on host {host}", instance=spec.uuid)
    source = _handed_over(disk_info, spec.uuid, host)
    driver._check_room(spec)
    guest = QemuGuest(spec, InstancePaths(driver.state_dir / "instances" / spec.uuid), building=True)
    driver._guests[spec.uuid] = guest  # it holds its resources while it is made
    try:
        async with guest.lock:
            await _make_from(driver, guest, source)
            if power_on:
                await driver._start(guest)
            _save_spec(guest.paths, spec)  # last, as in a spawn
            guest.building = False
    except BaseException:
        if driver._guests.get(spec.uuid) is guest:
            del driver._guests[spec.uuid]
        await driver._remove(guest)  # the kept copy on the source is untouched
        raise


async def confirm_migration(driver: QemuDriver, uuid: str) -> None:
    driver.check_capability("resize")
    driver._ready()
    kept = kept_dir(driver.state_dir, uuid)
    if not kept.exists():
        return
    if uuid not in driver._guests:  # moved to another host: its taps and cgroup here go too
        with contextlib.suppress(OSError, ValueError, TypeError, errors.Invalid):
            spec = InstanceSpec.from_dict(json.loads((kept / "spec.json").read_text(encoding="utf-8")))
            await interfaces.unplug_all(interfaces.current(InstancePaths(kept), spec))
        await asyncio.to_thread(driver.cgroups.release, uuid, kept)
    await asyncio.to_thread(shutil.rmtree, kept, True)


async def finish_revert_migration(driver: QemuDriver, spec: InstanceSpec, power_on: bool) -> None:
    from loom.virt.qemu.driver import QemuGuest  # the driver imports this module

    driver.check_capability("resize")
    host = driver._ready()
    uuid = spec.uuid
    kept = kept_dir(driver.state_dir, uuid)
    if kept.exists():
        if uuid in driver._guests:
            raise InstanceExists(f"instance {uuid} still runs on host {host}: destroy that copy before reverting "
                                 "to the kept one", instance=uuid)
        paths = InstancePaths(driver.state_dir / "instances" / uuid)
        shutil.rmtree(paths.directory, ignore_errors=True)  # an unfinished copy (no spec, so never listed)
        kept.rename(paths.directory)
        _save_spec(paths, spec)
        driver._guests[uuid] = QemuGuest(spec, paths)
    guest = driver._guest(uuid)  # InstanceNotFound: neither kept nor back already
    async with guest.lock:
        guest.spec = spec
        _save_spec(guest.paths, spec)
        if power_on:
            state, _pid = await driver._power_state(guest)
            if state != PowerState.RUNNING:
                await driver._stop(guest, 0)
                await driver._start(guest)


def _check_target(guest: QemuGuest, spec: InstanceSpec, uuid: str, operation: str) -> None:
    rescue.refuse_rescued(guest.paths, uuid, operation)
    if spec.uuid != uuid:
        raise errors.Invalid(f"cannot {operation} instance {uuid} with the spec of {spec.uuid}")
    old = guest.spec
    for what, before, after in (("root", old.root_gb, spec.root_gb), ("ephemeral", old.ephemeral_gb,
                                                                       spec.ephemeral_gb)):
        if after < before:
            raise errors.Invalid(f"cannot {operation} instance {uuid}: its {what} disk cannot shrink from "
                                 f"{before} GB to {after} GB")


def _handed_over(disk_info: dict[str, Any], uuid: str, host: str) -> Path:
    """The kept copy's directory named by migrate_disk_and_power_off."""
    path = Path(str(disk_info.get("path") or ""))
    if not path.is_absolute() or path.name != uuid or path.parent.name != KEPT:
        raise errors.Invalid(f"no kept copy of instance {uuid} is named in the disk info {disk_info!r}")
    if not (path / "spec.json").is_file():
        raise DriverError(f"the disk of instance {uuid} that host {disk_info.get('source_host')} kept at {path} "
                          f"is not reachable from host {host}: a move between machines needs the source's qemu "
                          "state directory at the same path here (a shared file system)", instance=uuid)
    return path


async def _make_from(driver: QemuDriver, guest: QemuGuest, source: Path) -> None:
    spec, paths, qemu_img = guest.spec, guest.paths, driver.options.qemu_img
    shutil.rmtree(paths.directory, ignore_errors=True)
    paths.directory.mkdir(parents=True)
    source_paths = InstancePaths(source)
    root = await disks.info(qemu_img, source_paths.disk)
    disks.check_qcow2(root, source.parent.parent / "_base")
    await asyncio.to_thread(shutil.copyfile, source_paths.disk, paths.disk)
    if root.backing_file is not None:
        _key, read = local_source(Path(root.backing_file))
        base = await driver.images.fetch(Path(root.backing_file).name, read)
        await run(qemu_img, "rebase", "-u", "-f", "qcow2", "-F", base.format, "-b", str(base.path), str(paths.disk))
    if source_paths.ephemeral.exists():
        disks.check_qcow2(await disks.info(qemu_img, source_paths.ephemeral), None)
        await asyncio.to_thread(shutil.copyfile, source_paths.ephemeral, paths.ephemeral)
    if (source / ATTACHMENTS).exists():
        await asyncio.to_thread(shutil.copyfile, source / ATTACHMENTS, paths.directory / ATTACHMENTS)
    await _grow_disks(qemu_img, paths, spec, [])
    if spec.config_drive:
        await configdrive.build(spec, paths.config_drive)


async def _grow_disks(qemu_img: str, paths: InstancePaths, spec: InstanceSpec,
                      undo: list[tuple[Path, int | None]]) -> None:
    """The root and ephemeral disks at the flavor's sizes, noting in
    ``undo`` what changed."""
    size = await disks.grow(qemu_img, await disks.info(qemu_img, paths.disk), spec.root_gb, "root disk")
    if size is not None:
        undo.append((paths.disk, size))
    if paths.ephemeral.exists():
        size = await disks.grow(qemu_img, await disks.info(qemu_img, paths.ephemeral), spec.ephemeral_gb,
                                "ephemeral disk")
        if size is not None:
            undo.append((paths.ephemeral, size))
    elif spec.ephemeral_gb:
        await run(qemu_img, "create", "-q", "-f", "qcow2", str(paths.ephemeral), str(spec.ephemeral_gb << 30))
        undo.append((paths.ephemeral, None))


def _save_spec(paths: InstancePaths, spec: InstanceSpec) -> None:
    temporary = paths.spec.with_name(paths.spec.name + ".tmp")
    temporary.write_text(json.dumps(dataclasses.asdict(spec), sort_keys=True), encoding="utf-8")
    os.replace(temporary, paths.spec)
