"""Each guest's QEMU in a cgroup of its own, with a memory limit and a CPU
cap and weight from its flavor, where the host lets Loom delegate the
memory and cpu controllers.

cgroup v2 is preferred; a host that still binds memory and cpu to cgroup v1
hierarchies gets the same limits there. A host where neither can be
delegated (a container without its own cgroup tree, say) runs guests
without limits after one warning: limits are defence in depth, never a
reason to refuse a guest. ``mode`` "on" makes their absence an error when
the driver starts instead.

The groups sit under ``parent`` (a path under each hierarchy's root, like
libvirt's machine.slice), not under the compute service's own cgroup: a
service manager that stops the service kills its whole cgroup, and guests
must outlive it. Each group's directories are recorded in the instance
directory, so a restarted driver finds them again even if ``parent`` was
changed meanwhile.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from loom import errors

LOG = logging.getLogger(__name__)
MODES = ("auto", "on", "off")
CONTROLLERS = ("memory", "cpu")
RECORD = "cgroup.json"
DEFAULT_PERIOD_US = 100_000  # the kernel's default CFS period
# libvirt's bounds for <period> and <quota>, which Nova's quota:cpu_* feed.
PERIOD_RANGE = (1000, 1_000_000)
QUOTA_RANGE = (1000, 17_592_186_044_415)
WEIGHT_RANGE = (1, 10_000)  # cgroup v2 cpu.weight


@dataclass(frozen=True)
class Limits:
    memory_bytes: int
    cpu_period_us: int
    cpu_quota_us: int | None  # for the whole process per period; None: no cap
    cpu_shares: int | None  # None: the kernel's default weight


def limits_for(vcpus: int, memory_mb: int, extra_specs: dict[str, Any], overhead_mb: int) -> Limits:
    """The limits of a guest of ``vcpus`` and ``memory_mb``.

    Memory: the guest's RAM plus ``overhead_mb`` and 1/64 of the RAM for
    QEMU itself (its code, device emulation, TCG's translation cache, page
    tables that grow with the RAM). CPU: as Nova's libvirt driver reads the
    flavor, quota:cpu_period and quota:cpu_quota are per vCPU (libvirt's
    <cputune>), so the process may use quota times the vCPUs per period; a negative
    quota means no cap. Without a quota there is no cap, as with Nova: QEMU's
    own threads (the main loop, I/O, TCG's translation) run beside the vCPUs,
    and a cap of one CPU per vCPU slowed a TCG guest's boot by a tenth.
    quota:cpu_shares is the relative weight (cpu.shares on v1; on v2
    written to cpu.weight as libvirt does, so at most 10000)."""
    period = _spec_int(extra_specs, "quota:cpu_period")
    quota = _spec_int(extra_specs, "quota:cpu_quota")
    shares = _spec_int(extra_specs, "quota:cpu_shares")
    if period:  # 0 means unset, as in Nova
        _check_range("quota:cpu_period", period, PERIOD_RANGE)
    period = period or DEFAULT_PERIOD_US
    if quota is not None and quota >= 0:
        _check_range("quota:cpu_quota", quota, QUOTA_RANGE)
    per_vcpu = quota if quota is not None and quota >= 0 else None
    if shares is not None and shares < 0:
        raise errors.Invalid(f"the flavor's quota:cpu_shares must not be negative (it is {shares})")
    memory_mb_total = memory_mb + overhead_mb + -(-memory_mb // 64)
    return Limits(memory_bytes=memory_mb_total << 20, cpu_period_us=period,
                  cpu_quota_us=None if per_vcpu is None else per_vcpu * max(1, vcpus),
                  cpu_shares=shares or None)


def _spec_int(extra_specs: dict[str, Any], key: str) -> int | None:
    value = extra_specs.get(key)
    if value is None or value == "":
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        raise errors.Invalid(f"the flavor's {key} must be an integer, not {value!r}") from None


def _check_range(key: str, value: int, bounds: tuple[int, int]) -> None:
    if not bounds[0] <= value <= bounds[1]:
        raise errors.Invalid(f"the flavor's {key} must be within {bounds[0]}..{bounds[1]} (it is {value})")


@dataclass(frozen=True)
class Mount:
    """A cgroup hierarchy: version 2 (all controllers) or a version 1
    hierarchy of ``controllers``."""

    version: int
    path: Path
    controllers: frozenset[str]


def host_mounts(mounts_file: str = "/proc/self/mounts") -> list[Mount]:
    found = []
    with open(mounts_file, encoding="utf-8") as f:
        for line in f:
            fields = line.split()
            if len(fields) < 4 or fields[2] not in ("cgroup", "cgroup2"):
                continue
            path = Path(fields[1].replace("\\040", " "))
            if fields[2] == "cgroup2":
                try:
                    names = (path / "cgroup.controllers").read_text(encoding="utf-8").split()
                except OSError:
                    continue
                found.append(Mount(2, path, frozenset(names)))
            else:
                found.append(Mount(1, path, frozenset(fields[3].split(",")) & set(CONTROLLERS)))
    return found


class Cgroups:
    """Probes the host once (``probe``), then makes, fills and removes one
    group per guest. Blocking file I/O: call it from a thread."""

    def __init__(self, mode: str = "auto", parent: str = "loom.slice", overhead_mb: int = 256,
                 mounts: list[Mount] | None = None) -> None:
        if mode not in MODES:
            raise errors.Invalid(f"the qemu cgroups mode must be one of {', '.join(MODES)}, not {mode!r}")
        relative = PurePosixPath(parent.strip("/"))
        if not relative.parts or ".." in relative.parts:
            raise errors.Invalid(f"the qemu cgroup parent must be a path under the cgroup root, not {parent!r}")
        self.mode, self.parent, self.overhead_mb = mode, str(relative), overhead_mb
        self._mounts = mounts
        self.version: int | None = None  # of the hierarchies in use; None: no limits
        self.reason = "not probed yet"
        self._bases: list[Path] = []  # the parent group in each hierarchy used

    @property
    def available(self) -> bool:
        return self.version is not None

    def probe(self) -> None:
        """Find hierarchies where Loom may make groups with the memory and
        cpu controllers; without any, guests run without limits (mode
        auto) or the driver refuses to start (mode on)."""
        if self.mode == "off":
            self.version, self.reason = None, "turned off (compute.qemu_cgroups = off)"
            return
        try:
            mounts = self._mounts if self._mounts is not None else host_mounts()
        except OSError as exc:
            mounts, failures = [], [f"reading the mount table: {exc}"]
        else:
            failures = []
        for version in (2, 1):
            try:
                self._bases = self._delegate(version, mounts)
                self.version = version
                self.reason = f"cgroup v{version} under {', '.join(map(str, self._bases))}"
                return
            except OSError as exc:
                failures.append(f"v{version}: {exc.strerror or exc}" + (f" ({exc.filename})" if exc.filename else ""))
        self.version = None
        self.reason = "no cgroup hierarchy with the memory and cpu controllers can be used: " + "; ".join(failures)
        if self.mode == "on":
            raise errors.Invalid(f"compute.qemu_cgroups is on but {self.reason}")

    def _delegate(self, version: int, mounts: list[Mount]) -> list[Path]:
        if version == 2:
            unified = [m for m in mounts if m.version == 2 and set(CONTROLLERS) <= m.controllers]
            if not unified:
                raise OSError(0, "no cgroup2 mount offers the memory and cpu controllers")
            bases = [self._make_parent(unified[0].path, enable=True)]
        else:
            bases = []
            for controller in CONTROLLERS:
                mount = next((m for m in mounts if m.version == 1 and controller in m.controllers), None)
                if mount is None:
                    raise OSError(0, f"no cgroup v1 hierarchy has the {controller} controller")
                bases.append(self._make_parent(mount.path, enable=False))
        # A trial group proves that groups can be made and limited here.
        trial = Group(version, [base / f"probe-{os.getpid()}" for base in bases])
        try:
            trial.make(Limits(memory_bytes=64 << 20, cpu_period_us=DEFAULT_PERIOD_US, cpu_quota_us=None,
                              cpu_shares=None))
        finally:
            trial.remove()
        return bases

    def _make_parent(self, root: Path, enable: bool) -> Path:
        """The parent group, with (v2) the controllers enabled for its
        children in it and every group above it."""
        path = root
        for part in PurePosixPath(self.parent).parts:
            if enable:
                _enable(path)
            path = path / part
            path.mkdir(exist_ok=True)
        if enable:
            _enable(path)
        return path

    def group(self, uuid: str) -> Group | None:
        """The group a guest of ``uuid`` gets; None without limits."""
        if self.version is None:
            return None
        return Group(self.version, [base / uuid for base in self._bases])


    def prepare(self, uuid: str, vcpus: int, memory_mb: int, extra_specs: dict[str, Any],
                instance_dir: Path) -> Group | None:
        """The group for a guest about to start, made, limited and recorded
        in its directory; None without limits. The flavor's quota:cpu_*
        are checked either way: a flavor a host could not honour is refused."""
        limits = limits_for(vcpus, memory_mb, extra_specs, self.overhead_mb)
        group = self.group(uuid)
        if group is None:
            return None
        try:
            group.make(limits)
            group.record(instance_dir)
        except OSError as exc:  # the probe passed: a surprise, not a reason to refuse the guest
            LOG.warning("instance %s starts without cgroup limits: %s", uuid, exc)
            group.remove()
            return None
        return group

    def release(self, uuid: str, instance_dir: Path) -> None:
        """Remove a guest's group (the one recorded, and the one it would
        get now); its QEMU must be gone."""
        for group in (Group.recorded(instance_dir), self.group(uuid)):
            if group is not None:
                group.remove()
        (instance_dir / RECORD).unlink(missing_ok=True)

    def adopt(self, uuid: str, instance_dir: Path, pid: int | None) -> None:
        """Find a running guest's group again (a restarted driver)."""
        group = Group.recorded(instance_dir)
        if pid is None or self.version is None:
            return
        if group is None or not group.holds(pid):
            LOG.warning("instance %s runs outside a cgroup (started without limits); it gets one when it "
                        "next starts", uuid)


