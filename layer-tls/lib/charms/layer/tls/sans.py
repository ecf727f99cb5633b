"""Subject alternative names as text: classify and validate DNS names and IP addresses.

No ``cryptography`` here: the names module uses it on the hook path (update-status checks
a unit's names), where loading cryptography would cost tens of milliseconds for nothing.
"""
from __future__ import annotations

import ipaddress
import re
from typing import Iterable, List, Tuple

_DNS_LABEL = re.compile(r"\A(?!-)[a-z0-9-]{1,63}(?<!-)\Z")


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
