"""Hook processes on the model's clock: a time.sleep that libfaketime 0.9.10 does not break.

Python 3.11+ sleeps with clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME); libfaketime 0.9.10
(Debian's) shifts that deadline by the fake offset even with FAKETIME_DONT_FAKE_MONOTONIC=1,
so the kernel gets a negative time and time.sleep raises OSError(EINVAL), and with it
subprocess.run(timeout=...) whenever the child has not exited yet (libfaketime issue 426,
fixed after 0.9.10). Installed only when the probe ``time.sleep(0)`` fails, it waits in
select() with a relative timeout instead, which libfaketime passes through unchanged.
"""
import select
import time

_monotonic = time.monotonic


def _sleep(seconds):
    """time.sleep(seconds) on the monotonic clock, through select()."""
    if seconds < 0:
        raise ValueError("sleep length must be non-negative")
    deadline = _monotonic() + seconds
    while True:
        left = deadline - _monotonic()
        if left <= 0:
            return
        select.select([], [], [], left)


def install() -> bool:
    """Replace time.sleep when the preloaded libfaketime breaks it; True if replaced."""
    try:
        time.sleep(0)
    except OSError:
        time.sleep = _sleep
        return True
    return False
