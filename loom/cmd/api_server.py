"""The API's uvicorn server, as the runner starts it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import uvicorn


class ApiServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The runner owns signal handling for every service in the process.
        yield
