"""Fast start of hook processes (opt-in, ``Model(fast_start=True)``): a pre-forked "zygote".

Most of a simulated hook is the hook process starting: the interpreter, then importing
charms.reactive, charmhelpers, yaml and cryptography. The zygote is a server process,
started once per model with the charm venv's ``python3``, that has imported the stdlib and
wheelhouse modules (``PRELOAD``) and nothing of any unit. For each hook it forks a
supervisor, which forks the hook process and reports its exit status; the hook process sets
the hook's environment, cwd, argv, sys.path and stdin/stdout/stderr, re-runs the host shim
(``sitecustomize``) under the hook's environment and runs the hook file as ``__main__``.
So every hook is still a fresh process with its own state, and the charm's own code (its
``lib/``, ``reactive/``, the hook file) is imported fresh in it. The differences from an
exec of the hook file are listed in tests/model/README.md (Speed).

A hook runs through the zygote only when exec would have started the same interpreter the
same way: a ``#!/usr/bin/env python3`` file, executable, whose ``python3`` on the hook's
PATH is the zygote's, and the environment variables read at start-up or at import time
(``_SENSITIVE``) equal to the zygote's; anything else (shell hooks, a dispatch script, a
different venv) is exec'd as before. This file runs as a script in the zygote (stdlib only,
no package imports) and is imported by the simulator for the client (``Zygote``).
"""
import importlib
import json
import locale
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import uuid
from typing import Dict, List, Optional, Tuple

# Imported by the zygote before it serves (each only if importable in the venv): what the
# hooks of a reactive charm import from the stdlib and the wheelhouse. Never a charm's code.
PRELOAD = (
    "json", "logging", "sqlite3", "subprocess", "tempfile", "shutil", "ipaddress", "hashlib",
    "base64", "datetime", "uuid", "glob", "yaml",
    "charmhelpers", "charmhelpers.core.hookenv", "charmhelpers.core.host",
    "charmhelpers.core.unitdata", "charmhelpers.core.templating",
    "charms.reactive",
    "cryptography", "cryptography.x509", "cryptography.x509.oid",
    "cryptography.hazmat.primitives.hashes", "cryptography.hazmat.primitives.serialization",
    "cryptography.hazmat.primitives.asymmetric.ec", "cryptography.hazmat.primitives.asymmetric.rsa",
    "cryptography.hazmat.primitives.asymmetric.ed25519",
)
# The zygote's environment: the variables every hook of a model shares.
_STABLE = ("PATH", "PYTHONPATH", "LANG", "TERM", "CHARM_VENV", "DEBIAN_FRONTEND",
           "APT_LISTCHANGES_FRONTEND")
# Read by the interpreter or the dynamic loader at start-up, or by a preloaded module at
# import time (charms.reactive.bus reads REACTIVE_LOG_OPTS; libfaketime, the model's clock,
# is loaded through LD_PRELOAD and reads FAKETIME*): a hook whose values differ is exec'd.
_SENSITIVE_NAMES = _STABLE + ("REACTIVE_LOG_OPTS", "TZ", "TMPDIR", "TEMP", "TMP",
                              "NO_FAKE_STAT")
_SENSITIVE_PREFIXES = ("PYTHON", "LC_", "LD_", "FAKETIME")
_SHEBANG = b"#!/usr/bin/env python3"


def _sensitive(env: Dict[str, str]) -> Dict[str, str]:
    return {k: v for k, v in env.items()
            if k in _SENSITIVE_NAMES or k.startswith(_SENSITIVE_PREFIXES)}


def _send(sock: socket.socket, obj: dict, fds: List[int] = ()) -> None:
    data = json.dumps(obj).encode()
    data = struct.pack("!I", len(data)) + data
    sent = socket.send_fds(sock, [data], list(fds)) if fds else sock.send(data)
    if sent < len(data):
        sock.sendall(data[sent:])


class _Reader:
    """Length-prefixed JSON messages from a stream socket (two may come in one read)."""

    def __init__(self, sock: socket.socket):
        self.sock, self.buf = sock, b""

    def read(self, maxfds: int = 0) -> Tuple[Optional[dict], List[int]]:
        """The next message (None at EOF) and the file descriptors that came with it."""
        fds: List[int] = []
        while len(self.buf) < 4 or len(self.buf) < 4 + struct.unpack("!I", self.buf[:4])[0]:
            if maxfds and not fds:
                more, fds, _flags, _addr = socket.recv_fds(self.sock, 65536, maxfds)
            else:
                more = self.sock.recv(65536)
            if not more:
                return None, fds
            self.buf += more
        size = struct.unpack("!I", self.buf[:4])[0]
        message, self.buf = self.buf[4:4 + size], self.buf[4 + size:]
        return json.loads(message), fds


