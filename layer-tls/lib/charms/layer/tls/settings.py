"""The layer's settings: layer options (chosen by the charm author in layer.yaml) and the
operator's config (config.yaml). Options are read from the charm's layer.yaml; config is
read only when a config value is first used (``config-get`` is a hook tool call, and a
quiet hook should not pay for it)."""
from __future__ import annotations

import os
import re
from typing import Callable, List, Optional

from . import namespace, storage
from .sans import extra_sans_problem

OPTION_DEFAULTS = {
    "key_algorithm": "ecdsa-p256",
    "ca_key_algorithm": "ecdsa-p256",
    "certificate_path": "/etc/juju-tls/server.crt",
    "key_path": "/etc/juju-tls/server.key",
    "ca_path": "/etc/juju-tls/ca.crt",
    "crl_path": "/etc/juju-tls/ca.crl",
    "owner": "",
    "group": "",
    "install_ca_to_system": True,
    "system_ca_dir": "/usr/local/share/ca-certificates",
    "system_ca_update_command": "update-ca-certificates",
    "manage_status": True,
    "transfer_endpoint": "send-ca-cert",
}
CONFIG_DEFAULTS = {
    "tls_certificate_lifetime": "365d",
    "tls_ca_lifetime": "3650d",
    "tls_renew_fraction": 0.67,
    "tls_ca_rollover_fraction": 0.8,
    "tls_extra_sans": "",
    "tls_permitted_names": namespace.DEFAULT,
    "root_certificate": "",
    "tls_ca_secret": "",
}
_DURATION = re.compile(r"\A\s*(\d{1,12}(?:\.\d{1,12})?)\s*([dhm]?)\s*\Z")
_UNITS = {"d": 1.0, "": 1.0, "h": 1 / 24, "m": 1 / 1440}
# Every duration is bounded: datetime (and X.509 GeneralizedTime) ends in year 9999, so an
# unbounded lifetime overflows when a certificate is built; and a certificate shorter than
# a minute would expire before the unit that asked for it could install it.
MIN_LIFETIME_DAYS = 1 / 1440        # 1 minute
MAX_LIFETIME_DAYS = 36500.0         # 100 years


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:36] + "...'"


def parse_duration_days(value: object) -> float:
    """``"365d"``, ``"12h"``, ``"30m"`` or a bare number of days -> days (float), between
    1 minute and 36500 days. Raises ValueError for anything else."""
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"{_shown(value)} is not a duration like 365d, 12h or 30m")
    days = float(match.group(1)) * _UNITS[match.group(2)]
    if days < MIN_LIFETIME_DAYS:
        raise ValueError(f"{_shown(value)} is shorter than the minimum of 1m (a certificate "
                         "would expire before it is installed)")
    if days > MAX_LIFETIME_DAYS:
        raise ValueError(f"{_shown(value)} is longer than the maximum of 36500d (100 years)")
    return days


