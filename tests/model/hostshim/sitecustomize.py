"""Hook processes of the model: the charmhelpers Debian shim, a per-unit hostname, jujud.

On PYTHONPATH before tests/shim (which this file imports first). When the model sets
``SIM_HOSTNAME``/``SIM_FQDN``, socket.gethostname()/getfqdn() return them, so every simulated
unit has its own host name. charmhelpers' juju_version() globs /var/lib/juju/tools/machine-*/jujud;
here it runs the model's fake ``jujud`` found on PATH instead. On the model's clock
(``FAKETIME`` set), faketime_sleep mends time.sleep where libfaketime breaks it.
"""
import os
import socket

import charmhelpers_debian_shim  # noqa: F401  (applied on import)

if os.environ.get("FAKETIME"):
    import faketime_sleep

    faketime_sleep.install()

_HOST = os.environ.get("SIM_HOSTNAME")
if _HOST:
    _FQDN = os.environ.get("SIM_FQDN") or _HOST

    def _gethostname():
        return _HOST

    def _getfqdn(name=""):
        if not name or name in (_HOST, _FQDN, "0.0.0.0", "::"):  # noqa: S104
            return _FQDN
        return _real_getfqdn(name)

    _real_getfqdn = socket.getfqdn
    socket.gethostname = _gethostname
    socket.getfqdn = _getfqdn

if os.environ.get("JUJU_CONTEXT_ID"):
    try:
        from charmhelpers.core import hookenv as _hookenv
    except ImportError:  # not a charm interpreter
        _hookenv = None
    if _hookenv is not None:
        import shutil
        import subprocess

        def _juju_version():
            jujud = shutil.which("jujud")
            if jujud is None:
                raise IndexError("no jujud")  # what the real glob()[0] raises
            return subprocess.check_output([jujud, "version"], text=True).strip()

        _hookenv.juju_version = _juju_version
