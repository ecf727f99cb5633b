"""Pure CRL functions over ``cryptography``: build a CA's CRL, verify one, know when to renew.

No Juju imports and no I/O. The leader builds one CRL per CA in the bundle (keyed by the
CA's subject key identifier, hex); every unit verifies each published CRL against the CA it
names before writing it for its workload. A CRL is valid from ``now - BACKDATE`` (peers with
slightly slow clocks accept it) until ``now + LIFETIME``, never after its CA.
"""
from __future__ import annotations

import datetime
from typing import Iterable, List, NamedTuple, Optional

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from . import pki

LIFETIME = datetime.timedelta(days=7)
MAX_CRL_CHARS = 65536  # the interface's bound on a PEM value
# RFC 5280 5.3.1 reason names (the action's ``reason`` parameter) -> cryptography's flags
# (removeFromCRL belongs to delta CRLs only)
REASONS = {flag.value: flag for flag in x509.ReasonFlags
           if flag is not x509.ReasonFlags.remove_from_crl}
DEFAULT_REASON = "unspecified"


class Revoked(NamedTuple):
    """A certificate to list: its serial, when it was revoked, the RFC 5280 reason name."""

    serial: int
    revoked_at: datetime.datetime
    reason: str = DEFAULT_REASON


def reason_problem(reason: object) -> Optional[str]:
    """Why ``reason`` is not an RFC 5280 reason name, or None."""
    if isinstance(reason, str) and reason in REASONS:
        return None
    return f"reason must be one of {', '.join(sorted(REASONS))}"


def key_id_hex(ca_cert: x509.Certificate) -> Optional[str]:
    """The CA's subject key identifier as hex: the key of its CRL in the relation data."""
    ski = pki.subject_key_id(ca_cert)
    return ski.hex() if ski else None


def build_crl(ca: pki.CertificateAuthority, revoked: Iterable[Revoked], number: int, *,
              now: Optional[datetime.datetime] = None,
              lifetime: datetime.timedelta = LIFETIME) -> x509.CertificateRevocationList:
    """A CRL signed by ``ca`` listing ``revoked``: thisUpdate now (backdated), nextUpdate
    ``lifetime`` later but never after the CA expires, CRL number ``number``, the CA's key
    id as authority key identifier. Raises PKIError when the CA cannot sign now."""
    now = now or pki.utcnow()
    cert = ca.certificate
    if not ca.is_valid_at(now):
        raise pki.PKIError(f"the CA is not valid now (until {cert.not_valid_after_utc}): "
                           "it cannot sign a CRL")
    this_update = max(now - pki.BACKDATE, cert.not_valid_before_utc)
    next_update = min(now + lifetime, cert.not_valid_after_utc)
    builder = (x509.CertificateRevocationListBuilder()
               .issuer_name(cert.subject)
               .last_update(this_update)
               .next_update(next_update)
               .add_extension(x509.CRLNumber(max(0, int(number))), critical=False))
    ski = pki.subject_key_id(cert)
    if ski:
        builder = builder.add_extension(x509.AuthorityKeyIdentifier(ski, None, None),
                                        critical=False)
    seen = set()
    for entry in sorted(revoked, key=lambda r: r.serial):
        if entry.serial in seen or entry.serial <= 0:
            continue
        seen.add(entry.serial)
        item = (x509.RevokedCertificateBuilder().serial_number(entry.serial)
                .revocation_date(min(entry.revoked_at, next_update)))
        flag = REASONS.get(entry.reason)
        if flag is not None and flag is not x509.ReasonFlags.unspecified:
            item = item.add_extension(x509.CRLReason(flag), critical=False)
        builder = builder.add_revoked_certificate(item.build())
    return builder.sign(ca.private_key, pki._signature_hash(ca.private_key))


def crl_to_pem(crl: x509.CertificateRevocationList) -> str:
    return crl.public_bytes(serialization.Encoding.PEM).decode("ascii")


def load_crl(pem: object) -> x509.CertificateRevocationList:
    """Load one PEM CRL of bounded size; PKIError for anything else (relation data)."""
    if not isinstance(pem, str) or not pem or len(pem) > MAX_CRL_CHARS:
        raise pki.PKIError("not a PEM CRL of at most 64 KiB")
    if pem.count("-----BEGIN X509 CRL-----") != 1:
        raise pki.PKIError("not exactly one PEM CRL")
    try:
        return x509.load_pem_x509_crl(pem.encode("ascii"))
    except Exception as exc:  # noqa: BLE001 - ValueError, UnicodeError, ...
        raise pki.PKIError(f"not a usable PEM CRL: {type(exc).__name__}") from None


def crl_problem(crl: x509.CertificateRevocationList, ca_cert: x509.Certificate, *,
                now: Optional[datetime.datetime] = None) -> Optional[str]:
    """Why ``crl`` is not a valid CRL of ``ca_cert`` now (issuer, signature, dates), or
    None. A CRL past its nextUpdate is reported too (the caller decides what to do)."""
    now = now or pki.utcnow()
    try:
        if crl.issuer != ca_cert.subject:
            return "its issuer is not the CA"
        if not crl.is_signature_valid(ca_cert.public_key()):  # type: ignore[arg-type]
            return "its signature does not verify with the CA's key"
        if crl.next_update_utc is None:
            return "it has no nextUpdate"
        if crl.last_update_utc > now + pki.BACKDATE:
            return f"it is not valid before {crl.last_update_utc:%Y-%m-%d %H:%M} UTC"
        if crl.next_update_utc <= now:
            return f"it expired on {crl.next_update_utc:%Y-%m-%d %H:%M} UTC"
    except Exception as exc:  # noqa: BLE001 - a hostile CRL: any parser error is a problem
        return f"it cannot be checked ({type(exc).__name__})"
    return None


def crl_number(crl: x509.CertificateRevocationList) -> int:
    """The CRL number, 0 if it has none."""
    try:
        return int(crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number)
    except (x509.ExtensionNotFound, ValueError):
        return 0


def revoked_serials(crl: x509.CertificateRevocationList) -> List[int]:
    """The serial numbers the CRL lists, sorted."""
    return sorted(entry.serial_number for entry in crl)


def renewal_due(crl: x509.CertificateRevocationList, fraction: float, *,
                now: Optional[datetime.datetime] = None) -> bool:
    """True once ``fraction`` of the CRL's validity has passed (or it has none)."""
    now = now or pki.utcnow()
    if crl.next_update_utc is None:
        return True
    start, end = crl.last_update_utc, crl.next_update_utc
    return now >= start + (end - start) * min(max(fraction, 0.0), 1.0)


def renew_at(crl: x509.CertificateRevocationList, fraction: float) -> float:
    """When ``renewal_due`` becomes true, as epoch seconds (for a check without crypto)."""
    if crl.next_update_utc is None:
        return 0.0
    start, end = crl.last_update_utc, crl.next_update_utc
    return (start + (end - start) * min(max(fraction, 0.0), 1.0)).timestamp()
