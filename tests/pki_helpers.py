"""Named assertions and builders for PKI tests (in the manner of trustme's test helpers).

Each ``assert_*`` states one fact about a certificate, checked one independent way:
cryptography's RFC 5280 verifier (through ``pki.verify_certificate`` and directly), the
``openssl verify`` CLI, a real mutual-TLS handshake with Python's ``ssl`` module, or
pkilint's RFC 5280 linter. Builders (``make_ca``, ``issue_unit``) go through the policy
(``policy.sign_csr``) so that what is tested is what a leader would issue.
"""
from __future__ import annotations

import datetime
import ipaddress
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from charms.layer.tls import pki, policy
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509 import verification
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID

OPENSSL = "openssl"
# Extensions the signer sets on every leaf, and nothing else.
LEAF_EXTENSIONS = frozenset({
    ExtensionOID.BASIC_CONSTRAINTS, ExtensionOID.KEY_USAGE, ExtensionOID.EXTENDED_KEY_USAGE,
    ExtensionOID.SUBJECT_ALTERNATIVE_NAME, ExtensionOID.SUBJECT_KEY_IDENTIFIER,
    ExtensionOID.AUTHORITY_KEY_IDENTIFIER})


class Unit(NamedTuple):
    """A unit's key and the certificate the signer issued for it."""

    name: str
    key: pki.PrivateKey
    certificate: x509.Certificate
    chain: Tuple[x509.Certificate, ...] = ()  # the intermediates it presents after it

    @property
    def cert_pem(self) -> str:
        """The certificate, then its intermediates: what the unit presents."""
        return pki.certificates_to_pem([self.certificate, *self.chain])

    @property
    def key_pem(self) -> bytes:
        return pki.private_key_to_pem(self.key)


# --- builders -------------------------------------------------------------------------------

def make_ca(key_algorithm: str = "ecdsa-p256", common_name: str = "Juju CA for app",
            **kwargs) -> pki.CertificateAuthority:
    """A CA as the leader makes it (``organization`` etc. pass through)."""
    return pki.create_ca(common_name, key_algorithm=key_algorithm, **kwargs)


def make_external_ca(common_name: str = "Operator CA", *, path_length: Optional[int] = 0,
                     lifetime_days: float = 3650,
                     root: Optional[pki.CertificateAuthority] = None
                     ) -> Tuple[pki.CertificateAuthority, pki.CertificateAuthority]:
    """An operator's (or a provider's) PKI: a root whose key is kept (``root``, or a new
    one, pathLen 1) and an intermediate under it without name constraints. Returns
    (root, intermediate); the intermediate's ``chain`` is the root."""
    root = root or pki.create_ca(f"{common_name} root", lifetime_days=lifetime_days,
                                 path_length=1)
    key = pki.generate_private_key()
    now = pki.utcnow()
    root_ski = root.certificate.extensions.get_extension_for_class(
        x509.SubjectKeyIdentifier).value
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(root.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(min(now + datetime.timedelta(days=lifetime_days),
                             root.certificate.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                     False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
            root_ski), critical=False)
        .sign(root.private_key, pki._signature_hash(root.private_key))
    )
    return root, pki.CertificateAuthority(cert, key, (root.certificate,))


def secret_content(ca: pki.CertificateAuthority) -> Dict[str, str]:
    """The content of an operator's CA secret for ``ca``: certificate, key and, under a
    root, the chain (the keys ``tls_ca_secret`` reads)."""
    content = {"certificate": pki.certificate_to_pem(ca.certificate),
               "private-key": pki.private_key_to_pem(ca.private_key).decode()}
    if ca.chain:
        content["chain"] = pki.certificates_to_pem(ca.chain)
    return content


def permissive_claims(dns_names: Sequence[str] = (), ip_addresses: Sequence[str] = ()
                      ) -> policy.Claims:
    """Claims that allow exactly the given names and forbid nothing else."""
    return policy.Claims.build(allowed_dns=dns_names, allowed_ips=ip_addresses)


