"""A fake guest's consoles: unix sockets the console proxy can bridge to."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path

RFB_GREETING = b"RFB 003.008\n"


class FakeConsoles:
    """The fake's console sockets (see the module doc)."""

    def __init__(self, console_lines: Callable[[str], list[str] | None]) -> None:
        # The guest's console lines, or None when its console is unavailable.
        self._lines = console_lines
        self._directory: Path | None = None
        self._servers: dict[tuple[str, str], asyncio.AbstractServer] = {}

    async def socket_for(self, uuid: str, protocol: str) -> str:
        """The path of the guest's ``protocol`` socket, served from now on."""
        if self._directory is None:
            self._directory = Path(tempfile.mkdtemp(prefix="loom-fake-console-"))
        path = self._directory / f"{uuid}.{protocol}"
        if (uuid, protocol) not in self._servers:
            serve = self._serve_serial if protocol == "serial" else self._serve_vnc
            self._servers[uuid, protocol] = await asyncio.start_unix_server(
                lambda r, w: serve(uuid, r, w), path=str(path))
        return str(path)

    async def close(self) -> None:
        for server in self._servers.values():
            server.close()
        self._servers.clear()
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None

    async def _serve_serial(self, uuid: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async with _closing(writer):
            lines = self._lines(uuid)
            if lines is None:
                return
            writer.write("".join(f"{line}\r\n" for line in lines).encode())
            await writer.drain()
            while data := await reader.read(4096):
                if self._lines(uuid) is None:
                    return
                writer.write(data)
                await writer.drain()

    async def _serve_vnc(self, uuid: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async with _closing(writer):
            if self._lines(uuid) is None:
                return
            writer.write(RFB_GREETING)
            await writer.drain()
            while await reader.read(4096):
                pass


@contextlib.asynccontextmanager
async def _closing(writer: asyncio.StreamWriter) -> AsyncIterator[None]:
    try:
        yield
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
