"""The leader's batch: check and sign every pending CSR of the application in one pass.

Pure: it takes what the relation holds (CSRs, the names each unit claims, the certificates
already issued) and returns new certificates and rejections; the caller publishes them in
one write. What a unit may claim and what other units hold are derived here, so the policy
gets them right for every unit of the batch.
"""
from __future__ import annotations

import datetime
from typing import AbstractSet, Dict, Iterable, List, Mapping, NamedTuple, Optional, Sequence, Tuple

from . import pki, policy
from .namespace import Namespace
from .sans import split_names


class Rejection(NamedTuple):
    code: str
    reason: str


class BatchResult(NamedTuple):
    certificates: Dict[str, str]   # unit -> certificate PEM
    rejections: Dict[str, Rejection]


class _HeldByOthers:
    """``name in view``: some unit other than ``unit`` holds ``name`` (shared names aside).

    One index of holders serves every unit of the batch, so checking N units costs O(N)."""

    __slots__ = ("holders", "unit", "shared")

    def __init__(self, holders: Mapping[str, set], unit: str, shared: AbstractSet[str]) -> None:
        self.holders, self.unit, self.shared = holders, unit, shared

    def __contains__(self, name: object) -> bool:
        return bool(self.others(name))

    def others(self, name: object) -> List[str]:
        """The units other than ``unit`` that hold ``name`` (none for a shared name)."""
        if name in self.shared:
            return []
        units = self.holders.get(name, ())  # type: ignore[call-overload]
        return sorted(u for u in units if u != self.unit)


def _claimed_names(unit_claims: Mapping[str, Sequence[str]]) -> Tuple[List[str], List[str]]:
    return split_names(list(unit_claims.get("hostnames", ())) +
                       list(unit_claims.get("addresses", ())))


def sign_batch(ca: pki.CertificateAuthority, pending: Mapping[str, str],
               claims: Mapping[str, Mapping[str, Sequence[str]]],
               issued: Mapping[str, str], shared_names: Sequence[str] = (), *,
               namespace: Optional[Namespace] = None, lifetime_days: float = 365,
               now: Optional[datetime.datetime] = None) -> BatchResult:
    """Sign ``pending`` (unit -> CSR PEM).

    ``claims``: unit -> {"hostnames": [...], "addresses": [...]} for every unit of the
    application (what each unit says it is; Juju vouches only that it wrote its own bag),
    with ``"ignored"``: [...] when the interface left unreadable claims out (named in the
    refusal of a name the unit may then not claim).
    ``issued``: unit -> certificate PEM currently published. ``shared_names``: the
    application's configured extra SANs, which every unit may carry. ``namespace``: the
    names the CA may vouch for (``tls_permitted_names``; None permits all): a CSR with any
    name outside is refused (``outside-namespace``), whatever the unit claims.
    A unit may claim its own names and the shared names; never a name another unit claims
    or holds (except a shared one), nor another unit's or the CA's key.
    """
    shared_dns, shared_ips = split_names(shared_names)
    shared = frozenset(shared_dns) | frozenset(shared_ips)
    holders: Dict[str, set] = {}   # name (DNS or IP) -> units claiming or holding it
    key_holders: Dict[str, set] = {}  # key fingerprint -> units whose certificate has it

    def hold(unit: str, names: Iterable[str]) -> None:
        for name in names:
            holders.setdefault(name, set()).add(unit)

    for unit, unit_claims in claims.items():
        dns_names, ips = _claimed_names(unit_claims)
        hold(unit, dns_names + ips)
    for unit, pem in issued.items():
        try:
            cert = pki.load_certificate(pem)
        except pki.PKIError:
            continue  # an unreadable published certificate holds nothing; it gets replaced
        dns_names, ips = pki.certificate_names(cert)
        hold(unit, dns_names + ips)
        key_holders.setdefault(pki.public_key_fingerprint(cert.public_key()), set()).add(unit)

    certificates: Dict[str, str] = {}
    rejections: Dict[str, Rejection] = {}
    for unit in sorted(pending):
        own_dns, own_ips = _claimed_names(claims.get(unit, {}))
        taken = _HeldByOthers(holders, unit, shared)
        unit_claims = policy.Claims(
            allowed_dns=frozenset(own_dns + shared_dns),
            allowed_ips=frozenset(own_ips + shared_ips),
            taken_dns=taken, taken_ips=taken,  # type: ignore[arg-type]
            forbidden_key_fingerprints=_HeldByOthers(key_holders, unit, frozenset()),
            namespace=namespace)
        try:
            cert = policy.sign_csr(ca, pending[unit], unit_claims, unit_name=unit,
                                   lifetime_days=lifetime_days, now=now)
        except policy.CSRRejected as exc:
            reason = exc.reason
            ignored = claims.get(unit, {}).get("ignored")
            if exc.code == "name-taken" and exc.name is not None:
                # name the holder: the operator's lead to a squatter (or a stale claim)
                holding = taken.others(exc.name)
                if holding:
                    reason = f"{exc.name} is held by {', '.join(holding[:3])}"
            elif exc.code == "name-not-allowed" and ignored:
                # say why the name is not allowed: the unit's own claims were unreadable
                reason += "; ignored from its relation data: " + ", ".join(
                    str(i) for i in list(ignored)[:3])
            rejections[unit] = Rejection(exc.code, reason)
            continue
        except pki.PKIError as exc:  # the CA cannot issue it (e.g. no name left)
            rejections[unit] = Rejection("cannot-issue", str(exc))
            continue
        certificates[unit] = pki.certificate_to_pem(cert)
        dns_names, ips = pki.certificate_names(cert)
        hold(unit, dns_names + ips)
        key_holders.setdefault(pki.public_key_fingerprint(cert.public_key()), set()).add(unit)
    return BatchResult(certificates, rejections)
