"""The layer's defaults are written in three places a charm author or operator reads
(layer.yaml's option definitions, config.yaml) and once more in code (``settings``, ``pki``),
so that a hook reads no YAML for a value nobody set. These tests keep them in step."""
from pathlib import Path

import yaml
from charms.layer.tls import pki, settings

LAYER = Path(__file__).resolve().parent.parent / "layer-tls"


def _yaml(name: str) -> dict:
    return yaml.safe_load((LAYER / name).read_text())


def test_every_layer_option_default_matches_layer_yaml():
    defines = _yaml("layer.yaml")["defines"]
    assert set(settings.OPTION_DEFAULTS) == set(defines)
    for name, spec in defines.items():
        assert settings.OPTION_DEFAULTS[name] == spec["default"], name


def test_every_config_default_matches_config_yaml():
    options = _yaml("config.yaml")["options"]
    assert set(settings.CONFIG_DEFAULTS) == set(options)
    for name, spec in options.items():
        assert settings.CONFIG_DEFAULTS[name] == spec.get("default"), name


def test_the_key_algorithm_lists_match_layer_yaml():
    defines = _yaml("layer.yaml")["defines"]
    assert tuple(defines["key_algorithm"]["enum"]) == pki.KEY_ALGORITHMS
    assert tuple(defines["ca_key_algorithm"]["enum"]) == pki.CA_KEY_ALGORITHMS
    assert defines["key_algorithm"]["default"] == pki.DEFAULT_KEY_ALGORITHM


def test_the_package_docstring_names_every_module():
    package = LAYER / "lib" / "charms" / "layer" / "tls"
    import charms.layer.tls as tls
    modules = {p.stem for p in package.glob("*.py")} - {"__init__"}
    missing = sorted(m for m in modules if f"``{m}``" not in (tls.__doc__ or ""))
    assert not missing, f"charms.layer.tls's docstring does not name {missing}"
