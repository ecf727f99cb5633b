"""Hook start-up for the stand-in base layer: the config flags layer:basic offers.

Upper layers react to ``config.changed``, ``config.changed.<opt>``, ``config.set.<opt>`` and
``config.default.<opt>``; these are set before handlers run and the ``changed`` ones cleared at
the end of the hook, which is the contract of layer:basic (implemented here independently).
"""
import os

import yaml
from charmhelpers.core import hookenv
from charms.reactive import clear_flag, set_flag, toggle_flag


def _set_config_flags():
    config = hookenv.config()
    defaults = {}
    try:
        path = os.path.join(hookenv.charm_dir(), "config.yaml")
        with open(path, encoding="utf-8") as f:
            options = (yaml.safe_load(f) or {}).get("options") or {}
        defaults = {k: v.get("default") for k, v in options.items()}
    except OSError:
        pass
    any_changed = False
    for opt in config:
        changed = config.changed(opt)
        any_changed = any_changed or changed
        toggle_flag(f"config.changed.{opt}", changed)
        toggle_flag(f"config.set.{opt}", config.get(opt) not in (None, ""))
        toggle_flag(f"config.default.{opt}", config.get(opt) == defaults.get(opt))
    toggle_flag("config.changed", any_changed)


def _clear_config_flags():
    config = hookenv.config()
    for opt in config:
        clear_flag(f"config.changed.{opt}")
    clear_flag("config.changed")


def init_hook():
    hookenv.atstart(_set_config_flags)
    hookenv.atexit(_clear_config_flags)
    if hookenv.hook_name() == "install":
        hookenv.atstart(set_flag, "basic.installed")