def issue_unit(ca: pki.CertificateAuthority, key_algorithm: str = "ecdsa-p256", *,
               unit_name: str = "app/0", dns_names: Sequence[str] = ("app-0.test",),
               ip_addresses: Sequence[str] = ("127.0.0.1",), lifetime_days: int = 365,
               key: Optional[pki.PrivateKey] = None,
               now: Optional[datetime.datetime] = None) -> Unit:
    """Key, CSR (PEM, as on the wire), policy check and signature: a unit's certificate."""
    key = key or pki.generate_private_key(key_algorithm)
    csr_pem = pki.csr_to_pem(pki.build_csr(key, unit_name, dns_names=dns_names,
                                           ip_addresses=ip_addresses))
    cert = policy.sign_csr(ca, csr_pem, permissive_claims(dns_names, ip_addresses),
                           unit_name=unit_name, lifetime_days=lifetime_days, now=now)
    return Unit(unit_name, key, cert)


def csr_pem_from_der(der: bytes) -> bytes:
    """Wrap DER as a canonical CERTIFICATE REQUEST PEM block (64-column lines)."""
    import base64
    body = base64.b64encode(der)
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return (b"-----BEGIN CERTIFICATE REQUEST-----\n" + b"\n".join(lines)
            + b"\n-----END CERTIFICATE REQUEST-----\n")


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


# --- cryptography's verifier ----------------------------------------------------------------

def _direct_verify(cert: x509.Certificate, ca: x509.Certificate, purpose: str,
                   host: Optional[str], chain: Sequence[x509.Certificate] = ()) -> None:
    builder = verification.PolicyBuilder().store(verification.Store([ca]))
    if purpose == "server":
        subject = (verification.IPAddress(ipaddress.ip_address(host)) if is_ip(host)
                   else verification.DNSName(host))
        builder.build_server_verifier(subject).verify(cert, list(chain))
    else:
        builder.build_client_verifier().verify(cert, list(chain))


def _pki_verify(cert: x509.Certificate, ca: x509.Certificate, purpose: str,
                host: Optional[str], now: Optional[datetime.datetime] = None,
                chain: Sequence[x509.Certificate] = ()) -> None:
    if purpose == "server":
        kind = "ip_address" if is_ip(host) else "dns_name"
        pki.verify_certificate(cert, [ca], purpose="server", now=now, intermediates=chain,
                               **{kind: host})
    else:
        pki.verify_certificate(cert, [ca], purpose="client", now=now, intermediates=chain)


def assert_verifies_as_server(cert: x509.Certificate, ca: x509.Certificate, host: str, *,
                              chain: Sequence[x509.Certificate] = ()) -> None:
    """``cert`` (presented with the intermediates ``chain``) is a valid TLS server
    certificate for ``host`` (DNS name or IP) under ``ca``,
    by ``pki.verify_certificate`` and by cryptography's verifier used directly (which, in
    cryptography 50, accepts Ed25519 leaf keys; it forbids Ed25519 only as a CA's key)."""
    _pki_verify(cert, ca, "server", host, chain=chain)
    _direct_verify(cert, ca, "server", host, chain)


def assert_not_verifies_as_server(cert: x509.Certificate, ca: x509.Certificate,
                                  host: str, *, chain: Sequence[x509.Certificate] = ()) -> None:
    """Neither ``pki.verify_certificate`` nor cryptography's verifier accepts ``cert`` as a
    server certificate for ``host`` under ``ca``."""
    try:
        _pki_verify(cert, ca, "server", host, chain=chain)
    except pki.CertificateVerificationError:
        pass
    else:
        raise AssertionError(f"pki.verify_certificate accepted {host} under {ca.subject}")
    try:
        _direct_verify(cert, ca, "server", host, chain)
    except verification.VerificationError:
        pass
    else:
        raise AssertionError(f"cryptography's verifier accepted {host} under {ca.subject}")


def assert_verifies_as_client(cert: x509.Certificate, ca: x509.Certificate, *,
                              chain: Sequence[x509.Certificate] = ()) -> None:
    """``cert`` is a valid TLS client certificate under ``ca`` (both ways, as above)."""
    _pki_verify(cert, ca, "client", None, chain=chain)
    _direct_verify(cert, ca, "client", None, chain)


