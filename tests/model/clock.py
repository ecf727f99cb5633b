"""The model's clock: the wall time every hook and action process sees, shifted by an offset.

Time is the machine's, not a Juju rule: the simulator runs hooks in real time, so a duty due
after days (a CRL's renewal, a certificate's renewal, a CA rollover by age) could not happen
in a test. ``Model.advance_clock(seconds)`` moves the model's clock forward; every hook and
action process started afterwards runs with libfaketime preloaded (``LD_PRELOAD``) and
``FAKETIME="+<offset>"`` (relative: the real time plus the offset, still ticking), so
``time.time()``, ``datetime.now()`` and OpenSSL's ``time()`` see the model's time. Only the
wall clock moves: the monotonic clocks are left alone (``FAKETIME_DONT_FAKE_MONOTONIC=1``:
faking them hangs Python's timed waits) and file times stay real (``NO_FAKE_STAT=1``: a
shifted ``stat`` would make every .pyc look stale). Nothing here imports Juju's rules.
"""
from __future__ import annotations

import datetime
import glob
import os
import subprocess
import time
from pathlib import Path
from typing import Dict, Mapping, Optional, Sequence

# Debian's libfaketime (multiarch), then a local build's usual places
CANDIDATES = ("/usr/lib/*/faketime/libfaketime.so.1", "/usr/lib/faketime/libfaketime.so.1",
              "/usr/local/lib/faketime/libfaketime.so.1")


class ClockUnavailable(RuntimeError):
    """libfaketime is not installed, so the model's clock cannot move."""


def libfaketime() -> Optional[Path]:
    """The path of libfaketime.so.1, or None when it is not installed."""
    for pattern in CANDIDATES:
        for found in sorted(glob.glob(pattern)):
            if os.path.isfile(found):
                return Path(found)
    return None


def require_libfaketime() -> Path:
    """libfaketime.so.1, or ClockUnavailable saying how to install it."""
    found = libfaketime()
    if found is None:
        raise ClockUnavailable(
            "the model's clock needs libfaketime (the Debian package libfaketime, which "
            "`make .venv/.installed` installs); not found in " + ", ".join(CANDIDATES))
    return found


def check_offset(seconds: object) -> int:
    """A whole, non-negative number of seconds (the clock only moves forward)."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise TypeError(f"seconds must be a number, not {type(seconds).__name__}")
    if seconds != seconds or seconds < 0 or seconds != int(seconds):
        raise ValueError(f"seconds must be a whole number >= 0, not {seconds!r}")
    return int(seconds)


def clock_env(offset: int) -> Dict[str, str]:
    """The variables that put a process on the model's clock ({} at offset 0: real time)."""
    if not offset:
        return {}
    return {"LD_PRELOAD": str(require_libfaketime()), "FAKETIME": f"+{int(offset)}",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1", "NO_FAKE_STAT": "1"}


def model_time(offset: int) -> float:
    """The model's time now, in epoch seconds (for checks made in the test's own process)."""
    return time.time() + offset


def model_now(offset: int) -> datetime.datetime:
    """The model's time now, as an aware UTC datetime."""
    return datetime.datetime.fromtimestamp(model_time(offset), datetime.timezone.utc)


def run_at_model_time(offset: int, argv: Sequence[str], *, env: Optional[Mapping] = None,
                      **kwargs) -> subprocess.CompletedProcess:
    """Run ``argv`` on the model's clock (a check that must judge times as the units do:
    a TLS handshake, ``openssl verify``). ``env``: the base environment (default: ours).
    A Python run here must not ``time.sleep`` unless tests/model/hostshim is on its
    PYTHONPATH (libfaketime 0.9.10 breaks it; see hostshim/faketime_sleep.py)."""
    full = dict(os.environ if env is None else env)
    extra = clock_env(offset)
    if "LD_PRELOAD" in extra and full.get("LD_PRELOAD"):
        extra["LD_PRELOAD"] += " " + full["LD_PRELOAD"]
    full.update(extra)
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    return subprocess.run(list(argv), env=full, check=False, **kwargs)
