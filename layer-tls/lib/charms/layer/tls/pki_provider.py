"""Pure PKI functions for a CA signed by a tls-certificates provider: the CA's CSR, and
the check of what the provider sent back before the application uses it.

No Juju imports and no I/O (like ``pki``, which it builds on). A provider's answer is
hostile input: ``verify_provider_ca`` never raises, whatever the PEM texts hold, and no
message it returns quotes a private key or a PEM.
"""
from __future__ import annotations

import datetime
from typing import List, NamedTuple, Optional, Sequence

from cryptography import x509
from cryptography.x509.oid import ObjectIdentifier

from . import pki
from .namespace import Namespace

# PKCS#9 unstructuredName: a CSR attribute no provider copies into the certificate. It
# holds a request id, so that a renewal CSR for the same key and subject differs from the
# one before (an RSA signature is deterministic: the CSR text would repeat, and a
# provider that already answered it would not sign it again).
_REQUEST_ID_OID = ObjectIdentifier("1.2.840.113549.1.9.2")
MAX_CHAIN = 8  # certificates looked at above ours


class ProviderCA(NamedTuple):
    """A verified CA from a provider, and what is worth telling the operator about it."""

    ca: Optional[pki.CertificateAuthority]
    problem: Optional[str]     # why it cannot be used (then ``ca`` is None)
    notes: List[str]           # usable, but e.g. without the path length asked for


