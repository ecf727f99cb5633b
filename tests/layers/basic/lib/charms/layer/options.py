"""Layer options: the ``options`` section of the built charm's layer.yaml.

``get()`` -> every layer's options; ``get("tls")`` -> that layer's options;
``get("tls", "key_path")`` -> one value (None when unset).
"""
import os

import yaml

_CACHE = {}


def _charm_dir():
    return os.environ.get("JUJU_CHARM_DIR") or os.environ.get("CHARM_DIR") or os.getcwd()


def get(section=None, option=None, layer_file=None):
    if option and not section:
        raise ValueError("an option needs its section (the layer name)")
    path = layer_file or os.path.join(_charm_dir(), "layer.yaml")
    if path not in _CACHE:
        with open(path, encoding="utf-8") as f:
            _CACHE[path] = (yaml.safe_load(f.read()) or {}).get("options") or {}
    options = _CACHE[path]
    if not section:
        return options
    section_options = options.get(section) or {}
    if not option:
        return section_options
    return section_options.get(option)
