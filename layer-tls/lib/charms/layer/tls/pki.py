"""Pure PKI functions over ``cryptography``: keys, the CA, CSRs, issuing and verifying.

No Juju imports and no I/O: everything takes and returns ``cryptography`` objects, with PEM
helpers for the boundaries (relation data, unitdata, files). Private key material never
appears in an exception message raised here.
"""
from __future__ import annotations

import datetime
import hashlib
import ipaddress
import time
from typing import Iterable, List, Optional, Sequence, Union

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .namespace import ANY, Namespace

PrivateKey = Union[rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey]
PublicKey = Union[rsa.RSAPublicKey, ec.EllipticCurvePublicKey, ed25519.Ed25519PublicKey]
IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]

DEFAULT_KEY_ALGORITHM = "ecdsa-p256"
KEY_ALGORITHMS = ("ecdsa-p256", "ecdsa-p384", "rsa-2048", "rsa-3072", "rsa-4096", "ed25519")
# A CA signs with its key; cryptography's verifier forbids Ed25519 in chains, so CAs don't.
CA_KEY_ALGORITHMS = ("ecdsa-p256", "ecdsa-p384", "rsa-2048", "rsa-3072", "rsa-4096")
# notBefore is backdated so that peers with slightly slow clocks accept a fresh certificate.
BACKDATE = datetime.timedelta(minutes=5)
# A leaf valid for less than this from its issuance would expire before it is installed.
MIN_VALIDITY = datetime.timedelta(minutes=1)


class PKIError(Exception):
    """A PKI operation that cannot proceed (expired CA, unknown algorithm, bad PEM...)."""


class CertificateVerificationError(PKIError):
    """A certificate does not verify against the CA bundle for the asked name and purpose."""


def utcnow() -> datetime.datetime:
    """The current time, timezone-aware UTC (what ``cryptography``'s ``*_utc`` APIs use).
    Read from ``time.time()``, the one clock of the layer (renewal times are epoch seconds)."""
    return datetime.datetime.fromtimestamp(time.time(), datetime.timezone.utc)


# --- keys -----------------------------------------------------------------------------------

def generate_private_key(algorithm: str = DEFAULT_KEY_ALGORITHM) -> PrivateKey:
    """Generate a private key: ``ecdsa-p256`` (default), ``ecdsa-p384``, ``rsa-2048``,
    ``rsa-3072``, ``rsa-4096`` or ``ed25519``."""
    if algorithm == "ecdsa-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == "ecdsa-p384":
        return ec.generate_private_key(ec.SECP384R1())
    if algorithm in ("rsa-2048", "rsa-3072", "rsa-4096"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(algorithm[4:]))
    if algorithm == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise PKIError("unknown key algorithm {!r}; choose one of {}".format(
        algorithm, ", ".join(KEY_ALGORITHMS)))


def key_algorithm_of(key: Union[PrivateKey, PublicKey]) -> str:
    """The ``KEY_ALGORITHMS`` name of a key, or ``unsupported:<type>``."""
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return f"rsa-{key.key_size}"
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        return {"secp256r1": "ecdsa-p256", "secp384r1": "ecdsa-p384"}.get(
            key.curve.name, "unsupported:ecdsa-" + key.curve.name)
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey)):
        return "ed25519"
    return "unsupported:" + type(key).__name__


