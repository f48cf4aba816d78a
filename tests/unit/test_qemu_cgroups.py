"""The cgroup limits of QEMU guests, without a real cgroup tree: the limits
a flavor gives, the files a group writes (v2 and v1 names), the shell that
puts a command in its group before it runs, and the probe's answers."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from loom import errors
from loom.virt.qemu import cgroups
from loom.virt.qemu.cgroups import Group, Limits, limits_for


def test_defaults_limit_memory_and_leave_cpu_uncapped() -> None:
    limits = limits_for(2, 1024, {}, overhead_mb=256)
    assert limits == Limits(memory_bytes=(1024 + 256 + 16) << 20, cpu_period_us=100_000, cpu_quota_us=None,
                            cpu_shares=None)


def test_flavor_quota_is_per_vcpu_as_in_libvirt() -> None:
    specs = {"quota:cpu_period": "20000", "quota:cpu_quota": "5000", "quota:cpu_shares": "512"}
    limits = limits_for(3, 128, specs, overhead_mb=0)
    assert (limits.cpu_period_us, limits.cpu_quota_us, limits.cpu_shares) == (20_000, 15_000, 512)
    assert limits.memory_bytes == (128 + 2) << 20


def test_a_negative_quota_means_no_cap_and_zero_means_unset() -> None:
    assert limits_for(1, 64, {"quota:cpu_quota": "-1"}, 0).cpu_quota_us is None
    limits = limits_for(1, 64, {"quota:cpu_period": "0", "quota:cpu_shares": "0"}, 0)
    assert (limits.cpu_period_us, limits.cpu_shares) == (100_000, None)


@pytest.mark.parametrize("specs", [{"quota:cpu_period": "500"}, {"quota:cpu_period": "2000000"},
                                   {"quota:cpu_quota": "10"}, {"quota:cpu_shares": "-3"},
                                   {"quota:cpu_quota": "lots"}])
def test_bad_flavor_quotas_are_refused(specs: dict[str, str]) -> None:
    with pytest.raises(errors.Invalid, match="quota:cpu_"):
        limits_for(1, 64, specs, 0)


def test_a_v2_group_writes_memory_max_cpu_max_and_weight(tmp_path: Path) -> None:
    group = Group(2, [tmp_path / "guest"])
    group.make(Limits(memory_bytes=1 << 30, cpu_period_us=100_000, cpu_quota_us=None, cpu_shares=20_000))
    directory = tmp_path / "guest"
    assert (directory / "memory.max").read_text() == str(1 << 30)
    assert (directory / "cpu.max").read_text() == "max 100000"
    assert (directory / "cpu.weight").read_text() == "10000"  # cgroup v2's highest weight


def test_v1_groups_write_each_hierarchys_own_files(tmp_path: Path) -> None:
    memory, cpu = tmp_path / "memory" / "guest", tmp_path / "cpu" / "guest"
    for directory, files in ((memory, ["memory.limit_in_bytes"]),
                             (cpu, ["cpu.cfs_period_us", "cpu.cfs_quota_us", "cpu.shares"])):
        directory.mkdir(parents=True)  # the kernel makes these files with the group
        for name in files:
            (directory / name).write_text("")
    Group(1, [memory, cpu]).make(Limits(memory_bytes=5 << 20, cpu_period_us=50_000, cpu_quota_us=25_000,
                                        cpu_shares=None))
    assert (memory / "memory.limit_in_bytes").read_text() == str(5 << 20)
    assert not (memory / "cpu.cfs_quota_us").exists()
    assert ((cpu / "cpu.cfs_period_us").read_text(), (cpu / "cpu.cfs_quota_us").read_text()) == ("50000", "25000")
    assert (cpu / "cpu.shares").read_text() == ""  # no weight asked for: the kernel's default stays


def test_the_command_is_in_its_group_before_it_runs(tmp_path: Path) -> None:
    directories = [tmp_path / "a", tmp_path / "b"]
    for directory in directories:
        directory.mkdir()
    command = Group(1, directories).wrap(["/bin/sh", "-c", "echo $$"])
    pid = subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()
    # exec keeps the pid: the process that wrote itself into the group is the command.
    assert [(d / "cgroup.procs").read_text().strip() for d in directories] == [pid, pid]


def test_a_group_that_cannot_be_joined_fails_the_command(tmp_path: Path) -> None:
    command = Group(2, [tmp_path / "missing"]).wrap(["/bin/true"])
    assert subprocess.run(command, capture_output=True, check=False).returncode == 125


def test_a_group_is_recorded_and_released(tmp_path: Path) -> None:
    manager = cgroups.Cgroups("auto", "loom.slice")
    (tmp_path / "cg").mkdir()
    group = Group(2, [tmp_path / "cg" / "guest"])
    group.make(Limits(memory_bytes=1 << 20, cpu_period_us=100_000, cpu_quota_us=None, cpu_shares=None))
    group.record(tmp_path)
    assert Group.recorded(tmp_path) == group
    for name in ("memory.max", "cpu.max"):  # a real group's files go with its directory
        (tmp_path / "cg" / "guest" / name).unlink()
    manager.release("guest", tmp_path)
    assert not (tmp_path / "cg" / "guest").exists() and Group.recorded(tmp_path) is None


def test_without_controllers_auto_runs_without_limits_and_on_refuses() -> None:
    auto = cgroups.Cgroups("auto", "loom.slice", mounts=[])
    auto.probe()
    assert not auto.available and "memory and cpu" in auto.reason
    assert auto.group("x") is None
    with pytest.raises(errors.Invalid, match="qemu_cgroups is on"):
        cgroups.Cgroups("on", "loom.slice", mounts=[]).probe()
    off = cgroups.Cgroups("off", "loom.slice")
    off.probe()
    assert not off.available and "off" in off.reason


@pytest.mark.parametrize("parent", ["", "/", "../escape", "a/../../b"])
def test_the_parent_stays_under_the_cgroup_root(parent: str) -> None:
    with pytest.raises(errors.Invalid, match="parent"):
        cgroups.Cgroups("auto", parent)


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(errors.Invalid, match="auto, on, off"):
        cgroups.Cgroups("sometimes", "loom.slice")


def test_mounts_are_read_from_the_mount_table(tmp_path: Path) -> None:
    unified = tmp_path / "unified"
    unified.mkdir()
    (unified / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    table = tmp_path / "mounts"
    table.write_text(f"cgroup2 {unified} cgroup2 rw,relatime 0 0\n"
                     "cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,cpu,cpuacct 0 0\n"
                     "proc /proc proc rw 0 0\n")
    mounts = cgroups.host_mounts(str(table))
    assert [(m.version, m.controllers) for m in mounts] == [
        (2, frozenset({"cpuset", "cpu", "io", "memory", "pids"})), (1, frozenset({"cpu"}))]
