"""A hook with no crypto work must not load cryptography (tens of ms per hook): the
modules on that path import it lazily. Checked in a fresh interpreter."""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
HOOK_PATH_MODULES = ["charms.layer.tls.names", "charms.layer.tls.unit", "charms.layer.tls.leader",
                     "charms.layer.tls.status", "charms.layer.tls.settings",
                     "charms.layer.tls.storage", "charms.layer.tls.ca_store",
                     "charms.layer.tls.sans", "charms.layer.tls.actions",
                     "charms.layer.tls.transfer", "charms.layer.tls.revocation",
                     "charms.layer.tls.operator_ca", "charms.layer.tls.ca_provider",
                     "charms.layer.tls.ca_request_store", "tlslib"]


def loaded_after_import(modules):
    code = ("import sys\n"
            f"sys.path[:0] = {[os.path.join(HERE, 'shim'), os.path.join(ROOT, 'layer-tls', 'lib'), os.path.join(HERE, 'layers', 'basic', 'lib')]!r}\n"  # noqa: E501
            "import charmhelpers_debian_shim\n"
            + "".join(f"import {m}\n" for m in modules)
            + "print(sorted(m for m in sys.modules if m.startswith('cryptography')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    return done.stdout.strip()


def test_hook_path_modules_do_not_import_cryptography():
    assert loaded_after_import(HOOK_PATH_MODULES) == "[]"


def test_the_check_can_fail():
    assert "cryptography" in loaded_after_import(["charms.layer.tls.pki"])
