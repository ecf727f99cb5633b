"""tls-demo: run the mutual-TLS echo service with the certificate layer:tls issued."""
import os
import signal
import subprocess
import sys

from charmhelpers.core import hookenv
from charms.reactive import clear_flag, hook, when

PIDFILE = "echo.pid"


def _pid():
    """The running service's pid, or None."""
    try:
        with open(os.path.join(hookenv.charm_dir(), PIDFILE)) as handle:
            pid = int(handle.read().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


@when("tls.certificate.available")
def run_echo_service():
    """Keep the service running once the certificate is there."""
    from charms.layer import options

    if _pid() is not None:
        return
    opts = options.get("tls")
    charm_dir = hookenv.charm_dir()
    port = int(hookenv.config("echo_port"))
    argv = [sys.executable, os.path.join(charm_dir, "files", "echo_server.py"),
            "--address", hookenv.unit_private_ip(), "--port", str(port),
            "--name", hookenv.local_unit(),
            "--cert", os.path.join(charm_dir, opts["certificate_path"]),
            "--key", os.path.join(charm_dir, opts["key_path"]),
            "--ca", os.path.join(charm_dir, opts["ca_path"]),
            "--crl", os.path.join(charm_dir, opts["crl_path"]),
            "--pidfile", os.path.join(charm_dir, PIDFILE)]
    with open(os.path.join(charm_dir, "echo.log"), "ab") as log:
        subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                         start_new_session=True, close_fds=True)
    hookenv.log(f"tls-demo: started the echo service on port {port}")
    hookenv.open_port(port)


@when("tls.certificate.available", "tls.certificate.changed")
def reload_echo_service():
    """layer:tls installed a new certificate, key, CA bundle or CRL: reload in this same hook
    (the handler re-runs whenever the flag is set again), then clear the flag."""
    pid = _pid()
    if pid is not None:
        os.kill(pid, signal.SIGHUP)
        hookenv.log("tls-demo: the certificate or CA bundle changed; reloaded the service")
    clear_flag("tls.certificate.changed")


@hook("stop")
def stop_echo_service():
    pid = _pid()
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
