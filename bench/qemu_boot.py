"""Benchmark of a real boot on the qemu driver: the time from ``POST
/servers`` to the guest's ``LOOM-GUEST-READY`` line on its serial console,
against the same guest started by a plain ``qemu-system-x86_64`` command in
the same run. Target (issue 06): Loom adds under 0.5 s.

What is measured, against ``loom up --driver qemu`` running as its own
process (fresh data directory, SQLite, memory bus, the accelerator chosen as
the driver chooses it unless ``--accelerator`` says otherwise, the test
guest as the ``demo`` image), driven over HTTP on loopback with the
standard library's client, as the admin, microversion 2.79, a flavor of
128 MB, 1 vCPU and 1 GB made for the run, ``"networks": "none"``:

* **Loom**: ``POST /servers``, then every ``--poll-ms`` (50 ms)
  ``os-getConsoleOutput`` until it holds the marker; the time from the POST
  being sent to that answer. The server is then deleted and the benchmark
  waits until it is gone (404 and its QEMU gone) before the next boot, so
  only one guest runs at a time. On each tick the guest's ``console.log``
  in the data directory is read too, and the QEMU process's start time is
  taken from ``/proc/<pid>/stat`` (10 ms resolution), which splits the
  time: POST → 202; 202 → the compute host's spawn call (the
  ``compute_build_and_run_instance`` action event's start);
  spawn call → QEMU started (overlay, command line, exec); QEMU started →
  marker in the serial log (the guest's boot); marker in the log → the API
  answering with it (the poll's interval and the console RPC).
* **plain**: ``qemu-system-x86_64`` run directly (not daemonized) with the
  driver's essential options (``loom/virt/qemu/command.py``): ``-nodefaults
  -no-user-config -machine pc``, the same accelerator (``-accel
  tcg,tb-size=64 -cpu max`` or ``-accel kvm -cpu host``), ``-smp 1 -m 128``,
  ``-display none``, the root disk as a qcow2 overlay (1 GB) on the same
  cached base image as a ``virtio-blk-pci`` ``-blockdev``, the serial port to
  a file. The overlay is made before the clock starts; the clock runs from
  starting the command to the marker in the serial file, polled every
  ``--poll-ms`` too. Not given: Loom's VGA device and VNC socket, the QMP
  socket, ``-sandbox``, ``-smbios``, ``-daemonize``: those are part of what
  Loom adds.
* **the driver's command line by hand**: to tell what those options cost
  from what the control plane costs, the driver's own command line for
  this guest (``loom.virt.qemu.command.command_line``, without
  ``-daemonize``) on an overlay made the same way, timed like plain.

The CPU time QEMU has used when the marker appears (``/proc``) is shown
for all three, and the ``loom up`` process's CPU time from the POST to the
marker: under TCG the guest needs a whole core, so on a small machine the
polls' CPU (``--poll-ms``) is taken from the guest's boot.

One untimed boot of Loom and of plain comes first (Loom's fetches the image
into the base-image cache). Then ``--repeat`` (5) rounds of the three,
interleaved, each going first in turn; the table shows medians, the
difference of the medians (Loom - plain) against the 0.5 s target, and the
median of each round's difference. ``--no-vnc`` runs Loom and the driver's
command line without the VGA device and VNC display.

    .venv/bin/python bench/qemu_boot.py                  # 5 rounds (about 2 minutes under TCG)
    .venv/bin/python bench/qemu_boot.py --repeat 9 --poll-ms 200 --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cloud_client import Api, ApiError, Cloud
from common import ROOT, command_line, loom_up, machine, progress

from loom.virt.qemu import accel
from loom.virt.qemu import command as qemu_command

COMPUTE = "/compute/v2.1"
READY = b"LOOM-GUEST-READY"
FLAVOR: dict[str, Any] = {"name": "bench.qemu", "ram": 128, "vcpus": 1, "disk": 1}
TARGET_S = 0.5
BOOT_TIMEOUT = 300.0  # TCG on a loaded machine


def proc_start(pid: int) -> float | None:
    """When process ``pid`` started, on the ``time.perf_counter`` clock."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except OSError:
        return None
    ticks = int(raw[raw.rfind(")") + 2:].split()[19])
    age = time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
    return time.perf_counter() - age


def cpu_s(pid: int | None) -> float | None:
    """The CPU time (user and system) process ``pid`` has used so far."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except OSError:
        return None
    fields = raw[raw.rfind(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def holds_marker(path: Path) -> bool:
    try:
        return READY in path.read_bytes()
    except OSError:
        return False


def epoch(stamp: str) -> float:
    parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


# -- Loom ---------------------------------------------------------------------


def spawn_started(api: Api, server_id: str) -> float | None:
    """The wall-clock time of the compute host's spawn call, from the
    server's create action."""
    _, body, _ = api.request("GET", f"{COMPUTE}/servers/{server_id}/os-instance-actions")
    request_id = body["instanceActions"][0]["request_id"]
    _, body, _ = api.request("GET", f"{COMPUTE}/servers/{server_id}/os-instance-actions/{request_id}")
    for event in body["instanceAction"].get("events", []):
        if event["event"] == "compute_build_and_run_instance" and event.get("start_time"):
            return epoch(event["start_time"])
    return None