def assert_not_verifies_as_client(cert: x509.Certificate, ca: x509.Certificate) -> None:
    try:
        _pki_verify(cert, ca, "client", None)
    except pki.CertificateVerificationError:
        pass
    else:
        raise AssertionError(f"pki.verify_certificate accepted a client under {ca.subject}")
    try:
        _direct_verify(cert, ca, "client", None)
    except verification.VerificationError:
        pass
    else:
        raise AssertionError(f"cryptography's verifier accepted a client under {ca.subject}")


def assert_cryptography_forbids_ed25519_ca(cert: x509.Certificate,
                                           ca: x509.Certificate) -> None:
    """cryptography's verifier refuses a chain whose CA signs with Ed25519 ("Forbidden
    public key algorithm"): the reason ``pki.CA_KEY_ALGORITHMS`` leaves Ed25519 out."""
    try:
        _direct_verify(cert, ca, "client", None)
    except verification.VerificationError as exc:
        assert "Forbidden public key algorithm" in str(exc), str(exc)
    else:
        raise AssertionError("cryptography's verifier now accepts Ed25519 CAs")


# --- openssl verify -------------------------------------------------------------------------

def _write(directory: str, name: str, data) -> str:
    path = os.path.join(directory, name)
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(path, mode) as f:
        f.write(data)
    return path


def openssl_verify(cert: x509.Certificate, ca: x509.Certificate, directory: str,
                   *args: str, chain: Sequence[x509.Certificate] = ()
                   ) -> subprocess.CompletedProcess:
    """``openssl verify -x509_strict -CAfile ca [-untrusted chain] ARGS cert``, files in
    ``directory``."""
    ca_path = _write(directory, "ca.pem", pki.certificate_to_pem(ca))
    cert_path = _write(directory, "leaf.pem", pki.certificate_to_pem(cert))
    untrusted = (["-untrusted", _write(directory, "chain.pem", pki.certificates_to_pem(chain))]
                 if chain else [])
    return subprocess.run(
        [OPENSSL, "verify", "-x509_strict", "-CAfile", ca_path, *untrusted, *args, cert_path],
        capture_output=True, text=True, timeout=30, check=False)


def _openssl_server_args(host: str) -> List[str]:
    return ["-purpose", "sslserver", "-verify_ip" if is_ip(host) else "-verify_hostname", host]


def assert_openssl_verifies_as_server(cert, ca, host: str, directory: str, *, chain=()) -> None:
    result = openssl_verify(cert, ca, directory, *_openssl_server_args(host), chain=chain)
    assert result.returncode == 0 and result.stdout.strip().endswith(": OK"), (
        f"openssl refused server {host}: {result.stdout}{result.stderr}")


def assert_openssl_not_verifies_as_server(cert, ca, host: str, directory: str, *, chain=()) -> None:
    result = openssl_verify(cert, ca, directory, *_openssl_server_args(host), chain=chain)
    assert result.returncode != 0, f"openssl accepted server {host}: {result.stdout}"


def assert_openssl_verifies_as_client(cert, ca, directory: str, *, chain=()) -> None:
    result = openssl_verify(cert, ca, directory, "-purpose", "sslclient", chain=chain)
    assert result.returncode == 0 and result.stdout.strip().endswith(": OK"), (
        f"openssl refused the client: {result.stdout}{result.stderr}")


def assert_openssl_not_verifies_as_client(cert, ca, directory: str) -> None:
    result = openssl_verify(cert, ca, directory, "-purpose", "sslclient")
    assert result.returncode != 0, f"openssl accepted the client: {result.stdout}"


# --- a real mutual-TLS handshake ------------------------------------------------------------

