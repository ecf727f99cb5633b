"""The state as a JSON file behind an fcntl lock (for a client that holds no state)."""
import fcntl
import json
import os


class Locked:
    """``with Locked(path) as st:`` loads the state under an exclusive lock; ``st.save()``."""

    def __init__(self, path):
        self.path = path
        self.data = None
        self._fd = None
        self.dirty = False

    def __enter__(self):
        self._fd = os.open(self.path + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        with open(self.path, encoding="utf-8") as f:
            self.data = json.load(f)
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            if self.dirty and exc_type is None:
                write_state(self.path, self.data)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)


def write_state(path, data):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, separators=(",", ":"))
    os.replace(tmp, path)
