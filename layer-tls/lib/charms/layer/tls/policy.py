"""The signer's policy: check an untrusted CSR before the leader issues anything for it.

Juju authenticates one thing: which unit owns a relation data bag. So a CSR read from unit
U's bag is treated as hostile input. It is accepted only when it is a single well-formed
PEM block under the size cap, proves possession of an allowed key, asks only for DNS/IP
names that U may claim and no other unit holds, and does not reuse the CA's or another
unit's key. Every failure, including any exception while parsing, becomes a
``CSRRejected`` with a stable ``code`` and a reason safe to log and show in a status.

Pure functions over ``cryptography``; no Juju imports.
"""
from __future__ import annotations

import base64
import binascii
import datetime
import ipaddress
import re
from typing import AbstractSet, Iterable, List, NamedTuple, Optional, Union

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

from . import pki
from .namespace import Namespace
from .sans import MAX_CSR_BYTES, is_valid_dns_name

ALLOWED_SIGNATURE_HASHES = (hashes.SHA256, hashes.SHA384, hashes.SHA512)
_PEM_BLOCK = re.compile(
    rb"\A\s*-----BEGIN CERTIFICATE REQUEST-----\r?\n"
    rb"(?P<body>(?:[A-Za-z0-9+/=]{1,76}\r?\n)+)"
    rb"-----END CERTIFICATE REQUEST-----\s*\Z")


class CSRRejected(Exception):
    """A CSR the signer refuses. ``code`` is stable (for tests and status); ``reason`` is
    one human line that never contains key material. ``name``: the DNS name or address the
    refusal is about, when there is one (the signer names its holder for ``name-taken``)."""

    def __init__(self, code: str, reason: str, name: Optional[str] = None) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason
        self.name = name


class Claims(NamedTuple):
    """What the requesting unit may put in its certificate, from the caller's knowledge.

    ``allowed_*``: names the unit may claim (its addresses, hostnames, the application's
    configured extra SANs). ``taken_*``: names held or claimed by other units.
    ``forbidden_key_fingerprints``: SPKI fingerprints (``pki.public_key_fingerprint``) of the
    CA's key and of other units' certificates. ``namespace``: the names the application's
    CA may vouch for (``tls_permitted_names``); None permits every name. Any container
    works (the leader's batch passes views so that N units cost O(N), not O(N^2)); names
    must be normalised as ``build`` does: lowercase DNS without a trailing dot, canonical IP text.
    """

    allowed_dns: AbstractSet[str] = frozenset()
    allowed_ips: AbstractSet[str] = frozenset()
    taken_dns: AbstractSet[str] = frozenset()
    taken_ips: AbstractSet[str] = frozenset()
    forbidden_key_fingerprints: AbstractSet[str] = frozenset()
    namespace: Optional[Namespace] = None

    @classmethod
    def build(cls, allowed_dns: Iterable[str] = (), allowed_ips: Iterable[str] = (),
              taken_dns: Iterable[str] = (), taken_ips: Iterable[str] = (),
              forbidden_key_fingerprints: Iterable[str] = (),
              namespace: Optional[Namespace] = None) -> Claims:
        """Normalise the names (lowercase DNS, canonical IP text) into a Claims."""
        return cls(frozenset(d.lower().rstrip(".") for d in allowed_dns),
                   frozenset(_canonical_ips(allowed_ips)),
                   frozenset(d.lower().rstrip(".") for d in taken_dns),
                   frozenset(_canonical_ips(taken_ips)),
                   frozenset(forbidden_key_fingerprints), namespace)


class CheckedCSR(NamedTuple):
    """A CSR that passed the policy: what the signer may issue for."""

    public_key: pki.PublicKey
    dns_names: List[str]
    ip_addresses: List[str]
    key_fingerprint: str


def _canonical_ips(values: Iterable[str]) -> List[str]:
    out = []
    for value in values:
        try:
            out.append(str(ipaddress.ip_address(value)))
        except ValueError:
            continue  # a caller-supplied non-address cannot match any SAN; skip it
    return out


def _structure(pem: Union[str, bytes]) -> bytes:
    """DER of the single CERTIFICATE REQUEST block, or CSRRejected.

    cryptography's loader accepts text before the block, trailing junk, a second block and
    PEM headers, so the structure is checked here first.
    """
    if isinstance(pem, str):
        try:
            pem = pem.encode("ascii")
        except UnicodeEncodeError:
            raise CSRRejected("pem-structure", "the CSR contains non-ASCII text") from None
    if len(pem) > MAX_CSR_BYTES:
        raise CSRRejected("too-large", f"the CSR is {len(pem)} bytes, over {MAX_CSR_BYTES}")
    match = _PEM_BLOCK.match(pem)
    if not match:
        raise CSRRejected(
            "pem-structure",
            "not exactly one CERTIFICATE REQUEST PEM block (wrong label, headers, extra "
            "text, a second block or truncated)")
    try:
        return base64.b64decode(b"".join(match.group("body").split()), validate=True)
    except (binascii.Error, ValueError):
        raise CSRRejected("pem-structure", "the PEM body is not valid base64") from None


def _check_key(public_key: object) -> None:
    if isinstance(public_key, rsa.RSAPublicKey):
        if not 2048 <= public_key.key_size <= 4096:
            raise CSRRejected("key-type", f"RSA-{public_key.key_size} key (allowed: 2048-4096)")
        if public_key.public_numbers().e != 65537:
            raise CSRRejected("key-type", "RSA public exponent other than 65537")
        return
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if public_key.curve.name not in ("secp256r1", "secp384r1"):
            raise CSRRejected("key-type", f"EC curve {public_key.curve.name} "
                                          "(allowed: P-256, P-384)")
        return
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return
    if isinstance(public_key, ed448.Ed448PublicKey):
        raise CSRRejected("key-type", "Ed448 keys are not accepted")
    if isinstance(public_key, dsa.DSAPublicKey):
        raise CSRRejected("key-type", "DSA keys are not accepted")
    raise CSRRejected("key-type", f"unsupported key type {type(public_key).__name__}")


