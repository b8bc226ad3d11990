"""The loopback server in a child process, so that its threads, sockets and recordings do
not count in the measurements of the process under test (the leak section)."""

from __future__ import annotations

import multiprocessing
from multiprocessing.connection import Connection
from types import TracebackType
from typing import Any

__all__ = ["RemoteServer"]


def _serve(conn: Connection) -> None:
    from rxllm.testing import Script, Server

    with Server() as server:
        conn.send(server.url)
        seen = 0
        while True:
            command, argument = conn.recv()
            if command == "push":
                for given in argument:
                    kwargs = dict(given)  # one dict may be given several times
                    chunks = kwargs.pop("chunks", ())
                    server.push(Script(chunks, **kwargs))
                conn.send(None)
            elif command == "requests":
                # every request since the last call: (client left, finished, normal end)
                records = server.requests[seen:]
                seen += len(records)
                for record in records:
                    record.wait_done(argument)
                conn.send(
                    [
                        (r.client_closed_at is not None, r.finished, r.completed_normally)
                        for r in records
                    ]
                )
            else:
                conn.send(None)
                return


class RemoteServer:
    """`rxllm.testing.Server` running in a spawned child process; scripts are given as the
    keyword arguments of `Script` (picklable)."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child,), daemon=True)
        self._process.start()
        child.close()
        self.url: str = self._conn.recv()

    def push(self, *scripts: dict[str, Any]) -> None:
        """Queue scripts (each the keyword arguments of a `Script`, `chunks` included)."""
        self._conn.send(("push", list(scripts)))
        self._conn.recv()

    def requests(self, wait: float = 5.0) -> list[tuple[bool, bool, bool]]:
        """(client left, finished, ended normally) of each request since the last call, each
        waited for up to `wait` seconds to be done."""
        self._conn.send(("requests", wait))
        result: list[tuple[bool, bool, bool]] = self._conn.recv()
        return result

    def close(self) -> None:
        """Stop the child."""
        if self._process.is_alive():
            self._conn.send(("stop", None))
            self._conn.recv()
            self._process.join(10)
        self._conn.close()

    def __enter__(self) -> RemoteServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
