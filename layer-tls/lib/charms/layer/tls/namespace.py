"""The names the application's CA may vouch for: the ``tls_permitted_names`` config.

Juju vouches only that a unit wrote its own relation data, not for what the unit says about
itself; and the CA sits in every unit's system trust store. So the layer bounds the names
it certifies: DNS domains (each permits itself and every name under it) and IP networks.
``auto`` is the private-use namespace; ``any`` (alone) lifts the bound.

The same namespace becomes the X.509 name constraints of a CA the leader makes (pki), so
that even a stolen CA key cannot make TLS clients trust an outside name.

Pure and crypto-free: units filter their own names with it on the hook path.
"""
from __future__ import annotations

import ipaddress
from typing import Iterable, List, NamedTuple, Tuple, Union

from .sans import is_valid_dns_name

Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]

AUTO_DOMAINS = ("internal", "local", "localdomain", "lan", "home.arpa", "lxd", "maas")
AUTO_NETWORKS = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
DEFAULT = "auto"
# Bounds on the config: every entry becomes a subtree of the CA's name constraints.
MAX_ENTRIES = 64
MAX_TEXT = 4096


class NamespaceError(ValueError):
    """A ``tls_permitted_names`` value that cannot be used; the message names the entry."""


def _shown(entry: str) -> str:
    return repr(entry) if len(entry) <= 40 else f"{entry[:32]!r}... ({len(entry)} chars)"


def _in_domain(name: str, domain: str) -> bool:
    """RFC 5280 DNS subtree matching: the domain itself and every name under it; an empty
    domain matches every name; a leading dot (foreign CAs) only the names under it."""
    if not domain:
        return True
    if domain.startswith("."):
        return name.endswith(domain)
    return name == domain or name.endswith("." + domain)


class Namespace(NamedTuple):
    """DNS domains and IP networks; ``unbounded`` (the ``any`` entry) permits every name."""

    dns_domains: Tuple[str, ...] = ()
    networks: Tuple[Network, ...] = ()
    unbounded: bool = False

    def permits(self, name: object) -> bool:
        """True when ``name`` (a DNS name or an IP address, as text) is in the namespace.
        Anything else (not text, empty, neither a name nor an address) is not."""
        if self.unbounded:
            return True
        if not isinstance(name, str) or not name.strip():
            return False
        name = name.strip()
        try:
            ip = ipaddress.ip_address(name)
        except ValueError:
            ip = None
        if ip is not None:
            return any(ip.version == n.version and ip in n for n in self.networks)
        dns = name.lower().rstrip(".")
        return bool(dns) and any(_in_domain(dns, d) for d in self.dns_domains)

    def not_within(self, other: Namespace) -> List[str]:
        """The entries of this namespace that ``other`` does not wholly permit (as text):
        what a CA constrained to ``other`` could not vouch for."""
        if other.unbounded:
            return []
        if self.unbounded:
            return ["any"]
        outside = [d for d in self.dns_domains
                   if not any(_in_domain(d, o) for o in other.dns_domains)]
        outside += [str(n) for n in self.networks
                    if not any(n.version == o.version and n.subnet_of(o)  # type: ignore[arg-type]
                               for o in other.networks)]
        return outside

    def describe(self) -> str:
        """The namespace as config text (entries space-separated)."""
        if self.unbounded:
            return "any"
        return " ".join(list(self.dns_domains) + [str(n) for n in self.networks])


ANY = Namespace(unbounded=True)


def _entry(entry: str) -> Union[str, Network]:
    """One entry as a DNS domain (normalised text) or a network; NamespaceError naming it."""
    shown = _shown(entry)
    if not entry.isascii():
        raise NamespaceError(f"{shown} is not ASCII (write an international domain in its "
                             "xn-- form)")
    if "*" in entry:
        raise NamespaceError(f"{shown} is a wildcard; write the domain (it permits every "
                             "name under it)")
    if "/" in entry or ":" in entry or entry.replace(".", "").isdigit():
        try:
            return ipaddress.ip_network(entry, strict=True)
        except ValueError as exc:
            why = "has host bits set" if "host bits" in str(exc) else "is not an IP network"
            raise NamespaceError(f"{shown} {why} (write a network like 10.0.0.0/8 or "
                                 "a single address)") from None
    domain = entry.lower().rstrip(".")
    if entry.startswith(".") or not is_valid_dns_name(domain):
        raise NamespaceError(f"{shown} is not a DNS domain, an IP network, auto or any")
    return domain


def parse(text: object) -> Namespace:
    """Parse a ``tls_permitted_names`` value: space- or comma-separated entries, each a DNS
    domain, an IP network (CIDR) or a single address, ``auto``; or ``any`` alone. Raises
    NamespaceError (naming the entry) for anything else, including an empty value."""
    text = "" if text is None else str(text)
    if len(text) > MAX_TEXT:
        raise NamespaceError(f"the value is {len(text)} characters, over {MAX_TEXT}")
    entries = text.replace(",", " ").split()
    if not entries:
        raise NamespaceError("no entry (write auto for the private-use names, or the "
                             "domains and networks to permit)")
    if len(entries) > MAX_ENTRIES:
        raise NamespaceError(f"{len(entries)} entries, over {MAX_ENTRIES}")
    if any(e.lower() == "any" for e in entries):
        if len(entries) != 1:
            raise NamespaceError("'any' must be the only entry (it permits every name)")
        return ANY
    domains: List[str] = []
    networks: List[Network] = []
    for entry in entries:
        parts: Iterable[Union[str, Network]]
        if entry.lower() == "auto":
            parts = list(AUTO_DOMAINS) + [ipaddress.ip_network(n) for n in AUTO_NETWORKS]
        else:
            parts = [_entry(entry)]
        for part in parts:
            if isinstance(part, str):
                if part not in domains:
                    domains.append(part)
            elif part not in networks:
                networks.append(part)
    return Namespace(tuple(domains), tuple(networks))


def problem(text: object) -> str:
    """Why ``text`` is not a usable ``tls_permitted_names`` value, or ''."""
    try:
        parse(text)
    except NamespaceError as exc:
        return str(exc)
    return ""