def _check_signature(csr: x509.CertificateSigningRequest, public_key: object) -> None:
    if not isinstance(public_key, ed25519.Ed25519PublicKey):
        try:
            algorithm = csr.signature_hash_algorithm
        except UnsupportedAlgorithm:  # MD4 and other hashes cryptography does not know
            raise CSRRejected("weak-signature", "unsupported signature hash") from None
        if not isinstance(algorithm, ALLOWED_SIGNATURE_HASHES):
            name = algorithm.name if algorithm is not None else "none"
            raise CSRRejected("weak-signature", f"signature hash {name} (allowed: SHA-2)")
    if not csr.is_signature_valid:
        raise CSRRejected("bad-signature", "the CSR signature does not verify")


def _requested_names(csr: x509.CertificateSigningRequest) -> tuple[List[str], List[str]]:
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        raise CSRRejected("no-names", "the CSR asks for no subjectAltName") from None
    dns_names: List[str] = []
    ips: List[str] = []
    for name in san:
        if isinstance(name, x509.DNSName):
            dns_names.append(_check_dns_name(name.value))
        elif isinstance(name, x509.IPAddress):
            if not isinstance(name.value, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
                raise CSRRejected("san-type", "an IP network is not an address")
            ips.append(str(name.value))
        else:
            kind = type(name).__name__
            raise CSRRejected("san-type", f"{kind} subjectAltName entries are not accepted")
    if not dns_names and not ips:
        raise CSRRejected("no-names", "the CSR's subjectAltName is empty")
    return sorted(set(dns_names)), sorted(set(ips))


def _check_dns_name(value: str) -> str:
    name = value.lower().rstrip(".")
    if "*" in name:
        raise CSRRejected("wildcard", f"wildcard name {value!r}")
    if not is_valid_dns_name(name):
        raise CSRRejected("bad-name", f"{value[:80]!r} is not a valid DNS name")
    return name


def _check_namespace(names: List[str], space: Namespace, code: str, where: str) -> None:
    for name in names:
        if not space.permits(name):
            raise CSRRejected(code, f"{name} is outside {where}", name)


def _check_claims(dns_names: List[str], ips: List[str], claims: Claims) -> None:
    if claims.namespace is not None:
        # first: no unit may hold an outside name, whatever it claims
        _check_namespace(dns_names + ips, claims.namespace, "outside-namespace",
                         "tls_permitted_names")
    for name in dns_names:
        if name in claims.taken_dns:
            raise CSRRejected("name-taken", f"{name} is held by another unit", name)
        if name not in claims.allowed_dns:
            raise CSRRejected("name-not-allowed", f"{name} is not a name this unit may claim")
    for ip in ips:
        if ip in claims.taken_ips:
            raise CSRRejected("name-taken", f"{ip} is held by another unit", ip)
        if ip not in claims.allowed_ips:
            raise CSRRejected("name-not-allowed", f"{ip} is not an address of this unit")


def check_csr(pem: Union[str, bytes], claims: Claims) -> CheckedCSR:
    """Check an untrusted CSR against the policy; return what may be issued for it.

    Raises CSRRejected, and only that, whatever the input.
    """
    der = _structure(pem)
    try:
        csr = x509.load_der_x509_csr(der)
        public_key = csr.public_key()
        _check_key(public_key)
        _check_signature(csr, public_key)
        dns_names, ips = _requested_names(csr)
    except CSRRejected:
        raise
    except Exception as exc:  # noqa: BLE001 - hostile input: any parser error is a rejection
        raise CSRRejected("unparseable", f"cannot read the CSR ({type(exc).__name__})") from None
    fingerprint = pki.public_key_fingerprint(public_key)  # type: ignore[arg-type]
    if fingerprint in claims.forbidden_key_fingerprints:
        raise CSRRejected("key-reused", "the CSR's key is the CA's or another unit's key")
    _check_claims(dns_names, ips, claims)
    return CheckedCSR(public_key, dns_names, ips, fingerprint)  # type: ignore[arg-type]


def sign_csr(ca: pki.CertificateAuthority, pem: Union[str, bytes], claims: Claims, *,
             unit_name: str, lifetime_days: float = 365,
             now: Optional[datetime.datetime] = None) -> x509.Certificate:
    """Check ``pem`` for ``unit_name`` and issue its certificate (subject CN = unit name).

    Raises CSRRejected for a bad CSR (including one for the CA's own key, checked here so a
    caller cannot forget it) and pki.PKIError when the CA cannot sign (e.g. expired).
    """
    checked = check_csr(pem, claims)
    if checked.key_fingerprint == ca.key_fingerprint:
        raise CSRRejected("key-reused", "the CSR's key is the CA's or another unit's key")
    # A name outside the CA's own constraints would make clients refuse the whole
    # certificate: say so instead of issuing it (tls_permitted_names widened since the
    # CA was made; rotate-ca makes a CA for the current namespace).
    _check_namespace(checked.dns_names + checked.ip_addresses,
                     pki.name_constraints_of(ca.certificate), "outside-ca-constraints",
                     "the CA's name constraints (run the rotate-ca action)")
    return pki.issue_certificate(ca, checked.public_key, common_name=unit_name,
                                 dns_names=checked.dns_names,
                                 ip_addresses=checked.ip_addresses,
                                 lifetime_days=lifetime_days, now=now)