def loom_boot(api: Api, image: str, flavor: str, qemu_dir: Path, name: str, poll: float,
              loom_pid: int) -> dict[str, float]:
    loom_cpu = cpu_s(loom_pid)
    wall0, start = time.time(), time.perf_counter()
    _, body, _ = api.request("POST", COMPUTE + "/servers", {"server": {
        "name": name, "imageRef": image, "flavorRef": flavor, "networks": "none"}}, ok=(202,))
    accepted = time.perf_counter()
    server_id = str(body["server"]["id"])
    directory = qemu_dir / "instances" / server_id
    qemu_started = in_log = qemu_pid = qemu_cpu = None
    tick = start
    while True:
        tick = max(tick + poll, time.perf_counter())
        pause = tick - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        if qemu_started is None:
            try:
                qemu_pid = int((directory / "qemu.pid").read_text())
                qemu_started = proc_start(qemu_pid)
            except (OSError, ValueError):
                pass
        if in_log is None and holds_marker(directory / "console.log"):
            in_log = time.perf_counter()
            qemu_cpu = cpu_s(qemu_pid)
        status, out, _ = api.request("POST", f"{COMPUTE}/servers/{server_id}/action",
                                     {"os-getConsoleOutput": {"length": None}}, ok=(200, 404, 409))
        if status == 200 and READY.decode() in out["output"]:
            seen = time.perf_counter()
            loom_used = cpu_s(loom_pid)
            break
        if time.perf_counter() - start > BOOT_TIMEOUT:
            _, shown, _ = api.request("GET", f"{COMPUTE}/servers/{server_id}")
            raise ApiError(f"server {server_id} ({shown['server']['status']}) printed no marker in "
                           f"{BOOT_TIMEOUT:.0f} s")
    spawn_call = spawn_started(api, server_id)
    api.request("DELETE", f"{COMPUTE}/servers/{server_id}", ok=(204,))
    while api.request("GET", f"{COMPUTE}/servers/{server_id}", ok=(200, 404))[0] != 404 or directory.exists():
        time.sleep(0.1)
    figures = {"total_s": seen - start, "post_s": accepted - start}
    if loom_cpu is not None and loom_used is not None:
        figures["loom_cpu_s"] = loom_used - loom_cpu
    if qemu_cpu is not None:
        figures["qemu_cpu_s"] = qemu_cpu
    if spawn_call is not None:
        figures["to_spawn_s"] = spawn_call - wall0 - (accepted - start)
        if qemu_started is not None:
            figures["spawn_to_qemu_s"] = qemu_started - start - (spawn_call - wall0)
    if qemu_started is not None and in_log is not None:
        figures["qemu_to_marker_s"] = in_log - qemu_started
    if in_log is not None:
        figures["log_to_api_s"] = seen - in_log
    return figures


# -- plain QEMU ---------------------------------------------------------------


def plain_command(accelerator: str, disk: Path, serial: Path) -> list[str]:
    return [
        "qemu-system-x86_64", "-nodefaults", "-no-user-config", "-machine", "pc",
        "-accel", "kvm" if accelerator == "kvm" else "tcg,tb-size=64",
        "-cpu", "host" if accelerator == "kvm" else "max",
        "-smp", "1", "-m", str(FLAVOR["ram"]), "-display", "none",
        "-blockdev", f"driver=file,filename={disk},node-name=root-file",
        "-blockdev", "driver=qcow2,file=root-file,node-name=root",
        "-device", "virtio-blk-pci,drive=root",
        "-serial", f"file:{serial}",
    ]


def driver_command(accelerator: str, work: Path, vnc: bool) -> list[str]:
    """The driver's own command line for this guest (VGA and VNC, QMP,
    -sandbox, the serial socket and its log...), without -daemonize."""
    config = qemu_command.GuestConfig(uuid=str(uuid.uuid4()), name="plain", vcpus=1, memory_mb=FLAVOR["ram"],
                                      paths=qemu_command.InstancePaths(work), accelerator=accelerator, vnc=vnc)
    command = qemu_command.command_line(config)
    return command[:command.index("-daemonize")]


