"""Shared test setup: the charmhelpers Debian shim and the library import paths."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [
    os.path.join(HERE, "shim"),
    os.path.join(ROOT, "layer-tls", "lib"),
    # charms.layer.options and the namespace __init__ of our stand-in layer:basic
    os.path.join(HERE, "layers", "basic", "lib"),
    HERE,
]
import charmhelpers_debian_shim  # noqa: E402,F401  (applied on import)
import pytest  # noqa: E402


@pytest.fixture
def secrets(monkeypatch):
    """An in-memory Juju 3 secret store behind layer:tls's one hook-tool seam."""
    from charms.layer.tls import ca_store
    from tls_harness import FakeSecrets

    fake = FakeSecrets()
    monkeypatch.setattr(ca_store, "run_tool", fake.run)
    return fake


@pytest.fixture
def hostnames(monkeypatch):
    """Each simulated unit its own host name (the harness runs every unit in one process)."""
    from charms.layer.tls import names
    from tls_harness import unit_host_names

    monkeypatch.setattr(names, "host_names", unit_host_names)
