"""Test-only shim: let charmhelpers 1.2.1 import on Debian.

charmhelpers.osplatform.get_platform() raises "This module is not supported on
Debian GNU/Linux" because it looks for the lowercase word "debian" in
/etc/os-release's NAME. Charms run on Ubuntu, so the tests pretend to be Ubuntu.
This file is put on PYTHONPATH by the tests (and by the model's hook processes);
it never ships in a layer.
"""
try:
    import charmhelpers.osplatform as _osplatform
except ImportError:  # charmhelpers not installed in this interpreter
    _osplatform = None

if _osplatform is not None:
    _real_get_platform = _osplatform.get_platform

    def _get_platform() -> str:
        try:
            return _real_get_platform()
        except RuntimeError:
            return "ubuntu"

    _osplatform.get_platform = _get_platform