def private_key_to_pem(key: PrivateKey) -> bytes:
    """PKCS#8 PEM, unencrypted: the caller stores it 0600 on the unit (or in a Juju secret)."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def load_private_key(pem: Union[str, bytes]) -> PrivateKey:
    """Load a PEM private key (PKCS#8 or traditional). Errors never echo the key text."""
    try:
        key = serialization.load_pem_private_key(_to_bytes(pem), password=None)
    except (ValueError, TypeError):
        # ``from None``: the chained error must not carry anything derived from the key text.
        raise PKIError("cannot load private key: not an unencrypted PEM private key") from None
    if key_algorithm_of(key) not in KEY_ALGORITHMS:
        raise PKIError("unsupported private key type: " + key_algorithm_of(key))
    return key  # type: ignore[return-value]


def public_key_fingerprint(key: Union[PrivateKey, PublicKey]) -> str:
    """SHA-256 hex of the SubjectPublicKeyInfo DER: identifies a key pair across objects."""
    public = key.public_key() if hasattr(key, "private_bytes") else key
    der = public.public_bytes(serialization.Encoding.DER,
                              serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def _signature_hash(key: PrivateKey) -> Optional[hashes.HashAlgorithm]:
    """The hash to sign with for a key: none for Ed25519, SHA-384 for P-384, else SHA-256."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return None
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp384r1":
        return hashes.SHA384()
    return hashes.SHA256()


# --- PEM ------------------------------------------------------------------------------------

def _to_bytes(data: Union[str, bytes]) -> bytes:
    return data.encode("ascii") if isinstance(data, str) else data


def certificate_to_pem(cert: x509.Certificate) -> str:
    """PEM text of one certificate."""
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def certificates_to_pem(certs: Iterable[x509.Certificate]) -> str:
    """PEM text of a bundle, in the given order."""
    return "".join(certificate_to_pem(c) for c in certs)


def load_certificate(pem: Union[str, bytes]) -> x509.Certificate:
    """Load exactly one PEM certificate."""
    certs = load_certificates(pem)
    if len(certs) != 1:
        raise PKIError(f"expected one certificate, found {len(certs)}")
    return certs[0]


def load_certificates(pem: Union[str, bytes]) -> List[x509.Certificate]:
    """Load every certificate of a PEM bundle (at least one)."""
    try:
        certs = x509.load_pem_x509_certificates(_to_bytes(pem))
        for cert in certs:
            # relation data: a key type cryptography cannot use raises only when asked
            cert.public_key()
    except Exception as exc:  # noqa: BLE001 - ValueError, UnsupportedAlgorithm, ...
        raise PKIError(f"not a usable PEM certificate bundle: {exc}") from None
    return list(certs)


def load_csr_public_key(pem: Union[str, bytes]) -> PublicKey:
    """The public key of a PEM CSR (no policy checks: for matching keys only)."""
    try:
        return x509.load_pem_x509_csr(_to_bytes(pem)).public_key()  # type: ignore[return-value]
    except Exception as exc:  # noqa: BLE001 - a peer's CSR: any parser error is a PKIError
        raise PKIError(f"not a usable PEM CSR: {type(exc).__name__}") from None


def csr_to_pem(csr: x509.CertificateSigningRequest) -> str:
    """PEM text of a CSR."""
    return csr.public_bytes(serialization.Encoding.PEM).decode("ascii")


# --- the CA ---------------------------------------------------------------------------------

class CertificateAuthority:
    """A signing CA: its certificate, its private key and ``chain``, the certificates above
    it up to and including the root (trust anchor), issuer first; empty for a
    self-signed CA, which is its own anchor. ``repr`` never shows the key."""

    __slots__ = ("certificate", "private_key", "chain")

    def __init__(self, certificate: x509.Certificate, private_key: PrivateKey,
                 chain: Sequence[x509.Certificate] = ()) -> None:
        if public_key_fingerprint(certificate.public_key()) != public_key_fingerprint(
                private_key):
            raise PKIError("the CA private key does not match the CA certificate")
        self.certificate = certificate
        self.private_key = private_key
        self.chain = tuple(chain)

    @property
    def anchor(self) -> x509.Certificate:
        """The root that relying parties trust: the last of the chain, else the CA itself."""
        return self.chain[-1] if self.chain else self.certificate

    @property
    def intermediates(self) -> List[x509.Certificate]:
        """What a unit presents after its leaf: this CA and the chain up to (not
        including) the anchor; empty for a self-signed CA."""
        return [self.certificate, *self.chain[:-1]] if self.chain else []

    def __repr__(self) -> str:
        cert = self.certificate
        subject = cert.subject.rfc4514_string()
        return f"CertificateAuthority(subject={subject!r}, not_after={cert.not_valid_after_utc})"

    @property
    def key_fingerprint(self) -> str:
        return public_key_fingerprint(self.private_key)

    def is_valid_at(self, when: datetime.datetime) -> bool:
        cert = self.certificate
        return cert.not_valid_before_utc <= when < cert.not_valid_after_utc


def ca_problem(ca: CertificateAuthority, now: Optional[datetime.datetime] = None
               ) -> Optional[str]:
    """Why ``ca`` cannot issue certificates here (not valid now, not a CA, no subject key
    identifier, a chain that does not lead from it to its anchor), or None. A CA from
    config, a secret or an old deployment may be any of these."""
    cert = ca.certificate
    if ca.chain:
        problem = chain_problem(cert, ca.chain, now=now)
        if problem:
            return problem
    if not ca.is_valid_at(now or utcnow()):
        return (f"it is valid from {cert.not_valid_before_utc} to "
                f"{cert.not_valid_after_utc}, not now")
    try:
        if not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            return "its basicConstraints say it is not a CA"
    except x509.ExtensionNotFound:
        return "it has no basicConstraints"
    if subject_key_id(cert) is None:
        return "it has no subjectKeyIdentifier"
    return None


def create_ca(common_name: str, *, lifetime_days: float = 3650,
              organization: Optional[str] = None,
              key_algorithm: str = DEFAULT_KEY_ALGORITHM,
              private_key: Optional[PrivateKey] = None,
              name_constraints: Optional[Namespace] = None,
              now: Optional[datetime.datetime] = None,
              path_length: int = 0) -> CertificateAuthority:
    """Create a self-signed CA: critical CA:TRUE pathlen ``path_length`` (0: it signs
    leaves only; ``create_ca_chain`` makes a root with 1), keyCertSign+cRLSign, SKI; and,
    given a bounded ``name_constraints`` namespace, critical X.509 name constraints that
    permit only its DNS domains and IP networks (``name_constraints_extension``)."""
    if key_algorithm not in CA_KEY_ALGORITHMS:
        raise PKIError("a CA key must be one of " + ", ".join(CA_KEY_ALGORITHMS))
    if not lifetime_days > 0:
        raise PKIError("the CA lifetime must be positive")
    key = private_key or generate_private_key(key_algorithm)
    now = now or utcnow()
    try:
        now + datetime.timedelta(days=lifetime_days)
    except OverflowError:
        raise PKIError(f"a CA lifetime of {lifetime_days:g} days ends after year 9999") from None
    constraints = (name_constraints_extension(name_constraints)
                   if name_constraints is not None and not name_constraints.unbounded else None)
    cert = _sign_ca(key, _ca_name(common_name, organization), x509.random_serial_number(),
                    now - BACKDATE,
                    now + datetime.timedelta(days=lifetime_days),
                    x509.SubjectKeyIdentifier.from_public_key(key.public_key()), constraints,
                    path_length)
    return CertificateAuthority(cert, key)


def create_ca_chain(common_name: str, *, lifetime_days: float = 3650,
                    organization: Optional[str] = None,
                    key_algorithm: str = DEFAULT_KEY_ALGORITHM,
                    name_constraints: Optional[Namespace] = None,
                    now: Optional[datetime.datetime] = None) -> CertificateAuthority:
    """A root and an intermediate under it; returns the intermediate (the signing CA, with
    the root as its ``chain``). The root's key signs the intermediate and is then dropped:
    it is neither returned nor kept, so no one can make another CA under that root.

    Both carry the same critical name constraints (when ``name_constraints`` is bounded):
    validators apply an intermediate's constraints even where they ignore a trust anchor's
    (Java's PKIX), so a leaf signed with the intermediate's key for an outside name fails
    everywhere. Root: CA pathlen 1; intermediate: CA pathlen 0, AKI = the root's SKI, the
    root's validity (without the root key it cannot be renewed: its end is a rollover)."""
    root = create_ca(f"{common_name} root", lifetime_days=lifetime_days,
                     organization=organization, key_algorithm=key_algorithm,
                     name_constraints=name_constraints, now=now, path_length=1)
    key = generate_private_key(key_algorithm)
    constraints = (name_constraints_extension(name_constraints)
                   if name_constraints is not None and not name_constraints.unbounded else None)
    root_cert = root.certificate
    builder = (
        x509.CertificateBuilder()
        .subject_name(_ca_name(common_name, organization))
        .issuer_name(root_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(root_cert.not_valid_before_utc)
        .not_valid_after(root_cert.not_valid_after_utc)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_CA_KEY_USAGE, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
            root_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value),
            critical=False)
    )
    if constraints is not None:
        builder = builder.add_extension(constraints, critical=True)
    intermediate = builder.sign(root.private_key, _signature_hash(root.private_key))
    del root  # the root key goes out of scope here: nothing refers to it any more
    return CertificateAuthority(intermediate, key, (root_cert,))


def _ca_name(common_name: str, organization: Optional[str]) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attributes)


_CA_KEY_USAGE = x509.KeyUsage(
    digital_signature=False, content_commitment=False, key_encipherment=False,
    data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
    encipher_only=False, decipher_only=False)


def chain_problem(cert: x509.Certificate, chain: Sequence[x509.Certificate], *,
                  now: Optional[datetime.datetime] = None) -> Optional[str]:
    """Why ``chain`` (issuer first, ending with a self-signed root) does not certify the
    CA ``cert`` now: a link whose issuer name, key id or signature does not match, an
    issuer that is not a CA, or a path length that forbids what is under it; or None."""
    now = now or utcnow()
    below = cert
    for depth, issuer in enumerate(chain):
        try:
            if below.issuer != issuer.subject:
                return f"its chain breaks at {issuer.subject.rfc4514_string()[:80]}"
            below.verify_directly_issued_by(issuer)
            basic = issuer.extensions.get_extension_for_class(x509.BasicConstraints).value
        except x509.ExtensionNotFound:
            return "a certificate of its chain has no basicConstraints"
        except Exception as exc:  # noqa: BLE001 - a foreign chain: any mismatch is a problem
            return f"its chain does not verify ({type(exc).__name__})"
        if not basic.ca:
            return "a certificate of its chain is not a CA"
        if basic.path_length is not None and basic.path_length < depth + 1:
            return "a path length in its chain forbids the CAs under it"
        if not issuer.not_valid_before_utc <= now < issuer.not_valid_after_utc:
            return f"its chain holds a certificate valid only until {issuer.not_valid_after_utc}"
        below = issuer
    if below.issuer != below.subject:
        return "its chain does not end with a self-signed root"
    return None


def issuing_cas(anchors: Sequence[x509.Certificate],
                intermediates: Sequence[x509.Certificate]) -> List[x509.Certificate]:
    """The CAs that sign leaves: first one per anchor in ``anchors`` order (the
    intermediate the anchor signed (AKI = its SKI, and its signature verifies), and so on
    down a few levels, else the anchor itself: a self-signed signing CA), then any other
    intermediate at the end of a branch under them (a switch under the same root publishes
    the new and the old intermediate). Relation data: an intermediate that does not
    verify is not taken."""
    by_issuer: dict = {}
    for cert in intermediates:
        aki = authority_key_id(cert)
        if aki is not None:
            by_issuer.setdefault(aki, []).append(cert)

    def ends(cert: x509.Certificate, depth: int) -> List[x509.Certificate]:
        below = [c for c in by_issuer.get(subject_key_id(cert) or b"", ())
                 if c != cert and _issued_by(c, cert)] if depth < 4 else []
        if not below:
            return [cert]
        found: List[x509.Certificate] = []
        for child in below:  # an operator's chain may hold a few levels
            found.extend(c for c in ends(child, depth + 1) if c not in found)
        return found

    first: List[x509.Certificate] = []
    others: List[x509.Certificate] = []
    for anchor in anchors:
        found = ends(anchor, 0)
        first.append(found[0])
        others.extend(c for c in found[1:] if c not in others)
    return first + [c for c in others if c not in first]


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except Exception:  # noqa: BLE001 - a foreign certificate: any failure is "no"
        return False
    return True


def chain_for(leaf: x509.Certificate, intermediates: Sequence[x509.Certificate]
              ) -> List[x509.Certificate]:
    """The certificates of ``intermediates`` a unit presents after ``leaf``: its issuer
    (matched by key id), that one's issuer, ... as long as they are in the list."""
    by_ski = {subject_key_id(c): c for c in intermediates if subject_key_id(c)}
    chain: List[x509.Certificate] = []
    aki = authority_key_id(leaf)
    while aki in by_ski and len(chain) < 4:
        cert = by_ski.pop(aki)
        chain.append(cert)
        aki = authority_key_id(cert)
    return chain


# Permitted subtrees that no unit's name can match: a namespace without DNS domains (or
# without networks) must still name one, else that kind of name would be unconstrained.
NO_DNS = "invalid"  # reserved (RFC 2606); never in a namespace unless an operator puts it
NO_IPS = ("0.0.0.0/32", "::/128")  # the unspecified addresses, which no SAN may carry


def name_constraints_extension(space: Namespace) -> x509.NameConstraints:
    """Name constraints permitting exactly ``space`` (bounded): DNS subtrees for its
    domains, iPAddress subtrees for its networks, a placeholder for a kind it has none of.
    Clients that check them (OpenSSL, GnuTLS, Python's ssl, Node, Go, cryptography)
    refuse a certificate from this CA with any name outside, whoever signed it."""
    if space.unbounded:
        raise PKIError("an unbounded namespace has no name constraints")
    permitted: List[x509.GeneralName] = [
        x509.DNSName(d) for d in (space.dns_domains or (NO_DNS,))]
    permitted += [x509.IPAddress(n) for n in
                  (space.networks or tuple(ipaddress.ip_network(n) for n in NO_IPS))]
    return x509.NameConstraints(permitted_subtrees=permitted, excluded_subtrees=None)


def name_constraints_of(cert: x509.Certificate) -> Namespace:
    """The names a CA certificate's name constraints permit, as a namespace (``ANY``
    without the extension; a kind of name with no permitted subtree is unconstrained).
    Excluded subtrees and other kinds of names are not represented (this layer makes
    none); an unreadable extension permits nothing."""
    try:
        ext = cert.extensions.get_extension_for_class(x509.NameConstraints).value
    except x509.ExtensionNotFound:
        return ANY
    except Exception:  # noqa: BLE001 - a malformed extension from a foreign CA
        return Namespace()
    if ext.permitted_subtrees is None:
        return ANY
    domains = tuple(str(n.value).lower().rstrip(".") for n in ext.permitted_subtrees
                    if isinstance(n, x509.DNSName))
    networks = tuple(n.value for n in ext.permitted_subtrees
                     if isinstance(n, x509.IPAddress)
                     and isinstance(n.value, (ipaddress.IPv4Network, ipaddress.IPv6Network)))
    return Namespace(domains or ("",),
                     networks or tuple(ipaddress.ip_network(n) for n in ("0.0.0.0/0", "::/0")))


def recertify_ca(certificate: x509.Certificate, private_key: PrivateKey) -> CertificateAuthority:
    """The same CA re-signed by its own key with this library's CA extensions (critical
    CA:TRUE pathlen 0, critical keyCertSign+cRLSign), keeping subject, serial, validity and
    subject key identifier, so certificates it issued still chain to it. Used to adopt CAs
    whose extensions strict verifiers refuse (easy-rsa marks CA:TRUE non-critical)."""
    ca = CertificateAuthority(certificate, private_key)  # checks that the key matches
    digest = subject_key_id(certificate)
    ski = (x509.SubjectKeyIdentifier(digest) if digest
           else x509.SubjectKeyIdentifier.from_public_key(private_key.public_key()))
    cert = _sign_ca(private_key, certificate.subject, certificate.serial_number,
                    certificate.not_valid_before_utc, certificate.not_valid_after_utc, ski)
    return CertificateAuthority(cert, ca.private_key)


def _sign_ca(key: PrivateKey, name: x509.Name, serial: int, not_before: datetime.datetime,
             not_after: datetime.datetime, ski: x509.SubjectKeyIdentifier,
             constraints: Optional[x509.NameConstraints] = None,
             path_length: int = 0) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(_CA_KEY_USAGE, critical=True)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
                       critical=False)
    )
    if constraints is not None:
        builder = builder.add_extension(constraints, critical=True)
    return builder.sign(key, _signature_hash(key))


