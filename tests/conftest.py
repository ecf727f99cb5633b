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


@pytest.fixture(scope="session")
def demo_charm():
    """The tls-demo example charm, built once per session (cached across runs by hash)."""
    from model import build_charm
    from model_checks import DEMO_LAYER

    return build_charm(DEMO_LAYER)


@pytest.fixture
def make_model(demo_charm, tmp_path):
    """make_model(seed=1, config=None, **Model kwargs) -> a simulated model of tls-demo with
    its own echo port (model.port); the units' echo services are stopped afterwards."""
    from model import Model
    from model_checks import free_port, stop_services

    models = []

    def make(seed=1, config=None, **kw):
        port = free_port()
        model = Model(demo_charm, tmp_path / f"m{len(models)}", seed=seed,
                      config=dict(config or {}, echo_port=port), **kw)
        model.port = port
        models.append(model)
        return model

    yield make
    for model in models:
        stop_services(model)
