"""A whole Loom cloud in a background thread, for tests that drive it
with real clients (the openstack CLI, openstacksdk, keystoneauth)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from loom import eventloop
from loom.cmd.runner import Runner
from loom.config import Settings, load_settings

OPENSTACK = str(Path(sys.executable).with_name("openstack"))


class Cloud:
    def __init__(self, settings: Settings, runner: Runner, loop: asyncio.AbstractEventLoop) -> None:
        self.settings = settings
        self.runner = runner
        self.loop = loop
        assert runner.api_url and runner.credentials
        self.url = runner.api_url
        self.auth_url = self.url + "/identity/v3"
        self.admin_password = runner.credentials.password

    def run(self, coro: Any) -> Any:
        """Run a coroutine on the cloud's event loop and wait for it."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(60)

    def env(self, user: str = "admin", password: str | None = None, project: str | None = "admin",
            **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "LOOM_"))}
        env.update({
            "OS_AUTH_URL": self.auth_url, "OS_USERNAME": user,
            "OS_PASSWORD": password if password is not None else self.admin_password,
            "OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default",
            "OS_IDENTITY_API_VERSION": "3", "OS_REGION_NAME": "RegionOne", "OS_INTERFACE": "public",
        })
        if project:
            env["OS_PROJECT_NAME"] = project
        env.update(extra)
        return env

    def openstack(self, *args: str, env: dict[str, str] | None = None, check: bool = True,
                  parse: bool = True) -> Any:
        """Run the stock CLI; parse ``-f json`` output when asked for it."""
        cmd = [OPENSTACK, *args]
        if parse and args and args[-1] not in ("-f", "json") and "-f" not in args and _has_output(args):
            cmd += ["-f", "json"]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env or self.env(), timeout=120)
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr or proc.stdout}")
        if not check:
            return proc
        if "-f" in cmd and proc.stdout.strip():
            return json.loads(proc.stdout)
        return proc.stdout


def _has_output(args: tuple[str, ...]) -> bool:
    """Commands that print a resource or a list (and so accept -f json)."""
    verbs = {"create", "show", "list", "issue", "set-and-show"}
    return any(a in verbs for a in args[:3])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_cloud(tmp: Path, roles: tuple[str, ...] = ("conductor", "scheduler", "compute", "api"),
                  **overrides: Any) -> Iterator[Cloud]:
    settings = load_settings(environ={}, overrides={
        "data_dir": str(tmp), "bus.url": f"memory://{uuid.uuid4().hex}", "api.port": free_port(),
        "service.host": "test-host", "identity.password_hash_rounds": 4, "console.port": 0,
        # Tests that count images make their own; those that boot ask for it.
        "image.demo_image": False, **overrides,
    })
    runner = Runner(settings, roles=roles, migrate_database=True, bootstrap=True)
    started: Future[asyncio.AbstractEventLoop] = Future()
    stop = threading.Event()

    async def main() -> None:
        try:
            await runner.start()
        except BaseException as exc:
            started.set_exception(exc)
            return
        started.set_result(asyncio.get_running_loop())
        while not stop.is_set():
            await asyncio.sleep(0.05)
        await runner.stop()

    thread = threading.Thread(target=eventloop.run, args=(main(),), daemon=True)
    thread.start()
    loop = started.result(60)
    try:
        yield Cloud(runner.settings, runner, loop)
    finally:
        stop.set()
        thread.join(30)
