"""Subject alternative names as text: classify and validate DNS names and IP addresses.

No ``cryptography`` here: the names module uses it on the hook path (update-status checks
a unit's names), where loading cryptography would cost tens of milliseconds for nothing.
"""
from __future__ import annotations

import ipaddress
import re
from typing import Iterable, List, Optional, Sequence, Tuple

_DNS_LABEL = re.compile(r"\A(?!-)[a-z0-9-]{1,63}(?<!-)\Z")
# The signer refuses a CSR over this size (policy.MAX_CSR_BYTES); kept here, crypto-free,
# for the checks on the hook path.
MAX_CSR_BYTES = 16 * 1024
# DER bytes the configured extra SANs may take in a CSR: what is left of MAX_CSR_BYTES
# (about 12 kB of DER once base64 and line breaks are counted) after an RSA-4096 key and
# signature, the subject and the unit's own names, with room to spare.
EXTRA_SANS_DER_BUDGET = 8192
MACHINE_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain"})


def is_valid_dns_name(name: str) -> bool:
    """A host name of LDH labels (lowercase, no trailing dot), at most 253 characters."""
    return bool(name) and len(name) <= 253 and all(_DNS_LABEL.match(p) for p in name.split("."))


def split_names(names: Iterable[str]) -> Tuple[List[str], List[str]]:
    """Split free-form SANs into (DNS names lowercased without a trailing dot, IP
    addresses in canonical text), dropping blanks."""
    dns_names, ips = [], []
    for name in names:
        name = name.strip()
        if not name:
            continue
        try:
            ips.append(str(ipaddress.ip_address(name)))
        except ValueError:
            dns_names.append(name.lower().rstrip("."))
    return dns_names, ips


def _shown(entry: str) -> str:
    return repr(entry) if len(entry) <= 40 else f"{entry[:32]!r}... ({len(entry)} chars)"


def _der_size(length: int) -> int:
    """Bytes of a DER GeneralName holding ``length`` bytes (tag, length, value)."""
    return 1 + (1 if length < 128 else 2 if length < 256 else 3) + length


def extra_san_problem(entry: str) -> Optional[str]:
    """Why ``entry`` cannot be an extra subject alternative name, or None. The reason
    names the entry (shortened when long) so an operator can find it."""
    shown = _shown(entry)
    if not entry.isascii():
        return f"{shown} is not ASCII (write an international name in its xn-- form)"
    if "*" in entry:
        return f"{shown} is a wildcard; certificates carry no wildcard names"
    if "/" in entry:
        try:
            ipaddress.ip_network(entry, strict=False)
            return f"{shown} is a network; only single addresses can be certified"
        except ValueError:
            return f"{shown} is not a DNS name or an IP address"
    try:
        ip = ipaddress.ip_address(entry)
    except ValueError:
        ip = None
    if ip is not None:
        if ip.is_unspecified:
            return f"{shown} is the unspecified address (it means any host)"
        if ip.is_loopback:
            return f"{shown} is a loopback address, which every machine has"
        if ip.is_multicast or str(ip) == "255.255.255.255":
            return f"{shown} is a multicast or broadcast address"
        return None
    name = entry.lower().rstrip(".")
    if name in MACHINE_LOCAL_NAMES:
        return f"{shown} is a machine-local name, which every machine has"
    if len(name) > 253:
        return f"{shown} is longer than 253 characters"
    long_label = [label for label in name.split(".") if len(label) > 63]
    if long_label:
        return f"{shown} has a label longer than 63 characters"
    if not is_valid_dns_name(name):
        return (f"{shown} is not a valid DNS name (letters, digits and hyphens in "
                "dot-separated labels)")
    return None


def extra_sans_problem(entries: Sequence[str]) -> Optional[str]:
    """The first problem with a list of configured extra SANs (an entry that is not a
    usable name, or the entry from which they no longer fit in a certificate request),
    or None."""
    used = 0
    for entry in entries:
        problem = extra_san_problem(entry)
        if problem:
            return problem
        try:
            used += 6 if ipaddress.ip_address(entry).version == 4 else 18
        except ValueError:
            used += _der_size(len(entry.rstrip(".")))
        if used > EXTRA_SANS_DER_BUDGET:
            return (f"too many names: from {_shown(entry)} on they do not fit in a "
                    f"certificate request (at most {MAX_CSR_BYTES} bytes)")
    return None
