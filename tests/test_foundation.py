"""The test environment itself: the charmhelpers shim works and never leaks into the layers."""
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_charmhelpers_host_imports_with_the_shim():
    import charmhelpers.core.host as host

    assert callable(host.write_file)


def test_the_shim_is_not_shipped_in_a_layer():
    shipped = [p for layer in ("layer-tls", "interface-tls") for p in (ROOT / layer).rglob("*.py")]
    assert not [p for p in shipped if "osplatform" in p.read_text()]
