"""Benchmark of the boot path (api → conductor → scheduler and placement →
compute → fake driver) and of server listing, over the Compute API.

What is measured, against ``loom up`` running as its own process in the
embedded mode (SQLite, memory bus, fake driver, ``--fake-hosts`` through
``LOOM_COMPUTE__FAKE_HOSTS``), driven over HTTP on loopback with the
standard library's client (``http.client``, one keep-alive connection per
client thread), every request at microversion 2.79, m1.tiny and the public
``demo`` image, ``"networks": "none"``:

* **single boot** (first of ``--hosts``): one client boots one server
  (``POST /servers``), then polls ``GET /servers/{id}`` every ``--poll-ms``
  (5 ms) until ACTIVE; the time from the POST being sent to the first
  ACTIVE answer is the **time to ACTIVE** (the POST's own response time is
  shown too). The server is then deleted (``DELETE``, then polled until
  404). ``--boots`` (30) boots per repeat; the median and p95 of each
  repeat are taken, and the table shows the median over repeats.
* **concurrent boots** (each of ``--hosts``, default 10 and 100): ``--clients``
  (10) threads, each in its own project with its own member user, start
  together; each sends its share of ``--servers`` (100) as one POST per
  server, back to back. One watcher thread (admin token) lists the servers
  still building (``GET /servers?all_tenants=1&status=BUILD``) every
  ``--watch-ms`` (50 ms) and notes when each server leaves that list (all
  are checked to be ACTIVE at the end). **Wall time** runs from the first
  POST to the last server seen ACTIVE; servers/s is ``--servers`` / wall
  time (ten clients polling their own ``/servers/detail`` every 20 ms
  took a good part of the server's time themselves). Each server's own POST → ACTIVE under that load
  is shown too (p50/p95, to within the watcher's interval). A warm-up run
  of one server per client comes first.
* **delete all** (after each concurrent run): the same clients delete their
  servers (one DELETE each, back to back), and the watcher lists every
  server left until they are gone; wall time from the first DELETE to the
  last server gone.
* **listing** (on the largest of ``--hosts``): ``GET /servers/detail?all_tenants=1``
  as the admin (project scoped, so it sees every project's servers; the
  admin view has the extended attributes too), median of
  ``--list-requests`` (10) requests, with 1,000 servers existing, which is
  the API's page size, so one page holds them all; then with 10,000
  servers existing (the first page of 1,000; skip with ``--skip-10k``).
  The summary list (``GET /servers?all_tenants=1``) and one project's own
  ``/servers/detail`` (10 servers, as its member) are shown beside it. The
  servers are made with multi-create (``max_count`` 10, one POST per
  project, 10 threads; that setup is timed and shown too), within Nova's
  default quotas (10 instances, 20 cores, 51,200 MB RAM per project, which
  the benchmark keeps rather than raising ``LOOM_QUOTA__*``): 100 projects
  for 1,000 servers and 1,000 for 10,000. After
  each listing every server is deleted (admin token, 10 threads, one
  DELETE each) and that is timed: first DELETE to none listed.

Projects, users and tokens are made over the Identity API with bcrypt cost
4 (``LOOM_IDENTITY__PASSWORD_HASH_ROUNDS``) so that setting up 1,000
tenants is quick; no timed figure includes it. The listing's hosts get
room for twice their even share of the servers (``LOOM_COMPUTE__FAKE_MEMORY_MB``,
``_DISK_GB``, ``_VCPUS``): the fake driver refuses a spawn beyond a host's
physical memory (32,768 MB by default, 64 m1.tiny, where placement, with
its 1.5 ratio, allows 96) and racing requests do not fill hosts evenly.
The concurrent boots on that many hosts run in the same process, so with
those sizes too (a host's size changes no step of a boot); the other runs
use the default sizes. Every
figure is measured ``--repeat`` (3) times against the same ``loom up``
process and the table shows the median of the repeats.

    .venv/bin/python bench/boot.py --repeat 1                 # quick look
    .venv/bin/python bench/boot.py                            # 10 and 100 hosts, 3 repeats, 1k and 10k listing
    .venv/bin/python bench/boot.py --hosts 10 --skip-10k --json

With ``--distributed`` the same workload runs against a deployment that
``scripts/deploy-local.sh`` starts for each host count (bench/deploy.py:
PostgreSQL and a RabbitMQ virtual host of its own, the API with
``--api-workers`` (2) workers, a conductor, ``--schedulers`` (2)
schedulers and one ``loom compute`` process per fake host, without the
database) and stops afterwards; the fake room settings and bcrypt cost
reach every process through the environment. After the concurrent boots
and the listing, the VmRSS of each compute process is read from
``/proc/<pid>/status`` (the table shows the median and the largest). Its
targets: POST → ACTIVE < 150 ms, ≥ 30 servers/s on 10 hosts, a fake
compute process < 60 MB.

    .venv/bin/python bench/boot.py --distributed --hosts 10 --skip-10k
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import deploy
from cloud_client import Api, ApiError, Cloud, Tenant
from common import command_line, loom_up, machine, percentile, progress

COMPUTE = "/compute/v2.1"
MICROVERSION = "compute 2.79"
FLAVOR = "1"  # m1.tiny: 1 vCPU, 512 MB, 1 GB
FLAVOR_MB = 512
PER_PROJECT = 10  # Nova's default instance quota
ROUNDS = 4
TARGETS = {"active_ms": 50.0, "servers_per_s": 100.0, "detail_1k_ms": 300.0}
DISTRIBUTED_TARGETS = {"active_ms": 150.0, "servers_per_s": 30.0, "detail_1k_ms": 300.0, "compute_rss_mb": 60.0}
NOVA = {"active_ms": 650.0, "servers_per_s": 2.4}


# -- compute ----------------------------------------------------------------


def boot_body(cloud: Cloud, name: str, count: int = 1) -> dict[str, Any]:
    server: dict[str, Any] = {"name": name, "imageRef": cloud.image, "flavorRef": FLAVOR, "networks": "none"}
    if count > 1:
        server.update(min_count=count, max_count=count)
    return {"server": server}


def post_server(api: Api, cloud: Cloud, name: str, count: int = 1) -> str:
    _, body, _ = api.request("POST", COMPUTE + "/servers", boot_body(cloud, name, count), ok=(202,))
    return str(body["server"]["id"])


def sleep_until(deadline: float) -> None:
    pause = deadline - time.perf_counter()
    if pause > 0:
        time.sleep(pause)


def single_boots(cloud: Cloud, boots: int, poll: float) -> dict[str, list[float]]:
    """Boot, wait for ACTIVE, delete, wait for 404: ``boots`` times, one by one."""
    (tenant,) = cloud.ensure_tenants(1)
    api = cloud.api(tenant.token)
    out: dict[str, list[float]] = {"post_ms": [], "active_ms": [], "delete_ms": []}
    try:
        for n in range(boots):
            start = time.perf_counter()
            server_id = post_server(api, cloud, f"single-{n}")
            posted = time.perf_counter()
            tick = start
            while True:
                tick = max(tick + poll, time.perf_counter())  # every poll ms; at once if late
                sleep_until(tick)
                _, body, _ = api.request("GET", f"{COMPUTE}/servers/{server_id}")
                status = body["server"]["status"]
                if status == "ACTIVE":
                    break
                if status == "ERROR":
                    raise ApiError(f"server {server_id} went to ERROR: {body['server'].get('fault')}")
                if time.perf_counter() - start > 60:
                    raise ApiError(f"server {server_id} still {status} after 60 s")
            active = time.perf_counter()
            api.request("DELETE", f"{COMPUTE}/servers/{server_id}", ok=(204,))
            while api.request("GET", f"{COMPUTE}/servers/{server_id}", ok=(200, 404))[0] != 404:
                time.sleep(poll)
            gone = time.perf_counter()
            out["post_ms"].append((posted - start) * 1000)
            out["active_ms"].append((active - start) * 1000)
            out["delete_ms"].append((gone - active) * 1000)
    finally:
        api.close()
    return out


class Watcher:
    """A thread listing (admin token) the servers still building, or left,
    every ``interval``; it notes when each one it was told of has gone."""

    def __init__(self, cloud: Cloud, query: str, interval: float) -> None:
        self.api = cloud.api(cloud.admin_token)
        self.query, self.interval = query, interval
        self.pending: set[str] = set()
        self.added: dict[str, float] = {}
        self.left: dict[str, float] = {}
        self.expected = 0
        self.polls = 0
        self.lock = threading.Lock()
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self, expected: int) -> None:
        self.expected = expected
        self.api.request("GET", COMPUTE + "/servers?all_tenants=1&limit=1")  # connect before the clock starts
        self.thread.start()

    def add(self, server_id: str) -> None:
        with self.lock:
            self.pending.add(server_id)
            self.added[server_id] = time.perf_counter()

    def _run(self) -> None:
        try:
            deadline = time.perf_counter() + 600
            while True:
                tick = time.perf_counter()
                ids: set[str] = set()
                marker = None
                while True:  # every page
                    path = f"{COMPUTE}/servers?all_tenants=1&limit=1000{self.query}"
                    _, body, _ = self.api.request("GET", path + (f"&marker={marker}" if marker else ""))
                    ids |= {s["id"] for s in body["servers"]}
                    if not body.get("servers_links"):
                        break
                    marker = body["servers"][-1]["id"]
                now = time.perf_counter()
                self.polls += 1
                with self.lock:
                    # One handed over after this listing was sent: the next judges it.
                    gone = {s for s in self.pending - ids if self.added[s] < tick}
                    for server_id in gone:
                        self.left[server_id] = now
                    self.pending -= gone
                    if len(self.left) >= self.expected:
                        return
                if now > deadline:
                    raise ApiError(f"{len(self.pending)} servers still listed after 600 s")
                sleep_until(tick + self.interval)
        except BaseException as exc:
            self.failure = exc

    def join(self) -> dict[str, float]:
        self.thread.join()
        self.api.close()
        if self.failure is not None:
            raise self.failure
        return self.left


def concurrent_boots(cloud: Cloud, clients: int, servers: int, watch: float) -> dict[str, float]:
    """``clients`` threads, each in its own project, boot ``servers`` in all,
    then delete them all; wall times of both."""
    tenants = cloud.ensure_tenants(clients)
    shares = [servers // clients + (1 if i < servers % clients else 0) for i in range(clients)]
    if max(shares) > PER_PROJECT:
        raise SystemExit(f"{servers} servers over {clients} clients exceeds the quota of {PER_PROJECT} a project")
    apis = [cloud.api(t.token) for t in tenants]
    for api in apis:  # open the connections before the clock starts
        api.request("GET", f"{COMPUTE}/servers")
    started: dict[str, float] = {}
    mine: list[list[str]] = [[] for _ in range(clients)]

    def run_all(fn: Callable[[int], None], watcher: Watcher) -> float:
        t0: list[float] = []
        barrier = threading.Barrier(clients, action=lambda: t0.append(time.perf_counter()))

        def each(i: int) -> None:
            barrier.wait()
            fn(i)

        watcher.start(servers)
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(each, range(clients)))
        watcher.join()
        return t0[0]

    def boot(i: int) -> None:
        for n in range(shares[i]):
            t = time.perf_counter()
            server_id = post_server(apis[i], cloud, f"c{i}-{n}")
            started[server_id] = t
            booting.add(server_id)
            mine[i].append(server_id)

    def delete(i: int) -> None:
        for server_id in mine[i]:
            apis[i].request("DELETE", f"{COMPUTE}/servers/{server_id}", ok=(204,))
            deleting.add(server_id)

    try:
        booting = Watcher(cloud, "&status=BUILD", watch)
        first = run_all(boot, booting)
        active = booting.left
        boot_wall = max(active.values()) - first
        per_server = sorted((active[k] - started[k]) * 1000 for k in started)
        admin = cloud.api(cloud.admin_token)
        _, body, _ = admin.request("GET", f"{COMPUTE}/servers/detail?all_tenants=1")
        wrong = [f"{s['id']} {s['status']}: {(s.get('fault') or {}).get('message')}"
                 for s in body["servers"] if s["id"] in started and s["status"] != "ACTIVE"]
        admin.close()
        if wrong:
            raise ApiError(f"{len(wrong)} servers did not become ACTIVE: {wrong[:3]}")
        deleting = Watcher(cloud, "", watch)
        first = run_all(delete, deleting)
        delete_wall = max(deleting.left.values()) - first
    finally:
        for api in apis:
            api.close()
    return {"boot_wall_s": boot_wall, "servers_per_s": servers / boot_wall,
            "server_active_p50_ms": percentile(per_server, 50), "server_active_p95_ms": percentile(per_server, 95),
            "delete_wall_s": delete_wall, "deletes_per_s": servers / delete_wall,
            "watch_polls": booting.polls + deleting.polls}


# -- listing ----------------------------------------------------------------


def admin_count(api: Api, status: str | None = None) -> int:
    """How many servers exist (of one status), paging through all of them."""
    count, marker = 0, None
    while True:
        path = f"{COMPUTE}/servers?all_tenants=1&limit=1000"
        if status:
            path += f"&status={status}"
        if marker:
            path += f"&marker={marker}"
        _, body, _ = api.request("GET", path)
        count += len(body["servers"])
        if not body.get("servers_links"):
            return count
        marker = body["servers"][-1]["id"]


def populate(cloud: Cloud, total: int, workers: int = 10) -> float:
    """Bring the number of servers to ``total`` (10 per project, one
    multi-create POST each) and wait for all to be ACTIVE; seconds taken."""
    admin = cloud.api(cloud.admin_token)
    have = admin_count(admin)
    need = total - have
    if need <= 0:
        return 0.0
    if need % PER_PROJECT or have % PER_PROJECT:
        raise SystemExit("listing sizes must be multiples of 10")
    tenants = cloud.ensure_tenants(total // PER_PROJECT)[have // PER_PROJECT:]
    progress(f"  booting {need} servers in {len(tenants)} projects (multi-create, {PER_PROJECT} a request)")
    start = time.perf_counter()
    local = threading.local()

    def boot(tenant: Tenant) -> None:
        api = getattr(local, "api", None)
        if api is None:
            api = local.api = cloud.api()
        api.token = tenant.token
        post_server(api, cloud, "listed", PER_PROJECT)

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(boot, tenants))
    last = 0.0
    while True:
        building = admin_count(admin, "BUILD")
        errors = admin_count(admin, "ERROR")
        if errors:
            _, body, _ = admin.request("GET", f"{COMPUTE}/servers/detail?all_tenants=1&status=ERROR&limit=3")
            faults = "; ".join(f"{s['id']}: {(s.get('fault') or {}).get('message')}" for s in body["servers"])
            raise ApiError(f"{errors} servers went to ERROR while populating: {faults}")
        if not building:
            break
        if time.perf_counter() - last > 10:
            progress(f"  ... {building} still building")
            last = time.perf_counter()
        time.sleep(0.5)
    took = time.perf_counter() - start
    progress(f"  ... {total} servers ACTIVE; {need} booted in {took:.1f} s ({need / took:.0f}/s)")
    admin.close()
    return took


def time_requests(api: Api, path: str, count: int, expect: int | None = None) -> list[float]:
    out = []
    for _ in range(count):
        start = time.perf_counter()
        _, body, _ = api.request("GET", path)
        out.append((time.perf_counter() - start) * 1000)
        if expect is not None and len(body["servers"]) != expect:
            raise ApiError(f"{path}: {len(body['servers'])} servers, expected {expect}")
    return sorted(out)


def listing(cloud: Cloud, total: int, requests: int, repeat: int) -> dict[str, Any]:
    setup_s = populate(cloud, total)
    admin = cloud.api(cloud.admin_token)
    member = cloud.api(cloud.tenants[0].token)
    page = min(total, 1000)
    time_requests(admin, f"{COMPUTE}/servers/detail?all_tenants=1", 2, page)  # warm up
    figures: dict[str, list[float]] = {"detail_all_ms": [], "list_all_ms": [], "detail_project_ms": []}
    for n in range(repeat):
        figures["detail_all_ms"].append(percentile(
            time_requests(admin, f"{COMPUTE}/servers/detail?all_tenants=1", requests, page), 50))
        figures["list_all_ms"].append(percentile(
            time_requests(admin, f"{COMPUTE}/servers?all_tenants=1", requests, page), 50))
        figures["detail_project_ms"].append(percentile(
            time_requests(member, f"{COMPUTE}/servers/detail", requests, PER_PROJECT), 50))
        progress(f"  {total} servers, repeat {n + 1}/{repeat}: detail (admin, all_tenants) "
                 f"{figures['detail_all_ms'][-1]:.1f} ms, list {figures['list_all_ms'][-1]:.1f} ms, "
                 f"detail (one project's 10) {figures['detail_project_ms'][-1]:.1f} ms")
    admin.close()
    member.close()
    return {**figures, "setup_s": setup_s, "page": page}


def delete_everything(cloud: Cloud, workers: int = 10) -> tuple[int, float]:
    """Delete every server as the admin with ``workers`` threads and wait
    until none is left: (how many, seconds)."""
    admin = cloud.api(cloud.admin_token)
    ids: list[str] = []
    marker = None
    while True:
        path = f"{COMPUTE}/servers?all_tenants=1&limit=1000" + (f"&marker={marker}" if marker else "")
        _, body, _ = admin.request("GET", path)
        ids += [s["id"] for s in body["servers"]]
        if not body.get("servers_links"):
            break
        marker = body["servers"][-1]["id"]
    local = threading.local()

    def delete(server_id: str) -> None:
        api = getattr(local, "api", None)
        if api is None:
            api = local.api = cloud.api(cloud.admin_token)
        api.request("DELETE", f"{COMPUTE}/servers/{server_id}", ok=(204,))

    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(delete, ids))
    while admin_count(admin):
        time.sleep(0.1)
    took = time.perf_counter() - start
    admin.close()
    return len(ids), took


# -- runs -------------------------------------------------------------------


@contextmanager
def cloud_with(hosts: int, room: dict[str, int], args: argparse.Namespace) -> Iterator[Cloud]:
    env = {"LOOM_COMPUTE__FAKE_HOSTS": str(hosts), "LOOM_IDENTITY__PASSWORD_HASH_ROUNDS": str(ROUNDS)}
    env.update({f"LOOM_COMPUTE__FAKE_{name}": str(value) for name, value in room.items()})
    if args.distributed:
        del env["LOOM_COMPUTE__FAKE_HOSTS"]  # one process per host instead
        with deploy.distributed_cloud(hosts, env, args.api_workers, args.schedulers) as cloud:
            yield cloud
        return
    with loom_up(env, timeout=120) as server:
        cloud = Cloud(server.url, server.password)
        each = ", ".join(f"{v} {k}" for k, v in room.items())
        progress(f"loom up with {hosts} fake hosts{f' ({each} each)' if each else ''}: "
                 f"{server.url} (pid {server.process.pid})")
        yield cloud


def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"single": {}, "concurrent": {}, "listing": {}, "delete": {}}
    poll = args.poll_ms / 1000
    largest = max(args.hosts)
    for hosts in args.hosts:
        room: dict[str, int] = {}
        if hosts == largest:
            # Room on every host for twice its even share of the listing's
            # servers: the fake driver refuses a spawn beyond the host's
            # physical memory and disk (no overcommit), and the hosts do not
            # fill evenly when requests race.
            share = 2 * math.ceil((1000 if args.skip_10k else 10000) / hosts)
            room = {"MEMORY_MB": max(32768, share * FLAVOR_MB), "DISK_GB": max(1000, share),
                    "VCPUS": max(16, math.ceil(share / 16))}
        with cloud_with(hosts, room, args) as cloud:
            if hosts == args.hosts[0]:
                single: dict[str, list[float]] = {}
                single_boots(cloud, 3, poll)  # warm up
                for n in range(args.repeat):
                    raw = single_boots(cloud, args.boots, poll)
                    for key, values in raw.items():
                        values.sort()
                        single.setdefault(key + "_p50", []).append(percentile(values, 50))
                        single.setdefault(key + "_p95", []).append(percentile(values, 95))
                    progress(f"single boot on {hosts} hosts, repeat {n + 1}/{args.repeat}: POST→ACTIVE p50 "
                             f"{single['active_ms_p50'][-1]:.1f} ms, p95 {single['active_ms_p95'][-1]:.1f} ms")
                results["single"] = {"hosts": hosts, **single}
            conc: dict[str, list[float]] = {}
            concurrent_boots(cloud, args.clients, args.clients, args.watch_ms / 1000)  # warm up: one server a client
            for n in range(args.repeat):
                figures = concurrent_boots(cloud, args.clients, args.servers, args.watch_ms / 1000)
                for key, value in figures.items():
                    conc.setdefault(key, []).append(value)
                progress(f"{args.servers} servers by {args.clients} clients on {hosts} hosts, repeat "
                         f"{n + 1}/{args.repeat}: {figures['boot_wall_s']:.2f} s, "
                         f"{figures['servers_per_s']:.1f} servers/s; deleted in {figures['delete_wall_s']:.2f} s")
            results["concurrent"][str(hosts)] = conc
            if args.distributed and hosts != largest:
                results.setdefault("compute_rss_mb", {})[str(hosts)] = deploy.compute_rss(cloud)
            if hosts == largest:
                sizes = [1000] if args.skip_10k else [1000, 10000]
                for size in sizes:
                    progress(f"listing with {size} servers on {hosts} hosts")
                    results["listing"][str(size)] = {"hosts": hosts, **listing(
                        cloud, size, args.list_requests, args.repeat)}
                    count, took = delete_everything(cloud)
                    results["delete"][str(size)] = {"servers": count, "wall_s": took, "per_s": count / took}
                    progress(f"  deleted {count} servers in {took:.1f} s ({count / took:.0f}/s)")
                if args.distributed:
                    results.setdefault("compute_rss_mb", {})[str(hosts)] = deploy.compute_rss(cloud)
    return results


def med(values: list[float]) -> float:
    return statistics.median(values)


def table(args: argparse.Namespace, results: dict[str, Any]) -> list[str]:
    info = machine()
    targets = DISTRIBUTED_TARGETS if args.distributed else TARGETS
    what = (f"scripts/deploy-local.sh (PostgreSQL, RabbitMQ, {args.api_workers} API workers, conductor, "
            f"{args.schedulers} schedulers, a fake compute process per host)" if args.distributed
            else "loom up (SQLite, memory bus, fake driver)")
    lines = [f"Loom boot benchmark: {what}, m1.tiny, microversion 2.79; median of {args.repeat} repeats",
             f"machine: nproc {info['nproc']}, {info['cpu']}, {info['python']}, {info['os']}; "
             f"load average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
             f"command: {command_line()}", "",
             "| measurement | Loom | target | Nova (reference) |", "|---|---:|---:|---:|"]
    single = results["single"]
    if single:
        h = single["hosts"]
        lines += [
            f"| POST → ACTIVE, one at a time, p50 ({h} hosts, {args.boots} boots, poll {args.poll_ms:g} ms) | "
            f"{med(single['active_ms_p50']):.1f} ms | < {targets['active_ms']:.0f} ms | "
            f"{NOVA['active_ms'] / 1000:.2f} s |",
            f"| POST → ACTIVE, one at a time, p95 | {med(single['active_ms_p95']):.1f} ms | | |",
            f"| POST /servers response, p50 | {med(single['post_ms_p50']):.1f} ms | | |",
            f"| DELETE → 404, one at a time, p50 | {med(single['delete_ms_p50']):.1f} ms | | |",
        ]
    for hosts, conc in results["concurrent"].items():
        lines += [
            f"| {args.servers} servers by {args.clients} clients, {hosts} hosts: first POST → all ACTIVE | "
            f"{med(conc['boot_wall_s']):.2f} s | | |",
            f"| ... servers/s ({hosts} hosts) | {med(conc['servers_per_s']):.1f} | ≥ {targets['servers_per_s']:.0f} | "
            f"{NOVA['servers_per_s']} |",
            f"| ... each server's POST → ACTIVE under that load, p50 / p95 ({hosts} hosts) | "
            f"{med(conc['server_active_p50_ms']):.0f} / {med(conc['server_active_p95_ms']):.0f} ms | | |",
            f"| delete those {args.servers} ({args.clients} clients, {hosts} hosts): first DELETE → all gone | "
            f"{med(conc['delete_wall_s']):.2f} s ({med(conc['deletes_per_s']):.0f}/s) | | |",
        ]
    for size, figures in results["listing"].items():
        n = int(size)
        target = f" < {targets['detail_1k_ms']:.0f} ms " if n == 1000 else " "
        what = "all 1,000" if n == 1000 else f"first page of 1,000 of {n:,}"
        if figures["setup_s"]:
            lines.append(f"| setup: boot {n:,} by multi-create ({n // PER_PROJECT:,} POSTs of {PER_PROJECT}, "
                         f"10 threads, {figures['hosts']} hosts): first POST → all ACTIVE | {figures['setup_s']:.1f} s "
                         f"({n / figures['setup_s']:.0f}/s) | | |")
        lines += [
            f"| GET /servers/detail?all_tenants=1 (admin), {n:,} servers exist: {what} | "
            f"{med(figures['detail_all_ms']):.1f} ms |{target}| |",
            f"| GET /servers?all_tenants=1 (admin), {n:,} servers exist | {med(figures['list_all_ms']):.1f} ms | | |",
            f"| GET /servers/detail (one project's 10), {n:,} servers exist | "
            f"{med(figures['detail_project_ms']):.1f} ms | | |",
        ]
        if size in results["delete"]:
            d = results["delete"][size]
            lines.append(f"| delete all {d['servers']:,} (10 threads, admin): first DELETE → none listed | "
                         f"{d['wall_s']:.1f} s ({d['per_s']:.0f}/s) | | |")
    if args.skip_10k:
        lines.append("| listing with 10,000 servers | skipped (--skip-10k) | | |")
    for hosts, rss in results.get("compute_rss_mb", {}).items():
        target = DISTRIBUTED_TARGETS["compute_rss_mb"]
        lines.append(f"| VmRSS of a fake compute process after the workload ({hosts} hosts), median / largest | "
                     f"{rss['median']:.1f} / {rss['max']:.1f} MB | < {target:.0f} MB | |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=lambda s: [int(x) for x in s.split(",")], default=[10, 100],
                        help="comma-separated fake host counts (default 10,100); single boots on the first, "
                             "listing on the largest")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--boots", type=int, default=30, help="single boots per repeat")
    parser.add_argument("--servers", type=int, default=100, help="servers booted concurrently")
    parser.add_argument("--clients", type=int, default=10, help="concurrent clients, one project each")
    parser.add_argument("--poll-ms", type=float, default=5, help="poll interval of a single boot")
    parser.add_argument("--watch-ms", type=float, default=50,
                        help="poll interval of the one watcher of the concurrent boots and deletes")
    parser.add_argument("--list-requests", type=int, default=10)
    parser.add_argument("--skip-10k", action="store_true", help="list with 1,000 servers only")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--distributed", action="store_true",
                        help="against scripts/deploy-local.sh (PostgreSQL, RabbitMQ, a process per service)")
    parser.add_argument("--api-workers", type=int, default=2, help="API workers with --distributed")
    parser.add_argument("--schedulers", type=int, default=2, help="schedulers with --distributed")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    results = run(args)
    elapsed = time.perf_counter() - started
    if args.json:
        print(json.dumps({"command": command_line(), "machine": machine(), "load": os.getloadavg(),
                          "targets": DISTRIBUTED_TARGETS if args.distributed else TARGETS, "nova": NOVA,
                          "elapsed_s": elapsed, "results": results}, indent=2))
        return 0
    print("\n".join(table(args, results)))
    print(f"\n(run took {elapsed:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