# ------------------------------------------------------------------ simulator side


class Zygote:
    """The simulator's handle on one zygote process (started at the first hook)."""

    def __init__(self, workdir, preload=PRELOAD):
        self.workdir = str(workdir)
        self.preload = tuple(preload)
        self.proc: Optional[subprocess.Popen] = None
        self.address = ""
        self.python = ""
        self.env: Dict[str, str] = {}
        self.failed = ""           # why the zygote could not start (then every hook execs)
        self._lock = threading.Lock()
        self.served = 0            # hooks run through the zygote
        self.fallbacks = 0         # hooks exec'd instead (not eligible)

    def _interpreter(self, path: str, env: Dict[str, str]) -> Optional[str]:
        """The python3 an exec of ``path`` would run, if it is a ``/usr/bin/env python3``
        script (else None: it is exec'd)."""
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            return None
        with open(path, "rb") as f:
            first = f.readline().rstrip()
        if first != _SHEBANG:
            return None
        found = shutil.which("python3", path=env.get("PATH", ""))
        return os.path.abspath(found) if found else None

    def _start(self, python: str, env: Dict[str, str]) -> None:
        self.python, self.env = python, {k: env[k] for k in _STABLE if k in env}
        self.address = f"\0sim-zygote-{uuid.uuid4().hex}"
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(self.address)
        listener.listen(16)
        log = open(os.path.join(self.workdir, "zygote.log"), "ab")  # noqa: SIM115
        try:
            self.proc = subprocess.Popen(
                [python, os.path.abspath(__file__), "serve", str(listener.fileno()),
                 ",".join(self.preload)],
                env=self.env, stdin=subprocess.PIPE, stdout=log, stderr=log,
                pass_fds=[listener.fileno()], cwd=self.workdir)
        finally:
            listener.close()  # the zygote holds it: if it dies, connecting is refused
            log.close()

    def run(self, path, env: Dict[str, str], cwd, timeout: float
            ) -> Optional[Tuple[int, str, str]]:
        """Run the hook file ``path`` in a child of the zygote: (rc, stdout, stderr), as
        ``subprocess.run([path], env=env, cwd=cwd, capture_output=True, text=True)`` gives
        them; None when the hook must be exec'd instead."""
        path = str(path)
        python = self._interpreter(path, env)
        if python is None or self.failed:
            self.fallbacks += 1
            return None
        with self._lock:
            if self.proc is None:
                self._start(python, env)
        if python != self.python or _sensitive(env) != _sensitive(self.env):
            self.fallbacks += 1
            return None
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            got = self._call(path, env, str(cwd), out, err, timeout)
            if got is None:
                self.fallbacks += 1
                return None
            rc, timed_out = got
            raw = []
            for f in (out, err):
                f.seek(0)
                raw.append(f.read())
        self.served += 1
        if timed_out:  # as sim.py's exec path words subprocess.TimeoutExpired's bytes
            return -9, str(raw[0] or ""), f"{raw[1] or ''}\nhook timed out\n"
        # what subprocess.run(text=True) does with captured output
        texts = [data.decode(locale.getpreferredencoding(False)) for data in raw]
        return (rc, *(t.replace("\r\n", "\n").replace("\r", "\n") for t in texts))

    def _call(self, path, env, cwd, out, err, timeout) -> Optional[Tuple[int, bool]]:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(60)
            try:
                sock.connect(self.address)
            except OSError as e:
                self.failed = f"zygote unreachable: {e}"
                return None
            stdin = 0 if _valid_fd(0) else os.open(os.devnull, os.O_RDONLY)
            try:
                _send(sock, {"path": path, "env": env, "cwd": cwd},
                      [stdin, out.fileno(), err.fileno()])
            finally:
                if stdin:
                    os.close(stdin)
            reader = _Reader(sock)
            started, _ = reader.read()
            if started is None or "pid" not in started:
                if started is None:
                    self.failed = "zygote closed the connection"
                return None
            timed_out = False
            sock.settimeout(timeout)
            try:
                done, _ = reader.read()
            except socket.timeout:  # as subprocess.run(timeout=...): SIGKILL the hook
                timed_out = True
                try:
                    os.kill(started["pid"], signal.SIGKILL)
                except ProcessLookupError:
                    pass
                sock.settimeout(60)
                done, _ = reader.read()
            if done is None:
                raise RuntimeError("zygote: the supervisor of a hook vanished")
            return done["rc"], timed_out
        finally:
            sock.close()

    def close(self) -> None:
        """Stop the zygote (it also exits when the simulator's end of its stdin closes)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            proc.stdin.close()
            proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()


def _valid_fd(fd: int) -> bool:
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False


# ------------------------------------------------------------------ zygote side

_BASE_PATH: List[str] = []       # sys.path of a fresh interpreter, minus the script's dir
_WARNINGS: List[str] = []        # warnings the preload wrote (a hook writes them on import)


class _FirstUsePath(list):
    """``__path__`` of a preloaded ``pkgutil.extend_path`` package (``charms``), computed
    when the hook first imports a submodule that is not preloaded: a fresh process computes
    it when it first imports the package, after the hook put the charm's lib/ on sys.path."""

    def __init__(self, original: List[str], name: str):
        super().__init__(original)
        self._original, self._name, self._frozen = list(original), name, False

    def _freeze(self) -> None:
        if not self._frozen:
            import pkgutil

            self._frozen = True
            list.__init__(self, pkgutil.extend_path(list(self._original), self._name))

    def __iter__(self):
        self._freeze()
        return super().__iter__()

    def __len__(self):
        self._freeze()
        return super().__len__()

    def __getitem__(self, i):
        self._freeze()
        return super().__getitem__(i)

    def __contains__(self, x):
        self._freeze()
        return super().__contains__(x)


