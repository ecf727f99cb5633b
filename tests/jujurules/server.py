"""The hook-tool server: the model's state in memory, hook tools answered over a socket.

Juju's hook tools are thin jujuc clients that send argv, stdin and JUJU_CONTEXT_ID to the
unit agent over JUJU_AGENT_SOCKET_ADDRESS (cmd/jujud/main.go hookToolMain,
worker/uniter/runner/jujuc/server.go); the simulator does the same, so a tool call costs a
connect and a dict lookup instead of an interpreter start and a JSON load/save under a lock.

Wire format (little-endian u32 lengths): the client sends ``JJC1``, a count N, then N
length-prefixed strings: context id, working directory, tool name, arguments. The server
answers ``I`` when the tool reads stdin (the client then sends it, length-prefixed) and
finally ``R``, the exit code, stdout and stderr (each length-prefixed).
"""
import itertools
import os
import socket
import struct
import threading
from typing import Optional

from .tools import Call, run_tool

_COUNTER = itertools.count()


def _recv(conn: socket.socket, n: int) -> bytes:
    chunks = []
    while n:
        chunk = conn.recv(n)
        if not chunk:
            raise ConnectionError("client went away")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _u32(conn: socket.socket) -> int:
    return struct.unpack("<I", _recv(conn, 4))[0]


def _blob(data: bytes) -> bytes:
    return struct.pack("<I", len(data)) + data


class ToolServer:
    """Serves ``run_tool`` on the state dict ``state`` (changed in place under ``lock``)
    on an abstract Unix socket; ``address`` is what JUJU_AGENT_SOCKET_ADDRESS holds."""

    def __init__(self, state: dict, lock: threading.RLock, name: str = "jujusim"):
        self.state = state
        self.lock = lock
        self.address = f"@{name}-{os.getpid()}-{next(_COUNTER)}"
        self._sock: Optional[socket.socket] = socket.socket(socket.AF_UNIX,
                                                            socket.SOCK_STREAM)
        self._sock.bind("\0" + self.address[1:])
        self._sock.listen(64)
        self._thread = threading.Thread(target=self._serve, name=self.address, daemon=True)
        self._thread.start()

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _serve(self) -> None:
        while self._sock is not None:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            try:
                if _recv(conn, 4) != b"JJC1":
                    return
                fields = [_recv(conn, _u32(conn)).decode("utf-8", "surrogateescape")
                          for _ in range(_u32(conn))]
                ctx_id, cwd, name, argv = fields[0], fields[1], fields[2], fields[3:]

                def stdin() -> str:
                    conn.sendall(b"I")
                    return _recv(conn, _u32(conn)).decode("utf-8", "surrogateescape")

                call = Call(cwd, stdin)
                with self.lock:
                    rc, out, err = run_tool(self.state, ctx_id, name, argv, call)
                conn.sendall(b"R" + struct.pack("<I", rc & 0xFFFFFFFF)
                             + _blob(out.encode("utf-8", "surrogateescape"))
                             + _blob(err.encode("utf-8", "surrogateescape")))
            except (ConnectionError, OSError, IndexError, struct.error):
                return
