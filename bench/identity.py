"""Benchmark of token issue and validation through the Identity API.

What is measured, against ``loom up`` running as its own process (SQLite,
memory bus) and driven over HTTP on loopback by one client at a time:

* **issue**: ``POST /identity/v3/auth/tokens`` with a password, scoped to a
  project, catalog included (what keystoneauth sends). The server hashes
  with bcrypt cost ``--rounds`` (default 4) so the hash does not drown the
  rest; the same bcrypt verify is timed on its own and subtracted, giving
  **issue apart from the hash**.
* **validate (HTTP)**: ``GET /identity/v3/auth/tokens`` with the token as
  both X-Auth-Token and X-Subject-Token: two validations and a response.
* **validate (in process)**: ``IdentityService.validate`` on a database made
  the same way, with a warm cache (a token seen before) and a cold one
  (every identity change drops the cache; the next validation queries the
  database).

Figures are medians over ``--repeat`` repeats of ``--ops`` operations each.

    .venv/bin/python bench/identity.py
    .venv/bin/python bench/identity.py --ops 500 --repeat 5 --json
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import command_line, loom_up, machine, percentile, progress

from loom import eventloop


def auth_body(password: str) -> dict[str, Any]:
    return {"auth": {
        "identity": {"methods": ["password"], "password": {
            "user": {"name": "admin", "domain": {"id": "default"}, "password": password}}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}},
    }}


def timed(fn: Callable[[], object], ops: int) -> list[float]:
    out = []
    for _ in range(ops):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return sorted(out)


def http_figures(ops: int, repeat: int, rounds: int) -> dict[str, list[float]]:
    figures: dict[str, list[float]] = {"issue": [], "validate_http": []}
    with loom_up({"LOOM_IDENTITY__PASSWORD_HASH_ROUNDS": str(rounds)}) as server:
        # The standard library's client adds the least of its own time.
        conn = http.client.HTTPConnection("127.0.0.1", int(server.url.rsplit(":", 1)[1]))
        body = json.dumps(auth_body(server.password))

        def request(method: str, path: str, headers: dict[str, str], data: str | None = None) -> Any:
            conn.request(method, "/identity/v3" + path, body=data, headers=headers)
            response = conn.getresponse()
            response.read()
            if response.status >= 400:
                raise RuntimeError(f"{method} {path}: {response.status}")
            return response

        def issue() -> str:
            response = request("POST", "/auth/tokens", {"Content-Type": "application/json"}, body)
            return str(response.headers["X-Subject-Token"])

        token = issue()

        def validate() -> None:
            request("GET", "/auth/tokens", {"X-Auth-Token": token, "X-Subject-Token": token})

        timed(issue, 20)
        timed(validate, 50)
        for n in range(repeat):
            figures["issue"].append(percentile(timed(issue, ops), 50))
            figures["validate_http"].append(percentile(timed(validate, ops), 50))
            progress(f"http repeat {n + 1}/{repeat}: issue {figures['issue'][-1]:.2f} ms, "
                     f"validate {figures['validate_http'][-1]:.2f} ms")
    return figures


async def in_process(ops: int, repeat: int, rounds: int) -> dict[str, list[float]]:
    from loom.config import load_settings
    from loom.db import migrate
    from loom.db.engine import Database
    from loom.identity.bootstrap import bootstrap
    from loom.identity.passwords import hash_password, verify_password
    from loom.identity.service import IdentityService

    figures: dict[str, list[float]] = {"hash_verify": [], "validate_warm": [], "validate_cold": []}
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(environ={}, overrides={
            "data_dir": tmp, "identity.password_hash_rounds": rounds})
        db = Database(settings.database_url)
        await migrate.upgrade(db)
        creds = await bootstrap(settings, db)
        identity = IdentityService(settings, db)
        token, _ = await identity.issue(auth_body(creds.password)["auth"])
        hashed = await hash_password("x" * 16, rounds)

        async def each(fn: Callable[[], Any], count: int) -> list[float]:
            out = []
            for _ in range(count):
                start = time.perf_counter()
                await fn()
                out.append((time.perf_counter() - start) * 1000)
            return sorted(out)

        async def cold() -> None:
            identity._drop_cache()
            await identity.validate(token)

        for n in range(repeat):
            figures["hash_verify"].append(percentile(await each(lambda: verify_password("x" * 16, hashed,
                                                                                          rounds=rounds), ops), 50))
            figures["validate_warm"].append(percentile(await each(lambda: identity.validate(token), ops), 50))
            figures["validate_cold"].append(percentile(await each(cold, ops), 50))
            progress(f"in-process repeat {n + 1}/{repeat}: verify {figures['hash_verify'][-1]:.2f} ms, "
                     f"warm {figures['validate_warm'][-1] * 1000:.0f} µs, cold {figures['validate_cold'][-1]:.2f} ms")
        await db.close()
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=4, help="bcrypt cost the server uses")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    figures = http_figures(args.ops, args.repeat, args.rounds)
    figures.update(eventloop.run(in_process(args.ops, args.repeat, args.rounds)))
    med = {k: statistics.median(v) for k, v in figures.items()}
    med["issue_without_hash"] = med["issue"] - med["hash_verify"]
    if args.json:
        print(json.dumps({"command": command_line(), "machine": machine(), "median_ms": med, "repeats": figures},
                         indent=2))
        return 0
    info = machine()
    rows = [
        (f"token issue over HTTP (bcrypt cost {args.rounds})", med["issue"]),
        ("bcrypt verify at that cost", med["hash_verify"]),
        ("token issue apart from the hash", med["issue_without_hash"]),
        ("validate over HTTP (GET /v3/auth/tokens)", med["validate_http"]),
        ("validate in process, warm", med["validate_warm"]),
        ("validate in process, cold", med["validate_cold"]),
    ]
    print(f"Loom identity benchmark: p50, median of {args.repeat} repeats of {args.ops} operations")
    print(f"machine: nproc {info['nproc']}, {info['cpu']}, {info['python']}, {info['os']}")
    print(f"command: {command_line()}\n")
    print("| operation | p50 ms |")
    print("|---|---:|")
    for name, value in rows:
        print(f"| {name} | {value:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
