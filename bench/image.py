"""Benchmark of image upload and download through the Image API.

What is measured, against ``loom up`` running as its own process (SQLite,
memory bus, image store in its data directory), driven over HTTP on
loopback with the standard library's client:

* **upload**: ``PUT /image/v2/images/{id}/file`` of a raw image of
  ``--size-mib`` MiB (default 1024), generated as it is sent (one random
  1 MiB block, repeated) and never held whole, with a Content-Length. The
  server inspects, hashes (md5 and sha512), stages, fsyncs and commits it;
  timed from the first byte sent to the response.
* **download**: ``GET /image/v2/images/{id}/file`` of that image, read in
  1 MiB chunks and discarded.
* **server RSS growth**: the ``loom up`` process's VmRSS (``/proc/<pid>/status``)
  is sampled every 50 ms from a thread; the figure is the peak during the
  transfer minus the value just before it, in MB (10^6 bytes).
* **hashing**: md5 and sha512 of the same bytes in the benchmark's own
  process, one thread each, as the server computes them for an upload: a
  ceiling the upload cannot pass on this machine.
* **baseline**: a plain copy of a file of the same size into the same data
  directory, timed in the same run, with ``shutil.copyfile`` and with
  ``cp``. Each copy is followed by an fsync of the copy, since the server
  fsyncs an upload before committing it; the source was just written, so
  it is read from the page cache, as the download is.

Throughput is in MiB/s; upload and download are also given as a
percentage of the ``shutil.copyfile`` throughput. Figures are medians over
``--repeat`` repeats (default 3). Every file the run creates is in a
temporary directory removed at its end.

    .venv/bin/python bench/image.py
    .venv/bin/python bench/image.py --size-mib 256 --repeat 5 --json
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import command_line, loom_up, machine, progress

MIB = 1 << 20
SAMPLE_INTERVAL = 0.05


class RssSampler:
    """Samples a process's resident set size from a thread."""

    def __init__(self, pid: int, interval: float = SAMPLE_INTERVAL) -> None:
        self.pid = pid
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss(self) -> int:
        """VmRSS in bytes."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError(f"no VmRSS for process {self.pid}")

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self.baseline = self.rss()
        self.peak = self.baseline
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.rss())

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.baseline) / 1e6


def mib_per_s(size: int, seconds: float) -> float:
    return size / MIB / seconds


def blocks(block: bytes, count: int) -> Iterator[bytes]:
    for _ in range(count):
        yield block


def timed(fn: Callable[[], object]) -> float:
    """Seconds ``fn`` takes, starting with no dirty pages waiting to be
    written back (left by the previous step) to slow it down."""
    os.sync()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def hash_both(block: bytes, count: int) -> None:
    """md5 and sha512 of ``count`` blocks, each in a thread, as the server
    hashes an upload."""
    def feed(hasher: Any) -> None:
        for chunk in blocks(block, count):
            hasher.update(chunk)

    threads = [threading.Thread(target=feed, args=(h,)) for h in (hashlib.md5(usedforsecurity=False), hashlib.sha512())]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def copy_with_shutil(source: Path, target: Path) -> None:
    shutil.copyfile(source, target)
    fsync(target)


def copy_with_cp(source: Path, target: Path) -> None:
    subprocess.run(["cp", str(source), str(target)], check=True)
    fsync(target)


def fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ImageApi:
    """The few Image API calls the benchmark makes. Each opens a connection
    of its own: between transfers the copies take longer than the server
    keeps an idle connection."""

    def __init__(self, url: str, password: str) -> None:
        host, port = url.removeprefix("http://").rsplit(":", 1)
        self.conn = http.client.HTTPConnection(host, int(port), timeout=600)
        self.conn.close()
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"id": "default"}, "password": password}}},
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}
        response, _ = self.request("POST", "/identity/v3/auth/tokens?nocatalog", json.dumps(body),
                                   {"Content-Type": "application/json"}, auth=False)
        self.token = str(response.headers["X-Subject-Token"])

    def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None, *,
                auth: bool = True, expect: int | None = None) -> tuple[http.client.HTTPResponse, bytes]:
        all_headers = {**(headers or {}), **({"X-Auth-Token": self.token} if auth else {})}
        self.conn.close()
        self.conn.request(method, path, body=body, headers=all_headers)
        response = self.conn.getresponse()
        data = response.read()
        if response.status >= 400 or (expect is not None and response.status != expect):
            raise RuntimeError(f"{method} {path}: {response.status} {data[:300]!r}")
        return response, data

    def create(self, name: str) -> str:
        body = json.dumps({"name": name, "disk_format": "raw", "container_format": "bare"})
        _, data = self.request("POST", "/image/v2/images", body, {"Content-Type": "application/json"}, expect=201)
        return str(json.loads(data)["id"])

    def upload(self, image_id: str, block: bytes, count: int) -> None:
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(len(block) * count)}
        self.request("PUT", f"/image/v2/images/{image_id}/file", blocks(block, count), headers, expect=204)

    def download(self, image_id: str, size: int) -> None:
        self.conn.close()
        self.conn.request("GET", f"/image/v2/images/{image_id}/file", headers={"X-Auth-Token": self.token})
        response = self.conn.getresponse()
        if response.status != 200:
            raise RuntimeError(f"download: {response.status} {response.read()[:300]!r}")
        buffer = memoryview(bytearray(MIB))
        received = 0
        while n := response.readinto(buffer):
            received += n
        if received != size:
            raise RuntimeError(f"download: {received} bytes, not {size}")

    def show(self, image_id: str) -> dict[str, Any]:
        return dict(json.loads(self.request("GET", f"/image/v2/images/{image_id}")[1]))

    def delete(self, image_id: str) -> None:
        self.request("DELETE", f"/image/v2/images/{image_id}", expect=204)

    def close(self) -> None:
        self.conn.close()


def run(size_mib: int, repeat: int) -> dict[str, Any]:
    size = size_mib * MIB
    block = os.urandom(MIB)
    figures: dict[str, list[float]] = {k: [] for k in (
        "copy_mib_s", "cp_mib_s", "hash_mib_s", "upload_mib_s", "download_mib_s", "upload_rss_mb", "download_rss_mb")}
    with loom_up({"LOOM_IDENTITY__PASSWORD_HASH_ROUNDS": "4"}) as server:
        api = ImageApi(server.url, server.password)
        scratch = server.data_dir / "bench-copy"
        scratch.mkdir()
        source, target = scratch / "source", scratch / "target"
        with source.open("wb") as f:
            for chunk in blocks(block, size_mib):
                f.write(chunk)
        fsync(source)
        sampler = RssSampler(server.process.pid)
        server_rss = sampler.rss() / 1e6
        try:
            copy_with_shutil(source, target)  # a warm-up: the first copy into a fresh file system is slower
            target.unlink()
            for n in range(repeat):
                for key, copy in (("copy_mib_s", copy_with_shutil), ("cp_mib_s", copy_with_cp)):
                    figures[key].append(mib_per_s(size, timed(partial(copy, source, target))))
                    target.unlink()
                figures["hash_mib_s"].append(mib_per_s(size, timed(partial(hash_both, block, size_mib))))

                image_id = api.create(f"bench-{n}")
                with RssSampler(server.process.pid) as rss:
                    seconds = timed(partial(api.upload, image_id, block, size_mib))
                figures["upload_mib_s"].append(mib_per_s(size, seconds))
                figures["upload_rss_mb"].append(rss.growth_mb)
                image = api.show(image_id)
                if image["status"] != "active" or image["size"] != size:
                    raise RuntimeError(f"upload did not complete: {image}")
                with RssSampler(server.process.pid) as rss:
                    seconds = timed(partial(api.download, image_id, size))
                figures["download_mib_s"].append(mib_per_s(size, seconds))
                figures["download_rss_mb"].append(rss.growth_mb)
                api.delete(image_id)
                progress(f"repeat {n + 1}/{repeat}: copy {figures['copy_mib_s'][-1]:.0f} MiB/s, "
                         f"cp {figures['cp_mib_s'][-1]:.0f} MiB/s, hash {figures['hash_mib_s'][-1]:.0f} MiB/s, "
                         f"upload {figures['upload_mib_s'][-1]:.0f} MiB/s "
                         f"(+{figures['upload_rss_mb'][-1]:.1f} MB), download "
                         f"{figures['download_mib_s'][-1]:.0f} MiB/s (+{figures['download_rss_mb'][-1]:.1f} MB)")
        finally:
            api.close()
            shutil.rmtree(scratch, ignore_errors=True)
    return {"server_rss_mb": server_rss, "repeats": figures}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="image and file size in MiB")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.size_mib < 1 or args.repeat < 1:
        parser.error("--size-mib and --repeat must be at least 1")
    result = run(args.size_mib, args.repeat)
    med = {k: statistics.median(v) for k, v in result["repeats"].items()}
    copy = med["copy_mib_s"]
    med["upload_pct_of_copy"] = 100 * med["upload_mib_s"] / copy
    med["download_pct_of_copy"] = 100 * med["download_mib_s"] / copy
    if args.json:
        print(json.dumps({"command": command_line(), "machine": machine(), "size_mib": args.size_mib,
                          "repeat": args.repeat, "server_rss_before_mb": result["server_rss_mb"], "median": med,
                          "repeats": result["repeats"]}, indent=2))
        return 0
    info = machine()
    print(f"Loom image benchmark: {args.size_mib} MiB, median of {args.repeat} repeats")
    print(f"machine: nproc {info['nproc']}, {info['cpu']}, {info['python']}, {info['os']}")
    print(f"command: {command_line()}")
    print(f"server RSS before the transfers: {result['server_rss_mb']:.1f} MB\n")
    print("| operation | MiB/s | % of copy | server RSS growth MB |")
    print("|---|---:|---:|---:|")
    print(f"| copy (shutil.copyfile + fsync) | {copy:.0f} | 100 | |")
    print(f"| copy (cp + fsync) | {med['cp_mib_s']:.0f} | {100 * med['cp_mib_s'] / copy:.0f} | |")
    print(f"| md5 + sha512 of the same bytes, in process | {med['hash_mib_s']:.0f} | "
          f"{100 * med['hash_mib_s'] / copy:.0f} | |")
    print(f"| upload (PUT .../file) | {med['upload_mib_s']:.0f} | {med['upload_pct_of_copy']:.0f} | "
          f"{med['upload_rss_mb']:.1f} |")
    print(f"| download (GET .../file) | {med['download_mib_s']:.0f} | {med['download_pct_of_copy']:.0f} | "
          f"{med['download_rss_mb']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