def _enable(group: Path) -> None:
    control = group / "cgroup.subtree_control"
    enabled = control.read_text(encoding="utf-8").split()
    missing = [c for c in CONTROLLERS if c not in enabled]
    if missing:
        control.write_text(" ".join(f"+{c}" for c in missing), encoding="utf-8")


@dataclass(frozen=True)
class Group:
    """One guest's group: a directory in each hierarchy used."""

    version: int
    directories: list[Path]

    def make(self, limits: Limits) -> None:
        """Make the directories (again: a restarted guest reuses them) and
        write the limits; on failure nothing is left."""
        try:
            for directory in self.directories:
                directory.mkdir(exist_ok=True)
                for name, value in self._values(directory, limits):
                    (directory / name).write_text(value, encoding="utf-8")
        except OSError:
            self.remove()
            raise

    def _values(self, directory: Path, limits: Limits) -> list[tuple[str, str]]:
        if self.version == 2:
            quota = "max" if limits.cpu_quota_us is None else str(limits.cpu_quota_us)
            values = [("memory.max", str(limits.memory_bytes)), ("cpu.max", f"{quota} {limits.cpu_period_us}")]
            if limits.cpu_shares is not None:
                values.append(("cpu.weight", str(min(max(limits.cpu_shares, WEIGHT_RANGE[0]), WEIGHT_RANGE[1]))))
            return values
        values = []
        if (directory / "memory.limit_in_bytes").exists():
            values.append(("memory.limit_in_bytes", str(limits.memory_bytes)))
        if (directory / "cpu.cfs_quota_us").exists():
            # The period first: a quota is checked against the period in force.
            values += [("cpu.cfs_period_us", str(limits.cpu_period_us)),
                       ("cpu.cfs_quota_us", str(-1 if limits.cpu_quota_us is None else limits.cpu_quota_us))]
            if limits.cpu_shares is not None:
                values.append(("cpu.shares", str(max(limits.cpu_shares, 2))))
        return values

    def wrap(self, command: list[str]) -> list[str]:
        """``command`` run so that it is in the group before it starts:
        a shell writes its own pid into each group's cgroup.procs, then
        becomes the command (exec). QEMU daemonizes by forking, and children
        stay in their parent's group, so every QEMU thread and every byte
        it allocates is limited from the first instruction. (Moving the
        daemon in after it started would leave the memory it had touched
        charged to the old group, and the guest running unlimited until
        then.)"""
        procs = [str(d / "cgroup.procs") for d in self.directories]
        script = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"'
        return ["/bin/sh", "-c", script, "loom-cgroup", *procs, "--", *command]

    def holds(self, pid: int) -> bool:
        """Whether process ``pid`` is in this group (in every hierarchy)."""
        try:
            lines = Path(f"/proc/{pid}/cgroup").read_text(encoding="utf-8").splitlines()
        except OSError:
            return False
        paths = {line.split(":", 2)[2] for line in lines if line.count(":") >= 2}
        return all(any(str(d).endswith(p) and p != "/" for p in paths) for d in self.directories)

    def remove(self, timeout: float = 5.0) -> None:
        """Remove the directories. A process that has just exited may keep
        its group busy for a moment: retried until ``timeout``."""
        deadline = time.monotonic() + timeout
        for directory in self.directories:
            while True:
                try:
                    directory.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:
                    if time.monotonic() > deadline:
                        LOG.warning("cannot remove cgroup %s: %s", directory, exc.strerror)
                        break
                    time.sleep(0.05)

    def record(self, instance_dir: Path) -> None:
        (instance_dir / RECORD).write_text(
            json.dumps({"version": self.version, "directories": [str(d) for d in self.directories]}),
            encoding="utf-8")

    @classmethod
    def recorded(cls, instance_dir: Path) -> Group | None:
        """The group recorded in an instance directory, if any."""
        try:
            data = json.loads((instance_dir / RECORD).read_text(encoding="utf-8"))
            return cls(int(data["version"]), [Path(d) for d in data["directories"]])
        except (OSError, ValueError, KeyError, TypeError):
            return None