def ca_csr(private_key: pki.PrivateKey, common_name: str, *, organization: Optional[str],
           namespace: Optional[Namespace], request_id: str) -> str:
    """The CSR (PEM) for the application CA: subject ``common_name`` / ``organization``,
    the namespace's name constraints when it is bounded (the charmlibs provider copies
    extensions it does not manage into the certificate; basicConstraints it sets itself,
    so none is asked for) and ``request_id`` as an attribute."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        pki._ca_name(common_name, organization))
    if namespace is not None and not namespace.unbounded:
        builder = builder.add_extension(pki.name_constraints_extension(namespace),
                                        critical=True)
    builder = builder.add_attribute(_REQUEST_ID_OID, request_id[:64].encode("ascii",
                                                                             "replace"))
    return pki.csr_to_pem(builder.sign(private_key, pki._signature_hash(private_key)))


def _order_chain(cert: x509.Certificate, others: Sequence[x509.Certificate]
                 ) -> List[x509.Certificate]:
    """The certificates of ``others`` above ``cert``, issuer first, as far as names and
    signatures link them (a provider's chain may come in any order, with ``cert``
    itself or duplicates in it)."""
    pool = [c for c in others if c != cert]
    chain: List[x509.Certificate] = []
    below = cert
    while below.issuer != below.subject and len(chain) < MAX_CHAIN:
        issuer = next((c for c in pool if c.subject == below.issuer
                       and pki._issued_by(below, c)), None)
        if issuer is None:
            break
        chain.append(issuer)
        pool.remove(issuer)
        below = issuer
    return chain


def verify_provider_ca(private_key_pem: str, certificate_pem: str, ca_pem: str,
                       chain_pems: Sequence[str], *, min_days: float,
                       now: Optional[datetime.datetime] = None) -> ProviderCA:
    """Check a provider's answer to our CA request and build the CA from it.

    Usable when: the certificate certifies our key; it is a CA (critical basicConstraints
    CA:TRUE) that may sign certificates (keyCertSign); the provider's certificates lead
    from it to a self-signed root (names, key ids, signatures, path lengths and validity
    of each link: ``pki.chain_problem``); it is valid now for at least ``min_days``; and a
    leaf it signs has its key id as AKI and verifies under the root with cryptography's
    RFC 5280 verifier. A path length other than 0 is a note, not a problem."""
    now = now or pki.utcnow()
    try:
        key = pki.load_private_key(private_key_pem)
        cert = pki.load_certificate(certificate_pem)
        others = [pki.load_certificate(p) for p in (*chain_pems, ca_pem)]
    except pki.PKIError as exc:
        return ProviderCA(None, f"unreadable: {exc}"[:200], [])
    except Exception as exc:  # noqa: BLE001 - foreign input: no shape of it may raise
        return ProviderCA(None, f"unreadable ({type(exc).__name__})", [])
    try:
        return _verify(key, cert, others, min_days, now)
    except Exception as exc:  # noqa: BLE001 - foreign input: no shape of it may raise
        return ProviderCA(None, f"does not verify ({type(exc).__name__})", [])


def _verify(key, cert, others, min_days: float, now: datetime.datetime) -> ProviderCA:
    if not pki.certificate_matches_key(cert, key):
        return ProviderCA(None, "it is not for our key", [])
    try:
        basic = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    except x509.ExtensionNotFound:
        return ProviderCA(None, "it has no basicConstraints", [])
    if not basic.value.ca or not basic.critical:
        return ProviderCA(None, "it is not a CA (critical basicConstraints CA:TRUE)", [])
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        usage = None
    if usage is None or not usage.key_cert_sign:
        return ProviderCA(None, "its key usage does not allow signing certificates", [])
    chain = _order_chain(cert, others)
    if not chain and cert.issuer != cert.subject:
        return ProviderCA(None, "its issuer is not among the certificates sent with it", [])
    if not chain:
        return ProviderCA(None, "it is self-signed, not signed by the provider", [])
    ca = pki.CertificateAuthority(cert, key, chain)
    problem = pki.ca_problem(ca, now)
    if problem:
        return ProviderCA(None, problem, [])
    left = (cert.not_valid_after_utc - now).total_seconds() / 86400
    if left < min_days:
        end = cert.not_valid_after_utc
        return ProviderCA(None, f"it is valid only until {end:%Y-%m-%d %H:%M} UTC, under "
                                f"{min_days:g} day(s) from now", [])
    probe_problem = _probe(ca, now)
    if probe_problem:
        return ProviderCA(None, probe_problem, [])
    notes = []
    if basic.value.path_length is None:
        notes.append("the provider set no path length on the CA (0 is safer)")
    elif basic.value.path_length > 0:
        notes.append(f"the provider set path length {basic.value.path_length} on the CA "
                     "(0 is safer)")
    return ProviderCA(ca, None, notes)


def _probe(ca: pki.CertificateAuthority, now: datetime.datetime) -> Optional[str]:
    """Sign a throwaway leaf as the signer would and verify it under the anchor."""
    constraints = pki.name_constraints_of(ca.certificate)
    domain = next((d for d in constraints.dns_domains if d), None)
    name = f"probe.{domain}" if domain else "probe.invalid"
    probe_key = pki.generate_private_key("ecdsa-p256")
    leaf = pki.issue_certificate(ca, probe_key.public_key(), common_name="probe",
                                 dns_names=[name], lifetime_days=1, now=now)
    if pki.authority_key_id(leaf) != pki.subject_key_id(ca.certificate):
        return "a certificate it signs would not name it by key id"
    try:
        pki.verify_certificate(leaf, [ca.anchor], dns_name=name,
                               intermediates=ca.intermediates, now=now)
    except pki.PKIError as exc:
        return f"a certificate it signs does not verify under its root: {exc}"[:200]
    return None


def renewal_overdue(certificate_pem: str, rollover_fraction: float,
                    now: Optional[datetime.datetime] = None) -> bool:
    """Whether a provider's CA in use is past the point where its renewal should have come:
    halfway from ``rollover_fraction`` of its lifetime (when the renewal is asked for) to
    its end. Past it the leader stops waiting for the provider and lets the self-made
    rollover replace the CA, so that a provider that never answers cannot let the CA run
    out. An unreadable certificate counts as overdue."""
    try:
        cert = pki.load_certificate(certificate_pem)
    except pki.PKIError:
        return True
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    late = start + (end - start) * ((1 + rollover_fraction) / 2)
    return (now or pki.utcnow()) >= late