class HandshakeResult(NamedTuple):
    """What each side saw. ``*_error`` is None on success. ``client_seen_by_server`` is the
    client certificate's subject CN as the server's ``getpeercert`` reported it."""

    server_error: Optional[BaseException]
    client_error: Optional[BaseException]
    client_seen_by_server: Optional[str]
    server_seen_by_client: Optional[str]
    version: Optional[str]

    @property
    def ok(self) -> bool:
        return self.server_error is None and self.client_error is None


def _strict_context(side: int, cafile_pem: str, unit: Unit, directory: str,
                    tls_version: ssl.TLSVersion) -> ssl.SSLContext:
    ctx = ssl.SSLContext(side)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.maximum_version = tls_version
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    if side == ssl.PROTOCOL_TLS_CLIENT:
        ctx.check_hostname = True
    ctx.load_verify_locations(cadata=cafile_pem)
    prefix = "server" if side == ssl.PROTOCOL_TLS_SERVER else "client"
    cert_path = _write(directory, prefix + "-cert.pem", unit.cert_pem)
    key_path = _write(directory, prefix + "-key.pem", unit.key_pem)
    ctx.load_cert_chain(cert_path, key_path)
    return ctx


def _common_name(peercert: Optional[Dict]) -> Optional[str]:
    for rdn in (peercert or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return value
    return None


def mtls_handshake(server: Unit, server_trusts: x509.Certificate, client: Unit,
                   client_trusts: x509.Certificate, server_hostname: str, *,
                   tls_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_3,
                   timeout: float = 10.0) -> HandshakeResult:
    """One mutual-TLS connection over 127.0.0.1 in strict mode, server in a thread.

    Both sides require the peer's certificate (CERT_REQUIRED, VERIFY_X509_STRICT, TLS >= 1.2,
    at most ``tls_version``); the client checks ``server_hostname``. After the handshake the
    server sends one byte and the client reads it, so a refusal of the client certificate
    (which TLS 1.3 reports only after the client's handshake returns) reaches the client.
    """
    with tempfile.TemporaryDirectory() as directory:
        server_ctx = _strict_context(ssl.PROTOCOL_TLS_SERVER,
                                     pki.certificate_to_pem(server_trusts), server,
                                     directory, tls_version)
        client_ctx = _strict_context(ssl.PROTOCOL_TLS_CLIENT,
                                     pki.certificate_to_pem(client_trusts), client,
                                     directory, tls_version)
        outcome: Dict[str, object] = {}
        listener = socket.create_server(("127.0.0.1", 0))
        listener.settimeout(timeout)
        port = listener.getsockname()[1]

        def serve() -> None:
            try:
                conn, _ = listener.accept()
                conn.settimeout(timeout)
                with server_ctx.wrap_socket(conn, server_side=True) as tls:
                    outcome["client_cn"] = _common_name(tls.getpeercert())
                    tls.sendall(b"!")
            except (OSError, ssl.SSLError) as exc:
                outcome["server_error"] = exc

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw:
                with client_ctx.wrap_socket(raw, server_hostname=server_hostname) as tls:
                    outcome["server_cn"] = _common_name(tls.getpeercert())
                    outcome["version"] = tls.version()
                    if tls.recv(1) != b"!":
                        raise ConnectionError("the server closed without sending")
        except (OSError, ssl.SSLError) as exc:
            outcome["client_error"] = exc
        finally:
            thread.join(timeout)
            listener.close()
    return HandshakeResult(outcome.get("server_error"), outcome.get("client_error"),
                           outcome.get("client_cn"), outcome.get("server_cn"),
                           outcome.get("version"))


def assert_mtls_succeeds(server: Unit, client: Unit, ca: x509.Certificate,
                         server_hostname: str, **kwargs) -> HandshakeResult:
    result = mtls_handshake(server, ca, client, ca, server_hostname, **kwargs)
    assert result.ok, f"handshake failed: server={result.server_error!r} " \
                      f"client={result.client_error!r}"
    assert result.client_seen_by_server == client.name
    assert result.server_seen_by_client == server.name
    return result


def assert_mtls_fails_hostname(server: Unit, client: Unit, ca: x509.Certificate,
                               wrong_hostname: str, **kwargs) -> HandshakeResult:
    """The client refuses a server whose certificate does not name ``wrong_hostname``."""
    result = mtls_handshake(server, ca, client, ca, wrong_hostname, **kwargs)
    assert isinstance(result.client_error, ssl.SSLCertVerificationError), result
    assert "mismatch" in str(result.client_error) or "match" in str(result.client_error), (
        result.client_error)
    return result


def assert_mtls_refuses_client(server: Unit, server_trusts: x509.Certificate, client: Unit,
                               client_trusts: x509.Certificate, server_hostname: str,
                               **kwargs) -> HandshakeResult:
    """The server refuses a client certificate from a CA it does not trust."""
    result = mtls_handshake(server, server_trusts, client, client_trusts, server_hostname,
                            **kwargs)
    assert isinstance(result.server_error, ssl.SSLError), result
    assert "certificate verify failed" in str(result.server_error), result.server_error
    assert result.client_error is not None, "the client did not learn it was refused"
    assert result.client_seen_by_server is None
    return result


def assert_mtls_refuses_server(server: Unit, server_trusts: x509.Certificate, client: Unit,
                               client_trusts: x509.Certificate, server_hostname: str,
                               **kwargs) -> HandshakeResult:
    """The client refuses a server certificate from a CA it does not trust."""
    result = mtls_handshake(server, server_trusts, client, client_trusts, server_hostname,
                            **kwargs)
    assert isinstance(result.client_error, ssl.SSLCertVerificationError), result
    assert result.client_seen_by_server is None
    return result


# --- pkilint ---------------------------------------------------------------------------------

def pkilint_findings(cert: x509.Certificate, min_severity: str = "WARNING"
                     ) -> List[Tuple[str, str, Optional[str], str]]:
    """pkilint's RFC 5280 (``lint_pkix_cert``) findings at ``min_severity`` or worse, as
    (severity, code, message, node path)."""
    from pkilint import loader
    from pkilint.pkix import certificate, extension, name
    from pkilint.validation import ValidationFindingSeverity

    validator = certificate.create_pkix_certificate_validator_container(
        certificate.create_decoding_validators(name.ATTRIBUTE_TYPE_MAPPINGS,
                                               extension.EXTENSION_MAPPINGS),
        [certificate.create_issuer_validator_container([]),
         certificate.create_validity_validator_container(),
         certificate.create_subject_validator_container([]),
         certificate.create_extensions_validator_container([]),
         certificate.create_spki_validator_container([])])
    doc = loader.RFC5280CertificateDocumentLoader().load_der_document(
        cert.public_bytes(serialization.Encoding.DER), "certificate")
    threshold = ValidationFindingSeverity[min_severity]
    return [(fd.finding.severity.name, fd.finding.code, fd.message, result.node.path)
            for result in validator.validate(doc.root)
            for fd in result.finding_descriptions
            if fd.finding.severity <= threshold]  # lower value = more severe


def assert_pkilint_clean(cert: x509.Certificate) -> None:
    """pkilint (RFC 5280 profile) reports nothing at WARNING, ERROR or FATAL."""
    findings = pkilint_findings(cert, "WARNING")
    assert findings == [], f"pkilint findings: {findings}"


def assert_pkilint_chain_clean(issuer: x509.Certificate, subject: x509.Certificate,
                               directory: str) -> None:
    """pkilint's issuer/subject chain linter (names, AKI/SKI, signature) reports nothing at
    WARNING or worse (its CLI exits with the number of findings)."""
    issuer_path = _write(directory, "issuer.pem", pki.certificate_to_pem(issuer))
    subject_path = _write(directory, "subject.pem", pki.certificate_to_pem(subject))
    result = subprocess.run(
        [sys.executable, "-m", "pkilint.bin.lint_pkix_signer_signee_cert_chain", "lint",
         "-s", "WARNING", issuer_path, subject_path],
        capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0 and not result.stdout.strip(), (
        f"pkilint chain findings: {result.stdout}{result.stderr}")


# --- the certificate profile ----------------------------------------------------------------

def _ext(cert: x509.Certificate, cls):
    return cert.extensions.get_extension_for_class(cls)


def assert_is_ca_profile(ca: x509.Certificate) -> None:
    """Critical CA:TRUE pathlen 0, critical keyCertSign+cRLSign only, SKI, self-signed."""
    bc = _ext(ca, x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 0
    ku = _ext(ca, x509.KeyUsage)
    assert ku.critical and ku.value.key_cert_sign and ku.value.crl_sign
    assert not ku.value.digital_signature and not ku.value.key_encipherment
    _ext(ca, x509.SubjectKeyIdentifier)
    assert ca.issuer == ca.subject
    ca.verify_directly_issued_by(ca)


def expected_leaf_key_usage(public_key) -> Dict[str, bool]:
    """digitalSignature for every key; keyEncipherment only for RSA; nothing else."""
    return {"digital_signature": True, "content_commitment": False,
            "key_encipherment": isinstance(public_key, rsa.RSAPublicKey),
            "data_encipherment": False, "key_agreement": False, "key_cert_sign": False,
            "crl_sign": False}


def assert_is_leaf_profile(cert: x509.Certificate, ca: x509.Certificate, *,
                           unit_name: str, dns_names: Sequence[str] = (),
                           ip_addresses: Sequence[str] = ()) -> None:
    """Exactly the signer's leaf profile: subject CN = unit name only, issuer = CA subject,
    v3, the six extensions and no other, critical CA:FALSE, KeyUsage per key type
    (critical), EKU serverAuth+clientAuth, SAN = the given names, SKI of the key,
    AKI = the CA's SKI, signed by the CA."""
    assert cert.version == x509.Version.v3
    assert cert.subject == x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, unit_name)])
    assert cert.issuer == ca.subject
    assert {e.oid for e in cert.extensions} == LEAF_EXTENSIONS, [
        e.oid for e in cert.extensions]
    bc = _ext(cert, x509.BasicConstraints)
    assert bc.critical and bc.value.ca is False and bc.value.path_length is None
    ku = _ext(cert, x509.KeyUsage)
    assert ku.critical
    for attr, wanted in expected_leaf_key_usage(cert.public_key()).items():
        assert getattr(ku.value, attr) is wanted, (attr, ku.value)
    eku = _ext(cert, x509.ExtendedKeyUsage)
    assert list(eku.value) == [ExtendedKeyUsageOID.SERVER_AUTH,
                               ExtendedKeyUsageOID.CLIENT_AUTH]
    san = _ext(cert, x509.SubjectAlternativeName)
    assert not san.critical
    assert sorted(san.value.get_values_for_type(x509.DNSName)) == sorted(dns_names)
    assert sorted(str(i) for i in san.value.get_values_for_type(x509.IPAddress)) == sorted(
        str(ipaddress.ip_address(i)) for i in ip_addresses)
    assert _ext(cert, x509.SubjectKeyIdentifier).value == \
        x509.SubjectKeyIdentifier.from_public_key(cert.public_key())
    aki = _ext(cert, x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == _ext(ca, x509.SubjectKeyIdentifier).value.digest
    assert aki.authority_cert_issuer is None and aki.authority_cert_serial_number is None
    cert.verify_directly_issued_by(ca)


def assert_serial_well_formed(cert: x509.Certificate) -> None:
    """RFC 5280 4.1.2.2: a positive integer of at most 20 octets (DER, sign octet included)."""
    serial = cert.serial_number
    assert serial > 0
    assert serial.bit_length() // 8 + 1 <= 20, serial.bit_length()


def assert_csr_rejected(pem, claims: policy.Claims, code: str) -> policy.CSRRejected:
    """``policy.check_csr`` raises CSRRejected with ``code`` (and nothing else)."""
    try:
        policy.check_csr(pem, claims)
    except policy.CSRRejected as exc:
        assert exc.code == code, f"rejected as {exc.code!r} ({exc.reason}), wanted {code!r}"
        return exc
    raise AssertionError(f"the CSR was accepted; wanted rejection {code!r}")