def _extend_path_packages() -> List[str]:
    names = []
    for name, mod in list(sys.modules.items()):
        path, file = getattr(mod, "__path__", None), getattr(mod, "__file__", None) or ""
        if type(path) is list and file.endswith("__init__.py"):
            try:
                with open(file, encoding="utf-8") as f:
                    if "extend_path(" in f.read():
                        names.append(name)
            except OSError:
                pass
    return names


def _preload(names: List[str]) -> None:
    import warnings

    def record(message, category, filename, lineno, file=None, line=None):
        _WARNINGS.append(warnings.formatwarning(message, category, filename, lineno, line))

    shown = warnings.showwarning
    warnings.showwarning = record
    try:
        for name in names:
            try:
                importlib.import_module(name)
            except Exception as e:  # noqa: BLE001 - an absent or broken module is not loaded
                print(f"zygote: not preloaded: {name}: {e!r}", file=sys.stderr)
    finally:
        warnings.showwarning = shown
    sys.stdout.flush()
    sys.stderr.flush()


def _sys_path0(path: str) -> str:
    """The directory CPython puts first on sys.path for a script (symlinks followed)."""
    for _ in range(40):
        try:
            link = os.readlink(path)
        except OSError:
            break
        path = link if os.path.isabs(link) else os.path.join(os.path.dirname(path), link)
    return os.path.dirname(path)


def _hook(req: dict, fds: List[int], extend: List[str]) -> None:
    """In the forked hook process: become the hook and run it; never returns."""
    import builtins
    import types
    from importlib.machinery import SourceFileLoader

    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    os.closerange(3, os.sysconf("SC_OPEN_MAX") if hasattr(os, "sysconf") else 1024)
    os.environ.clear()
    os.environ.update(req["env"])
    os.chdir(req["cwd"])
    path = req["path"]
    sys.argv = [path]
    sys.path[:] = [_sys_path0(path)] + _BASE_PATH
    importlib.invalidate_caches()
    for name in extend:
        mod = sys.modules.get(name)
        if mod is not None:
            mod.__path__ = _FirstUsePath(mod.__path__, name)
    if "sitecustomize" in sys.modules:  # the host shim, under the hook's environment
        importlib.reload(sys.modules["sitecustomize"])
    for text in _WARNINGS:
        sys.stderr.write(text)
    with open(path, "rb") as f:
        source = f.read()
    code = compile(source, path, "exec", dont_inherit=True)
    main = types.ModuleType("__main__")
    main.__dict__.update(__file__=path, __cached__=None, __spec__=None, __package__=None,
                         __loader__=SourceFileLoader("__main__", path),
                         __builtins__=builtins, __annotations__={})
    sys.modules["__main__"] = main
    try:
        exec(code, main.__dict__)  # noqa: S102 - the hook file, as `python3 <file>` runs it
    except SystemExit as e:
        _exit(_system_exit_code(e))
    except BaseException as e:  # noqa: BLE001 - what the interpreter does with it, below
        tb = e.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
            tb = tb.tb_next  # the hook's traceback starts at the hook file, as in a script
        sys.excepthook(type(e), e.with_traceback(tb), tb)
        _exit(1, interrupted=isinstance(e, KeyboardInterrupt))
    _exit(0)


