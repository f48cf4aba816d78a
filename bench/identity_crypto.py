"""Benchmark of the identity service's cryptography: Fernet tokens and bcrypt.

What is measured:

* **token issue**: ``TokenProvider.issue`` of a project-scoped password
  token (uuid4-hex IDs, one audit id), one call at a time, each timed on
  its own. Reported as p50 and p99, in microseconds.
* **token decode**: ``TokenProvider.decode`` (decrypt, parse, expiry check)
  of such a token, timed the same way. The key repository holds three keys
  (staged, primary, one secondary) and the token was issued with the
  primary, as most tokens are between rotations.
* **bcrypt hash / verify**: ``hash_password`` and ``verify_password`` at
  ``--rounds`` (default 12, Loom's default cost), awaited one at a time on
  Loom's event loop, so the hop to a worker thread is included. Reported as
  p50 in milliseconds; ``verify (no user)`` is the dummy check made for an
  unknown user name, which should cost the same as a real one.

Token figures are the median over ``--repeat`` repeats (after a warm-up of
1,000 operations); ``--json`` adds every repeat's own figures. Run it from
the project's root::

    .venv/bin/python bench/identity_crypto.py
    .venv/bin/python bench/identity_crypto.py --ops 50000 --repeat 7 --bcrypt-ops 10 --json

Progress goes to stderr; the table (or the JSON document) to stdout, ready
to paste into ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

# Runnable as ``python bench/identity_crypto.py`` without installing the project.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import command_line, machine, percentile, progress

from loom import eventloop, timeutils
from loom.identity.keys import KeyRepository
from loom.identity.passwords import hash_password, verify_password
from loom.identity.tokens import TokenPayload, TokenProvider, new_audit_id

WARMUP = 1000







def time_each(operation: Callable[[], object], ops: int) -> dict[str, float]:
    """p50 and p99, in microseconds, of ``ops`` calls timed one by one."""
    clock = time.perf_counter_ns
    durations = []
    for _ in range(ops):
        start = clock()
        operation()
        durations.append(clock() - start)
    durations.sort()
    return {"p50_us": percentile(durations, 50) / 1000, "p99_us": percentile(durations, 99) / 1000}


def bench_tokens(ops: int, repeat: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="loom-bench-keys-") as directory:
        keys = KeyRepository(Path(directory) / "fernet-keys")
        keys.setup()
        keys.rotate()  # staged, primary and one secondary, as a running cloud has
        provider = TokenProvider(keys)
        now = timeutils.utcnow()
        payload = TokenPayload(
            user_id=uuid.uuid4().hex,
            methods=("password",),
            issued_at=now,
            expires_at=now + dt.timedelta(hours=1),
            audit_ids=(new_audit_id(),),
            project_id=uuid.uuid4().hex,
        )
        token = provider.issue(payload)
        rescoped = provider.issue(
            dataclasses.replace(payload, methods=("token",), audit_ids=(new_audit_id(), new_audit_id()))
        )
        unscoped = provider.issue(dataclasses.replace(payload, project_id=None))
        time_each(lambda: provider.decode(provider.issue(payload)), WARMUP)
        repeats = []
        for i in range(repeat):
            progress(f"tokens: repeat {i + 1}/{repeat}")
            issue = time_each(lambda: provider.issue(payload), ops)
            decode = time_each(lambda: provider.decode(token), ops)
            repeats.append(
                {f"issue_{k}": v for k, v in issue.items()} | {f"decode_{k}": v for k, v in decode.items()}
            )
    medians = {name: statistics.median(r[name] for r in repeats) for name in repeats[0]}
    return {
        "ops": ops,
        "token_length": {"unscoped": len(unscoped), "project": len(token), "rescoped project": len(rescoped)},
        **medians,
        "repeats": repeats,
    }


async def bench_bcrypt(rounds: int, ops: int) -> dict[str, float]:
    hashes, verifies, dummies = [], [], []
    hashed = await hash_password("warm-up", rounds)
    for i in range(ops):
        progress(f"bcrypt: op {i + 1}/{ops}")
        start = time.perf_counter()
        hashed = await hash_password(f"correct horse battery staple {i}", rounds)
        hashes.append(time.perf_counter() - start)
        start = time.perf_counter()
        if not await verify_password(f"correct horse battery staple {i}", hashed):
            raise AssertionError("verify_password refused the right password")
        verifies.append(time.perf_counter() - start)
        start = time.perf_counter()
        await verify_password("correct horse battery staple", None, rounds=rounds)
        dummies.append(time.perf_counter() - start)
    return {
        "rounds": rounds,
        "ops": ops,
        "hash_p50_ms": statistics.median(hashes) * 1000,
        "verify_p50_ms": statistics.median(verifies) * 1000,
        "verify_no_user_p50_ms": statistics.median(dummies) * 1000,
    }








def render_table(
    tokens: dict[str, Any], pw: dict[str, float], info: dict[str, Any], command: str, repeat: int
) -> str:
    def row(operation: str, p50: float, p99: float | None = None) -> str:
        return f"| {operation:<27} | {p50:>7.1f} | {'-' if p99 is None else f'{p99:.1f}':>7} |"

    lengths = ", ".join(f"{kind} {length}" for kind, length in tokens["token_length"].items())
    return "\n".join(
        [
            "Loom identity cryptography benchmark",
            f"machine: nproc {info['nproc']}, {info['cpu']}, {info['python']}, {info['os']}, "
            f"{info['libraries']}",
            f"command: {command}",
            "",
            f"| {'operation':<27} | {'p50':>7} | {'p99':>7} |",
            f"|{'-' * 29}|{'-' * 8}:|{'-' * 8}:|",
            row("token issue (µs)", tokens["issue_p50_us"], tokens["issue_p99_us"]),
            row("token decode (µs)", tokens["decode_p50_us"], tokens["decode_p99_us"]),
            row("bcrypt hash (ms)", pw["hash_p50_ms"]),
            row("bcrypt verify (ms)", pw["verify_p50_ms"]),
            row("bcrypt verify, no user (ms)", pw["verify_no_user_p50_ms"]),
            "",
            f"tokens: {tokens['ops']} ops per repeat, median of {repeat} repeats; "
            f"token length in characters: {lengths}",
            f"bcrypt: cost {pw['rounds']}, {pw['ops']} ops each, through the event loop and a worker thread",
        ]
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Benchmark Loom's token encoding and password hashing.")
    parser.add_argument(
        "--ops", type=int, default=20000, help="token operations per repeat (default: %(default)s)"
    )
    parser.add_argument("--repeat", type=int, default=5, help="repeats; the median is reported (default: 5)")
    parser.add_argument("--rounds", type=int, default=12, help="bcrypt cost (default: %(default)s)")
    parser.add_argument("--bcrypt-ops", type=int, default=5, help="bcrypt hashes and verifies (default: 5)")
    parser.add_argument("--json", action="store_true", help="print a JSON document instead of the table")
    args = parser.parse_args(argv)
    for name in ("ops", "repeat", "bcrypt_ops"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if not 4 <= args.rounds <= 31:
        parser.error("--rounds must be between 4 and 31")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = command_line()
    info = machine()
    info["libraries"] = ", ".join(f"{name} {version(name)}" for name in ("cryptography", "bcrypt", "msgpack"))
    tokens = bench_tokens(args.ops, args.repeat)
    pw = eventloop.run(bench_bcrypt(args.rounds, args.bcrypt_ops))
    if args.json:
        doc = {
            "benchmark": "loom.identity tokens and passwords",
            "command": command,
            "machine": info,
            "repeat": args.repeat,
            "units": {"*_us": "microseconds", "*_ms": "milliseconds", "token_length": "characters"},
            "tokens": tokens,
            "bcrypt": pw,
        }
        print(json.dumps(doc, indent=2, ensure_ascii=False))
    else:
        print(render_table(tokens, pw, info, command, args.repeat))
    return 0


if __name__ == "__main__":
    sys.exit(main())