def plain_boot(base: Path, base_format: str, accelerator: str, work: Path, poll: float,
               as_driver: bool = False, vnc: bool = True) -> dict[str, float]:
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    disk, serial = work / "disk.qcow2", work / "console.log"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", base_format, "-b", str(base), str(disk),
                    str(FLAVOR["disk"] << 30)], check=True)
    command = driver_command(accelerator, work, vnc) if as_driver else plain_command(accelerator, disk, serial)
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        qemu_started = None
        tick = start
        while True:
            tick = max(tick + poll, time.perf_counter())
            pause = tick - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            if qemu_started is None:
                qemu_started = proc_start(proc.pid)
            if holds_marker(serial):
                seen = time.perf_counter()
                qemu_cpu = cpu_s(proc.pid)
                break
            if proc.poll() is not None:
                assert proc.stderr is not None
                raise RuntimeError(f"plain QEMU exited with {proc.returncode}: {proc.stderr.read().decode()}")
            if time.perf_counter() - start > BOOT_TIMEOUT:
                raise RuntimeError(f"plain QEMU printed no marker in {BOOT_TIMEOUT:.0f} s")
    finally:
        proc.kill()
        proc.wait()
        assert proc.stderr is not None
        proc.stderr.close()
        shutil.rmtree(work, ignore_errors=True)
    figures = {"total_s": seen - start}
    if qemu_cpu is not None:
        figures["qemu_cpu_s"] = qemu_cpu
    if qemu_started is not None:
        figures["qemu_to_marker_s"] = seen - qemu_started
    return figures


# -- runs -----------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    poll = args.poll_ms / 1000
    env = {"LOOM_COMPUTE__DRIVER": "qemu", "LOOM_COMPUTE__QEMU_ACCELERATOR": args.accelerator,
           "LOOM_IMAGE__DEMO_IMAGE": "true", "LOOM_COMPUTE__QEMU_VNC": "false" if args.no_vnc else "true"}
    if args.guest:
        env["LOOM_COMPUTE__QEMU_FALLBACK_IMAGE"] = str(Path(args.guest).resolve())
    with loom_up(env, timeout=300) as server:
        qemu_dir = server.data_dir / "qemu"
        progress(f"loom up --driver qemu: {server.url} (pid {server.process.pid}), data in {server.data_dir}")
        cloud = Cloud(server.url, server.password)
        api = cloud.api(cloud.admin_token)
        _, body, _ = api.request("POST", COMPUTE + "/flavors", {"flavor": FLAVOR}, ok=(200,))
        flavor = str(body["flavor"]["id"])
        choice = asyncio.run(accel.choose(args.accelerator, binary="qemu-system-x86_64",
                                          cache=qemu_dir / "accelerator.json"))
        progress(f"accelerator: {choice.accelerator} ({choice.reason})")
        loom_pid = server.process.pid
        warm = loom_boot(api, cloud.image, flavor, qemu_dir, "warm-up", poll, loom_pid)
        progress(f"warm-up: Loom {warm['total_s']:.2f} s")
        bases = [p for p in (qemu_dir / "_base").iterdir() if p.suffix != ".json" and not p.name.startswith(".")]
        if len(bases) != 1:
            raise RuntimeError(f"expected one cached base image in {qemu_dir / '_base'}, found {bases}")
        base = bases[0]
        base_format = json.loads(base.with_name(base.name + ".json").read_text())["format"]
        with tempfile.TemporaryDirectory(prefix="loom-plain-") as tmp:
            work = Path(tmp) / "guest"
            warm = plain_boot(base, base_format, choice.accelerator, work, poll)
            progress(f"warm-up: plain {warm['total_s']:.2f} s")
            runs: dict[str, list[dict[str, float]]] = {"loom": [], "plain": [], "driver_command": []}
            order = list(runs)
            for n in range(args.repeat):
                for which in order[n % 3:] + order[:n % 3]:  # each goes first in turn
                    if which == "loom":
                        runs[which].append(loom_boot(api, cloud.image, flavor, qemu_dir, f"bench-{n}", poll,
                                                               loom_pid))
                    else:
                        runs[which].append(plain_boot(base, base_format, choice.accelerator, work, poll,
                                                      as_driver=which == "driver_command", vnc=not args.no_vnc))
                progress(f"round {n + 1}/{args.repeat}: Loom {runs['loom'][-1]['total_s']:.2f} s, "
                         f"plain {runs['plain'][-1]['total_s']:.2f} s, "
                         f"the driver's command line {runs['driver_command'][-1]['total_s']:.2f} s")
        api.close()
    return {"accelerator": choice.accelerator, "accelerator_reason": choice.reason, "base_format": base_format,
            **runs}


def median_of(runs: list[dict[str, float]], key: str) -> float | None:
    values = [r[key] for r in runs if key in r]
    return statistics.median(values) if values else None