class Settings:
    """Layer options (eager) and config (lazy, through ``config_source``)."""

    def __init__(self, options: dict, config_source: Callable[[], dict], charm_dir: str,
                 application: str) -> None:
        opts = dict(OPTION_DEFAULTS, **{k: v for k, v in options.items() if v is not None})
        self.key_algorithm: str = opts["key_algorithm"]
        self.ca_key_algorithm: str = opts["ca_key_algorithm"]
        system_ca = None
        if opts["install_ca_to_system"]:
            system_ca = os.path.join(storage.resolve_path(opts["system_ca_dir"], charm_dir),
                                     f"{application}.crt")
        self.paths = storage.Paths(
            certificate=storage.resolve_path(opts["certificate_path"], charm_dir),
            key=storage.resolve_path(opts["key_path"], charm_dir),
            ca_bundle=storage.resolve_path(opts["ca_path"], charm_dir),
            system_ca=system_ca)
        self.crl_path = storage.resolve_path(opts["crl_path"], charm_dir)
        self.owner = storage.FileOwner(opts["owner"] or None, opts["group"] or None)
        self.system_ca_update_command: str = (opts["system_ca_update_command"]
                                              if system_ca else "")
        self.manage_status = bool(opts["manage_status"])
        # The certificate_transfer provides endpoint that gets the trust bundle ("" or
        # null: none; charm build refuses a value that is not a string).
        endpoint = opts["transfer_endpoint"]
        self.transfer_endpoint: str = endpoint if isinstance(endpoint, str) else ""
        self._config_source = config_source
        self._config: Optional[dict] = None

    def _conf(self, key: str):
        if self._config is None:
            raw = self._config_source() or {}
            self._config = dict(CONFIG_DEFAULTS,
                                **{k: v for k, v in raw.items() if v is not None})
        return self._config[key]

    def _duration(self, key: str) -> float:
        try:
            return parse_duration_days(self._conf(key))
        except ValueError as exc:
            raise ValueError(f"{key}: {exc}") from None

    @property
    def certificate_lifetime_days(self) -> float:
        """Raises ValueError (naming the option) when the config is not a bounded duration."""
        return self._duration("tls_certificate_lifetime")

    @property
    def ca_lifetime_days(self) -> float:
        """Raises ValueError (naming the option) when the config is not a bounded duration."""
        return self._duration("tls_ca_lifetime")

    @property
    def renew_fraction(self) -> float:
        return float(self._conf("tls_renew_fraction"))

    @property
    def ca_rollover_fraction(self) -> float:
        return float(self._conf("tls_ca_rollover_fraction"))

    def _extra_san_entries(self) -> List[str]:
        return str(self._conf("tls_extra_sans") or "").replace(",", " ").split()

    @property
    def permitted_names_text(self) -> str:
        """The ``tls_permitted_names`` value as configured (text)."""
        return str(self._conf("tls_permitted_names") or "")

    @property
    def namespace(self) -> namespace.Namespace:
        """The names the CA may vouch for (``tls_permitted_names``). While the value is
        refused (``problem()`` then blocks, and the leader signs nothing) the default
        ``auto``: never wider than what the operator wrote or the default."""
        text = self.permitted_names_text
        cached = getattr(self, "_namespace_cache", None)
        if cached is not None and cached[0] == text:
            return cached[1]  # parsed once per hook: the signer asks for it per unit
        try:
            parsed = namespace.parse(text)
        except namespace.NamespaceError:
            parsed = namespace.parse(namespace.DEFAULT)
        self._namespace_cache = (text, parsed)
        return parsed

    def _extra_sans_problem(self, entries: List[str]) -> Optional[str]:
        problem = extra_sans_problem(entries)
        if problem:
            return problem
        permitted = self.namespace
        for entry in entries:
            if not permitted.permits(entry):
                return f"{entry!r} is outside tls_permitted_names"
        return None

    @property
    def extra_sans(self) -> List[str]:
        """The ``tls_extra_sans`` entries, or none at all while one of them is refused
        (``problem()`` then blocks): never a partial list, never a bad name, never a name
        outside ``tls_permitted_names`` (under the CA's name constraints one outside name
        would make clients refuse the whole certificate)."""
        entries = self._extra_san_entries()
        return [] if self._extra_sans_problem(entries) else entries

    @property
    def root_certificate(self) -> str:
        return str(self._conf("root_certificate") or "")

    @property
    def ca_secret(self) -> str:
        """The ``tls_ca_secret`` value (the URI of the operator's CA secret), stripped;
        "" when unset. Not checked here: reading the secret checks everything."""
        value = self._conf("tls_ca_secret")
        return value.strip() if isinstance(value, str) else ""

    def problem(self) -> Optional[str]:
        """A configuration error to show as blocked, or None."""
        try:
            leaf, ca = self.certificate_lifetime_days, self.ca_lifetime_days
        except ValueError as exc:
            return f"invalid config: {exc}"
        if ca < 2 * leaf:
            return "tls_ca_lifetime must be at least twice tls_certificate_lifetime"
        for name in ("tls_renew_fraction", "tls_ca_rollover_fraction"):
            try:
                value = float(self._conf(name))
            except (TypeError, ValueError):
                return f"{name} must be a number between 0.1 and 0.95"
            if not 0.1 <= value <= 0.95:  # also refuses NaN
                return f"{name} must be between 0.1 and 0.95"
        problem = namespace.problem(self.permitted_names_text)
        if problem:
            return f"invalid config: tls_permitted_names: {problem}"
        problem = self._extra_sans_problem(self._extra_san_entries())
        if problem:
            return f"invalid config: tls_extra_sans: {problem}"
        return None


def load() -> Settings:
    """Settings of this hook: ``charms.layer.options`` (layer:basic) and ``hookenv.config``
    (read only if a config value is used)."""
    from charmhelpers.core import hookenv
    from charms.layer import options

    return Settings(options.get("tls") or {}, lambda: dict(hookenv.config()),
                    hookenv.charm_dir(), hookenv.application_name())
