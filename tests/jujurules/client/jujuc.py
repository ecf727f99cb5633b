"""The hook tools' thin client in Python (used when no C compiler built client/jujuc.c):
the same wire protocol as jujuc.c (see ../server.py). Runs with ``python -I -S``."""
import os
import socket
import struct
import sys

# The tool names (filled in when the model installs this script): an unknown name is
# refused here, as Juju's jujuc refuses a command its agent does not have.
TOOLS = ()


def _recv(conn, n):
    chunks = []
    while n:
        chunk = conn.recv(n)
        if not chunk:
            raise ConnectionError("the hook-tool server went away")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _blob(text):
    data = text.encode("utf-8", "surrogateescape")
    return struct.pack("<I", len(data)) + data


def main(argv):
    name = os.path.basename(argv[0])
    if name.endswith(".py") or name == "jujuc":
        name = argv[1] if len(argv) > 1 else ""
        argv = argv[1:]
    if TOOLS and name not in TOOLS:
        sys.stderr.write(f"ERROR unknown hook tool {name!r} (not simulated)\n")
        return 2
    ctx_id = os.environ.get("JUJU_CONTEXT_ID")
    address = os.environ.get("JUJU_AGENT_SOCKET_ADDRESS", "")
    if not ctx_id:
        sys.stderr.write("ERROR JUJU_CONTEXT_ID not set: hook tools only work in a hook\n")
        return 1
    fields = [ctx_id, os.getcwd(), name] + list(argv[1:])
    try:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.connect("\0" + address[1:] if address.startswith("@") else address)
        conn.sendall(b"JJC1" + struct.pack("<I", len(fields)) + b"".join(map(_blob, fields)))
        while True:
            kind = _recv(conn, 1)
            if kind == b"I":
                conn.sendall(_blob(sys.stdin.read()))
                continue
            rc = struct.unpack("<I", _recv(conn, 4))[0]
            out = _recv(conn, struct.unpack("<I", _recv(conn, 4))[0])
            err = _recv(conn, struct.unpack("<I", _recv(conn, 4))[0])
            break
    except (OSError, ConnectionError) as e:
        sys.stderr.write(f"ERROR cannot reach the hook-tool server: {e}\n")
        return 1
    sys.stdout.buffer.write(out)
    sys.stdout.flush()
    sys.stderr.buffer.write(err)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv))