# --- CSRs and leaves ------------------------------------------------------------------------

def _general_names(dns_names: Iterable[str], ip_addresses: Iterable[Union[str, IPAddress]]
                   ) -> List[x509.GeneralName]:
    names: List[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
    return names


def build_csr(private_key: PrivateKey, common_name: str, *,
              dns_names: Sequence[str] = (),
              ip_addresses: Sequence[Union[str, IPAddress]] = ()
              ) -> x509.CertificateSigningRequest:
    """A CSR for a unit, with its DNS and IP SANs (the signer decides what it gets)."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
    names = _general_names(dns_names, ip_addresses)
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(private_key, _signature_hash(private_key))


def _leaf_key_usage(public_key: PublicKey) -> x509.KeyUsage:
    """digitalSignature for every key; keyEncipherment too for RSA (TLS 1.2 RSA key exchange)."""
    return x509.KeyUsage(
        digital_signature=True, content_commitment=False,
        key_encipherment=isinstance(public_key, rsa.RSAPublicKey),
        data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
        encipher_only=False, decipher_only=False)


def issue_certificate(ca: CertificateAuthority, public_key: PublicKey, *, common_name: str,
                      dns_names: Sequence[str] = (),
                      ip_addresses: Sequence[Union[str, IPAddress]] = (),
                      lifetime_days: float = 365,
                      now: Optional[datetime.datetime] = None) -> x509.Certificate:
    """Issue a TLS leaf (server and client auth) for ``public_key``.

    Everything comes from the signer: the subject, the SANs (already checked by the policy)
    and the extensions; nothing is copied from a CSR. notAfter is capped by the CA's own
    expiry. Refuses to sign with a CA that is not valid now.
    """
    now = now or utcnow()
    if not ca.is_valid_at(now):
        cert = ca.certificate
        raise PKIError(f"the CA certificate is not valid now (valid "
                       f"{cert.not_valid_before_utc} to {cert.not_valid_after_utc})")
    if not lifetime_days > 0:
        raise PKIError("the certificate lifetime must be positive")
    names = _general_names(dns_names, ip_addresses)
    if not names:
        raise PKIError("a certificate needs at least one DNS name or IP address")
    ca_end = ca.certificate.not_valid_after_utc
    # capped by the CA, compared as numbers first: now + a huge lifetime overflows datetime
    if lifetime_days >= (ca_end - now).total_seconds() / 86400:
        not_after = ca_end
    else:
        not_after = now + datetime.timedelta(days=lifetime_days)
    if not_after - now < MIN_VALIDITY:
        # capped by a CA about to expire, or too short to be installed before it expires
        raise PKIError(f"the certificate would be valid only until {not_after:%Y-%m-%d %H:%M:%S}"
                       f" UTC (the CA expires {ca_end:%Y-%m-%d %H:%M:%S} UTC): under a "
                       "minute, it would be born expired")
    ca_ski = ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca.certificate.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(max(now - BACKDATE, ca.certificate.not_valid_before_utc))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_leaf_key_usage(public_key), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                              ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                       critical=False)
    )
    return builder.sign(ca.private_key, _signature_hash(ca.private_key))


# --- checking -------------------------------------------------------------------------------

def certificate_matches_key(cert: x509.Certificate, key: PrivateKey) -> bool:
    """True when ``cert`` certifies the public half of ``key``."""
    return public_key_fingerprint(cert.public_key()) == public_key_fingerprint(key)


def subject_key_id(cert: x509.Certificate) -> Optional[bytes]:
    """The SubjectKeyIdentifier digest of a certificate, or None."""
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return None


def authority_key_id(cert: x509.Certificate) -> Optional[bytes]:
    """The AuthorityKeyIdentifier key id of a certificate (its issuer's SKI), or None."""
    try:
        ext = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    except x509.ExtensionNotFound:
        return None
    return ext.value.key_identifier


def days_to_expiry(cert: x509.Certificate, now: Optional[datetime.datetime] = None) -> float:
    """Days (fractional) until notAfter; negative once expired."""
    delta = cert.not_valid_after_utc - (now or utcnow())
    return delta.total_seconds() / 86400.0


def certificate_names(cert: x509.Certificate) -> tuple[List[str], List[str]]:
    """The DNS names and IP addresses (as text) of a certificate's SAN."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], []
    return (san.get_values_for_type(x509.DNSName),
            [str(ip) for ip in san.get_values_for_type(x509.IPAddress)])


def verify_certificate(leaf: x509.Certificate, ca_bundle: Sequence[x509.Certificate], *,
                       dns_name: Optional[str] = None, ip_address: Optional[str] = None,
                       purpose: str = "server",
                       intermediates: Sequence[x509.Certificate] = (),
                       now: Optional[datetime.datetime] = None) -> None:
    """Verify ``leaf``, presented with ``intermediates`` (untrusted), against the trust
    anchors in ``ca_bundle`` with cryptography's
    RFC 5280 verifier, as a TLS server for ``dns_name`` or ``ip_address`` (purpose
    ``server``) or as a TLS client (purpose ``client``). Raises CertificateVerificationError.

    Ed25519 leaves verify like the others (cryptography forbids Ed25519 only for CA keys,
    which is why ``create_ca`` refuses it).
    """
    from cryptography.x509 import verification as v  # lazy: only verification needs it

    now = now or utcnow()
    if not ca_bundle:
        raise CertificateVerificationError("the CA bundle is empty")
    if purpose not in ("server", "client"):
        raise PKIError("purpose must be 'server' or 'client'")
    if purpose == "server" and bool(dns_name) == bool(ip_address):
        raise PKIError("a server check needs exactly one of dns_name or ip_address")
    builder = v.PolicyBuilder().store(v.Store(list(ca_bundle))).time(now)
    try:
        if purpose == "server":
            subject = (v.DNSName(dns_name) if dns_name
                       else v.IPAddress(ipaddress.ip_address(ip_address)))
            builder.build_server_verifier(subject).verify(leaf, list(intermediates))
        else:
            builder.build_client_verifier().verify(leaf, list(intermediates))
    except (v.VerificationError, ValueError) as exc:
        raise CertificateVerificationError(str(exc)) from None
