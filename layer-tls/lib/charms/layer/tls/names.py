"""The names a unit puts in its CSR: its addresses, host names and the extra SANs.

Addresses come from ``network-get`` on the peer endpoint (ingress and bind addresses) and
``unit-get private-address`` (through charmhelpers); host names from the machine; extra
SANs from the legacy unitdata ``extra_sans`` list (per unit) and the ``tls_extra_sans``
config (application-wide). Names outside ``tls_permitted_names`` are left out: the signer
would refuse them, and under the CA's name constraints one such name would make clients
refuse the whole certificate (a single-label host name, a public address).
The result is sorted and deduplicated so that the order never causes a reissue.
"""
from __future__ import annotations

import json
import socket
import subprocess
from typing import Callable, Iterable, List, NamedTuple, Optional

from .sans import is_valid_dns_name, split_names

# Every machine has these: claiming them would clash with every other unit.
MACHINE_LOCAL = frozenset({"localhost", "localhost.localdomain", "127.0.0.1", "::1"})


class UnitNames(NamedTuple):
    dns_names: List[str]
    ip_addresses: List[str]

    @property
    def as_dict(self) -> dict:
        return {"dns": self.dns_names, "ips": self.ip_addresses}


def _network_get(endpoint: str) -> object:
    """``network-get <endpoint>`` as JSON. Called directly, not through charmhelpers'
    ``network_get``, which first runs ``jujud version`` (a process per call) to refuse
    Juju < 2.2; this layer needs Juju 2.9 or later anyway."""
    out = subprocess.check_output(["network-get", endpoint, "--format", "json"],
                                  stderr=subprocess.DEVNULL)
    return json.loads(out.decode("utf-8", "replace"))


def network_addresses(endpoint: str) -> List[str]:
    """Ingress and bind addresses of ``endpoint`` plus the unit's private address."""
    from charmhelpers.core import hookenv

    found: List[str] = []
    try:
        info = _network_get(endpoint) or {}
    except Exception as exc:  # noqa: BLE001 - OSError, CalledProcessError, bad JSON...
        hookenv.log(f"layer:tls: network-get {endpoint} failed ({type(exc).__name__})",
                    hookenv.WARNING)
        info = {}
    if isinstance(info, dict):
        ingress = info.get("ingress-addresses")
        found += [a for a in ingress if isinstance(a, str)] if isinstance(ingress, list) else []
        bindings = info.get("bind-addresses")
        for binding in bindings if isinstance(bindings, list) else []:
            if not isinstance(binding, dict):
                continue
            addresses = binding.get("addresses")
            for address in addresses if isinstance(addresses, list) else []:
                value = address.get("value") if isinstance(address, dict) else None
                if isinstance(value, str):
                    found.append(value)
    try:
        private = hookenv.unit_private_ip()
    except Exception as exc:  # noqa: BLE001 - unit-get failed: the addresses above remain
        hookenv.log(f"layer:tls: unit-get private-address failed ({type(exc).__name__})",
                    hookenv.WARNING)
        private = None
    if isinstance(private, str) and private:
        found.append(private)
    return found


def host_names() -> List[str]:
    """The machine's host name and FQDN."""
    return [socket.gethostname(), socket.getfqdn()]


def unit_names(addresses: Iterable[str], hostnames: Iterable[str],
               unit_extra_sans: Iterable[str], shared_extra_sans: Iterable[str], *,
               permits: Optional[Callable[[str], bool]] = None) -> UnitNames:
    """Combine and normalise: sorted, deduplicated, without machine-local names, without
    host names that are not valid DNS names and without names ``permits`` refuses (the
    ``tls_permitted_names`` namespace; None permits all): the signer would refuse them."""
    def keep(name: str) -> bool:
        return name not in MACHINE_LOCAL and (permits is None or permits(name))

    dns_names, ips = split_names(list(addresses) + list(hostnames) + list(unit_extra_sans) +
                                 list(shared_extra_sans))
    return UnitNames(sorted({d for d in dns_names if is_valid_dns_name(d) and keep(d)}),
                     sorted({i for i in ips if keep(i)}))
