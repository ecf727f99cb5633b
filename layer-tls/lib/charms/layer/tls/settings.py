"""The layer's settings: layer options (chosen by the charm author in layer.yaml) and the
operator's config (config.yaml), read once per hook into one immutable object."""
from __future__ import annotations

import os
from typing import List, NamedTuple, Optional

from . import storage

OPTION_DEFAULTS = {
    "key_algorithm": "ecdsa-p256",
    "ca_key_algorithm": "ecdsa-p256",
    "certificate_path": "/etc/juju-tls/server.crt",
    "key_path": "/etc/juju-tls/server.key",
    "ca_path": "/etc/juju-tls/ca.crt",
    "owner": "",
    "group": "",
    "install_ca_to_system": True,
    "system_ca_dir": "/usr/local/share/ca-certificates",
    "system_ca_update_command": "update-ca-certificates",
    "manage_status": True,
}
CONFIG_DEFAULTS = {
    "tls_certificate_lifetime": 365,
    "tls_ca_lifetime": 3650,
    "tls_extra_sans": "",
    "root_certificate": "",
}


class Settings(NamedTuple):
    key_algorithm: str
    ca_key_algorithm: str
    paths: storage.Paths
    owner: storage.FileOwner
    system_ca_update_command: str
    manage_status: bool
    certificate_lifetime_days: int
    ca_lifetime_days: int
    extra_sans: List[str]
    root_certificate: str

    def problem(self) -> Optional[str]:
        """A configuration error to show as blocked, or None."""
        if self.certificate_lifetime_days < 1:
            return "tls_certificate_lifetime must be at least 1 day"
        if self.ca_lifetime_days < 2 * self.certificate_lifetime_days:
            return "tls_ca_lifetime must be at least twice tls_certificate_lifetime"
        return None


def build(options: dict, config: dict, charm_dir: str, application: str) -> Settings:
    """Settings from raw layer options and config (missing keys take the defaults)."""
    opts = dict(OPTION_DEFAULTS, **{k: v for k, v in options.items() if v is not None})
    conf = dict(CONFIG_DEFAULTS, **{k: v for k, v in config.items() if v is not None})
    system_ca = None
    if opts["install_ca_to_system"]:
        system_ca = os.path.join(storage.resolve_path(opts["system_ca_dir"], charm_dir),
                                 f"{application}.crt")
    paths = storage.Paths(
        certificate=storage.resolve_path(opts["certificate_path"], charm_dir),
        key=storage.resolve_path(opts["key_path"], charm_dir),
        ca_bundle=storage.resolve_path(opts["ca_path"], charm_dir),
        system_ca=system_ca)
    return Settings(
        key_algorithm=opts["key_algorithm"], ca_key_algorithm=opts["ca_key_algorithm"],
        paths=paths, owner=storage.FileOwner(opts["owner"] or None, opts["group"] or None),
        system_ca_update_command=opts["system_ca_update_command"] if system_ca else "",
        manage_status=bool(opts["manage_status"]),
        certificate_lifetime_days=int(conf["tls_certificate_lifetime"]),
        ca_lifetime_days=int(conf["tls_ca_lifetime"]),
        extra_sans=str(conf["tls_extra_sans"]).replace(",", " ").split(),
        root_certificate=str(conf["root_certificate"] or ""))


def load() -> Settings:
    """Settings of this hook: ``charms.layer.options`` (layer:basic) and ``hookenv.config``."""
    from charmhelpers.core import hookenv
    from charms.layer import options

    return build(options.get("tls") or {}, dict(hookenv.config()), hookenv.charm_dir(),
                 hookenv.application_name())
