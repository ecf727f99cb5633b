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
