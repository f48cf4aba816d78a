"""The QMP client against a small QMP server speaking the protocol as QEMU
does (greeting, capability negotiation, commands by id, events). No QEMU."""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from loom.virt.qemu import qmp

GREETING = {"QMP": {"version": {"qemu": {"major": 7, "minor": 2, "micro": 22}, "package": ""},
                    "capabilities": ["oob"]}}


class FakeQemu:
    """A QMP server: ``replies`` maps a command to a function of its
    arguments returning ``(return value or error dict, events to send)``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.received: list[dict[str, Any]] = []
        self.status = "running"
        self.server: asyncio.AbstractServer | None = None
        self.replies: dict[str, Callable[[dict[str, Any]], tuple[Any, list[str]]]] = {
            "query-status": lambda a: ({"status": self.status, "running": self.status == "running"}, []),
            "stop": lambda a: (self._set("paused"), []),
            "cont": lambda a: (self._set("running"), []),
            "send-key": lambda a: ({}, ["RESET"]),
            "device_del": lambda a: ({"error": {"class": "DeviceNotFound", "desc": f"Device '{a['id']}' not found"}},
                                     []),
        }

    def _set(self, status: str) -> dict[str, Any]:
        self.status = status
        return {}

    async def start(self) -> None:
        self.server = await asyncio.start_unix_server(self._serve, path=str(self.path))

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        def send(message: dict[str, Any]) -> None:
            writer.write(json.dumps(message).encode() + b"\r\n")

        send(GREETING)
        try:
            async for message in _messages(reader):
                self.received.append(message)
                command = message["execute"]
                if command == "qmp_capabilities":
                    send({"return": {}, "id": message.get("id")})
                    continue
                if command == "hang":
                    continue  # never answers
                result, events = self.replies[command](message.get("arguments", {}))
                if isinstance(result, dict) and "error" in result:
                    send({"error": result["error"], "id": message.get("id")})
                else:
                    send({"return": result, "id": message.get("id")})
                for event in events:
                    send({"event": event, "data": {"guest": True}, "timestamp": {"seconds": 0, "microseconds": 0}})
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


async def _messages(reader: asyncio.StreamReader) -> AsyncIterator[dict[str, Any]]:
    """JSON objects as they arrive: QMP clients need not end them with a newline."""
    decoder, buffer = json.JSONDecoder(), ""
    while chunk := await reader.read(4096):
        buffer += chunk.decode()
        while buffer.strip():
            try:
                message, end = decoder.raw_decode(buffer.lstrip())
            except json.JSONDecodeError:
                break  # incomplete: wait for more
            buffer = buffer.lstrip()[end:]
            yield message


@pytest.fixture
async def qemu() -> AsyncIterator[FakeQemu]:
    with tempfile.TemporaryDirectory(prefix="qmp-", dir="/tmp") as tmp:
        server = FakeQemu(Path(tmp) / "qmp.sock")
        await server.start()
        yield server
        await server.stop()


async def test_execute_negotiates_and_returns_the_result(qemu: FakeQemu) -> None:
    assert await qmp.execute(qemu.path, "query-status") == {"status": "running", "running": True}
    assert [m["execute"] for m in qemu.received] == ["qmp_capabilities", "query-status"]


async def test_a_session_runs_several_commands(qemu: FakeQemu) -> None:
    async with qmp.connect(qemu.path) as monitor:
        await monitor.execute("stop")
        assert await monitor.status() == "paused"
        await monitor.execute("cont")
        assert await monitor.status() == "running"


async def test_a_refused_command_is_command_failed(qemu: FakeQemu) -> None:
    with pytest.raises(qmp.CommandFailed, match="Device 'nic9' not found") as caught:
        await qmp.execute(qemu.path, "device_del", {"id": "nic9"})
    assert caught.value.details["error_class"] == "DeviceNotFound"


async def test_nothing_listening_is_monitor_unavailable(tmp_path: Path) -> None:
    with pytest.raises(qmp.MonitorUnavailable, match="cannot reach"):
        await qmp.execute(tmp_path / "absent.sock", "query-status")


async def test_a_silent_qemu_times_out_as_unavailable(qemu: FakeQemu) -> None:
    with pytest.raises(qmp.MonitorUnavailable, match="no answer"):
        await qmp.execute(qemu.path, "hang", timeout=0.2)


async def test_events_are_collected_from_when_asked(qemu: FakeQemu) -> None:
    async with qmp.connect(qemu.path) as monitor:
        with monitor.events("RESET") as events:
            await monitor.execute("send-key", qmp.key_sequence("ctrl", "alt", "delete"))
            event = await qmp.wait_event(events, 5)
        assert event is not None and event["event"] == "RESET"
        with monitor.events("SHUTDOWN") as events:
            assert await qmp.wait_event(events, 0.1) is None
    keys = qemu.received[-1]["arguments"]["keys"]
    assert keys == [{"type": "qcode", "data": "ctrl"}, {"type": "qcode", "data": "alt"},
                    {"type": "qcode", "data": "delete"}]