def _system_exit_code(e: SystemExit) -> int:
    """The exit status CPython gives an uncaught SystemExit (pythonrun.c)."""
    code = e.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    try:
        sys.stderr.write(f"{code}\n")
    except Exception:  # noqa: BLE001, S110 - as CPython, a failed write is ignored
        pass
    return 1


def _exit(code: int, interrupted: bool = False) -> None:
    """The interpreter's exit, without freeing every module (that is most of the time a
    short hook takes): non-daemon threads joined, atexit handlers (weakref finalizers and
    logging.shutdown among them) run, then what the teardown would do that others can see:
    unclosed files flushed and sqlite connections closed (an open transaction rolls back);
    stdout/stderr flushed (status 120 if stdout cannot be, as CPython)."""
    import atexit
    import gc
    import io
    import threading

    threading._shutdown()  # noqa: SLF001 - what Py_FinalizeEx calls first
    atexit._run_exitfuncs()  # noqa: SLF001
    sqlite3 = sys.modules.get("sqlite3")
    objects = gc.get_objects()
    for kinds in ((io.TextIOWrapper,), (io.BufferedWriter, io.BufferedRandom)):
        for obj in objects:
            if isinstance(obj, kinds) and obj not in (sys.stdout, sys.stderr):
                try:
                    if not obj.closed and obj.writable():
                        obj.flush()
                except Exception:  # noqa: BLE001, S110 - teardown ignores these too
                    pass
    if sqlite3 is not None:
        for obj in objects:
            if isinstance(obj, sqlite3.Connection):
                try:
                    obj.close()
                except Exception:  # noqa: BLE001, S110
                    pass
    del objects
    try:
        sys.stdout.flush()
    except Exception:  # noqa: BLE001
        code = 120
    try:
        sys.stderr.flush()
    except Exception:  # noqa: BLE001, S110
        pass
    if interrupted:  # CPython exits by the signal after an uncaught KeyboardInterrupt
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    os._exit(code)


def _supervise(conn: socket.socket, req: dict, fds: List[int], extend: List[str]) -> None:
    """In the forked supervisor: fork the hook process, report its pid and exit status."""
    pid = os.fork()
    if pid == 0:
        conn.close()
        _hook(req, fds, extend)
    for fd in fds:
        os.close(fd)
    try:
        _send(conn, {"pid": pid})
    except OSError:
        pass
    _, status = os.waitpid(pid, 0)
    try:
        _send(conn, {"rc": os.waitstatus_to_exitcode(status)})
    except OSError:
        pass
    os._exit(0)


def serve(listen_fd: int, preload: List[str]) -> None:
    """The zygote's loop: one supervisor per connection, until stdin closes."""
    listener = socket.socket(fileno=listen_fd)
    _preload(preload)
    extend = _extend_path_packages()
    import gc

    gc.collect()
    gc.freeze()  # the preloaded heap: never copied by a child's collections
    while True:
        ready, _, _ = select.select([listener, 0], [], [])
        if 0 in ready and not os.read(0, 4096):
            return
        while True:  # reap finished supervisors
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
        if listener not in ready:
            continue
        conn, _ = listener.accept()
        conn.settimeout(60)
        try:
            req, fds = _Reader(conn).read(3)
        except OSError:
            conn.close()
            continue
        if req is None or len(fds) != 3:
            for fd in fds:
                os.close(fd)
            conn.close()
            continue
        pid = os.fork()
        if pid == 0:
            listener.close()
            os.close(0)
            _supervise(conn, req, fds, extend)
        for fd in fds:
            os.close(fd)
        conn.close()


if __name__ == "__main__" and len(sys.argv) == 4 and sys.argv[1] == "serve":
    _BASE_PATH[:] = sys.path[1:]  # a fresh script's sys.path, minus this file's directory
    del sys.path[0]
    serve(int(sys.argv[2]), [n for n in sys.argv[3].split(",") if n])