def summary(results: dict[str, Any]) -> dict[str, Any]:
    loom, plain = results["loom"], results["plain"]
    out: dict[str, Any] = {f"loom_{k}": median_of(loom, k) for k in
           ("total_s", "post_s", "to_spawn_s", "spawn_to_qemu_s", "qemu_to_marker_s", "log_to_api_s", "loom_cpu_s",
            "qemu_cpu_s")}
    out.update({f"plain_{k}": median_of(plain, k) for k in ("total_s", "qemu_to_marker_s", "qemu_cpu_s")})
    out.update({f"driver_command_{k}": median_of(results["driver_command"], k) for k in ("total_s", "qemu_cpu_s")})
    out["added_s"] = out["loom_total_s"] - out["plain_total_s"]
    out["added_per_round_s"] = statistics.median(a["total_s"] - b["total_s"] for a, b in zip(loom, plain, strict=True))
    out["met"] = out["added_s"] < TARGET_S
    return out


def table(args: argparse.Namespace, results: dict[str, Any]) -> list[str]:
    info, s = machine(), summary(results)

    def ms(value: float | None) -> str:
        return "n/a" if value is None else f"{value * 1000:.0f} ms"

    lines = [f"Loom qemu boot benchmark: POST → LOOM-GUEST-READY on the serial console, against plain "
             f"qemu-system-x86_64; accelerator {results['accelerator']}; 128 MB, 1 vCPU, 1 GB; "
             f"{'no VNC; ' if args.no_vnc else ''}"
             f"median of {args.repeat} interleaved rounds, poll {args.poll_ms:g} ms",
             f"machine: nproc {info['nproc']}, {info['cpu']}, {info['python']}, {info['os']}, "
             f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} at the end",
             f"command: {command_line()}", "",
             "| measurement | median |", "|---|---:|",
             f"| **Loom**: POST → marker read through os-getConsoleOutput | **{ms(s['loom_total_s'])}** |",
             f"| **plain**: command started → marker in its serial file | **{ms(s['plain_total_s'])}** |",
             f"| **Loom - plain** (target < {TARGET_S * 1000:.0f} ms) | **{ms(s['added_s'])}** "
             f"({'met' if s['met'] else 'not met'}) |",
             f"| Loom - plain, median of each round's difference | {ms(s['added_per_round_s'])} |",
             f"| Loom, each step's own median: POST → 202 | {ms(s['loom_post_s'])} |",
             f"| Loom: 202 → spawn call on the compute host (action event) | {ms(s['loom_to_spawn_s'])} |",
             f"| Loom: spawn call → QEMU process started (/proc) | {ms(s['loom_spawn_to_qemu_s'])} |",
             f"| Loom: QEMU started → marker in console.log | {ms(s['loom_qemu_to_marker_s'])} |",
             f"| plain: QEMU started → marker in its serial file | {ms(s['plain_qemu_to_marker_s'])} |",
             f"| Loom: marker in console.log → seen through the API | {ms(s['loom_log_to_api_s'])} |",
             f"| the driver's own command line run by hand ({'' if args.no_vnc else 'VGA, VNC, '}QMP, -sandbox, "
             f"serial socket), "
             f"started → marker | {ms(s['driver_command_total_s'])} |",
             f"| CPU time of QEMU up to the marker: Loom / plain / the driver's command line | "
             f"{ms(s['loom_qemu_cpu_s'])} / {ms(s['plain_qemu_cpu_s'])} / {ms(s['driver_command_qemu_cpu_s'])} |",
             f"| CPU time of the loom up process, POST → marker seen (its polls included) | "
             f"{ms(s['loom_loom_cpu_s'])} |",
             "", "each round (Loom, plain, the driver's command line): " + ", ".join(
                 f"{a['total_s']:.2f}/{b['total_s']:.2f}/{c['total_s']:.2f} s"
                 for a, b, c in zip(results["loom"], results["plain"], results["driver_command"], strict=True))]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="interleaved pairs of boots (default 5)")
    parser.add_argument("--poll-ms", type=float, default=50, help="console poll interval of both (default 50)")
    parser.add_argument("--accelerator", choices=accel.CHOICES, default="auto")
    parser.add_argument("--guest", default="", help="the test guest's qcow2 (default: loom up builds "
                                                    "or finds it; .loom/guest/loom-test-guest.qcow2 if built)")
    parser.add_argument("--no-vnc", action="store_true",
                        help="compute.qemu_vnc = false: no VGA device and no VNC display (both Loom and the "
                             "driver's command line)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not args.guest and (ROOT / ".loom/guest/loom-test-guest.qcow2").is_file():
        args.guest = str(ROOT / ".loom/guest/loom-test-guest.qcow2")
    started = time.perf_counter()
    results = run(args)
    elapsed = time.perf_counter() - started
    if args.json:
        print(json.dumps({"command": command_line(), "machine": machine(), "target_s": TARGET_S,
                          "summary": summary(results), "elapsed_s": elapsed, "results": results}, indent=2))
        return 0
    print("\n".join(table(args, results)))
    print(f"\n(run took {elapsed:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
