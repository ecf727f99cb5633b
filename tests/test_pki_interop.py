"""Issued certificates checked by independent implementations, and the issuing profile.

Every issued certificate is verified three ways (cryptography's RFC 5280 verifier, the
``openssl verify`` CLI in strict mode, a real mutual-TLS handshake with Python's ``ssl``)
and each way must also refuse a wrong name and a foreign CA with the same subject name.
pkilint's RFC 5280 linter must find nothing at WARNING or above.
"""
import datetime
import ssl
from typing import Dict, Tuple

import pytest
from charms.layer.tls import pki, policy
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from pki_helpers import (
    LEAF_EXTENSIONS,
    Unit,
    assert_cryptography_forbids_ed25519_ca,
    assert_is_ca_profile,
    assert_is_leaf_profile,
    assert_mtls_fails_hostname,
    assert_mtls_refuses_client,
    assert_mtls_refuses_server,
    assert_mtls_succeeds,
    assert_not_verifies_as_client,
    assert_not_verifies_as_server,
    assert_openssl_not_verifies_as_client,
    assert_openssl_not_verifies_as_server,
    assert_openssl_verifies_as_client,
    assert_openssl_verifies_as_server,
    assert_pkilint_chain_clean,
    assert_pkilint_clean,
    assert_serial_well_formed,
    assert_verifies_as_client,
    assert_verifies_as_server,
    issue_unit,
    make_ca,
    permissive_claims,
)

DNS = "app-0.test"
IP = "127.0.0.1"
IP6 = "fd00::10"
WRONG_DNS = "app-1.test"
WRONG_IP = "127.0.0.2"

# (CA key, leaf key): P-256 CA with every leaf type, a P-384 chain, RSA CA with RSA and EC.
COMBOS = [
    ("ecdsa-p256", "ecdsa-p256"),
    ("ecdsa-p256", "ecdsa-p384"),
    ("ecdsa-p256", "rsa-2048"),
    ("ecdsa-p256", "ed25519"),
    ("ecdsa-p384", "ecdsa-p384"),
    ("rsa-2048", "rsa-2048"),
    ("rsa-2048", "ecdsa-p256"),
]
COMBO_IDS = [f"ca_{c}-leaf_{leaf}" for c, leaf in COMBOS]
TLS_VERSIONS = [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3]


class PKIWorld:
    """Lazily built CAs (ours and a foreign one with the same subject name) and units."""

    def __init__(self) -> None:
        self.cas: Dict[Tuple[str, bool], pki.CertificateAuthority] = {}
        self.units: Dict[Tuple[str, str, str, bool], Unit] = {}

    def ca(self, algorithm: str, foreign: bool = False) -> pki.CertificateAuthority:
        if (algorithm, foreign) not in self.cas:
            # A foreign CA deliberately has the very same subject: only the key tells.
            self.cas[algorithm, foreign] = make_ca(algorithm)
        return self.cas[algorithm, foreign]

    def unit(self, ca_alg: str, leaf_alg: str, index: int = 0, foreign: bool = False) -> Unit:
        key = (ca_alg, leaf_alg, f"app/{index}", foreign)
        if key not in self.units:
            self.units[key] = issue_unit(
                self.ca(ca_alg, foreign), leaf_alg, unit_name=f"app/{index}",
                dns_names=[f"app-{index}.test"], ip_addresses=[IP, IP6] if index == 0 else [IP])
        return self.units[key]


@pytest.fixture(scope="module")
def world() -> PKIWorld:
    return PKIWorld()


# --- 1. cryptography's verifier ---------------------------------------------------------------

@pytest.mark.parametrize(("ca_alg", "leaf_alg"), COMBOS, ids=COMBO_IDS)
def test_cryptography_verifies_server_by_name_and_ip(world, ca_alg, leaf_alg):
    unit, ca = world.unit(ca_alg, leaf_alg), world.ca(ca_alg).certificate
    for host in (DNS, "APP-0.test", IP, IP6):
        assert_verifies_as_server(unit.certificate, ca, host)


@pytest.mark.parametrize(("ca_alg", "leaf_alg"), COMBOS, ids=COMBO_IDS)
def test_cryptography_refuses_wrong_server_name(world, ca_alg, leaf_alg):
    unit, ca = world.unit(ca_alg, leaf_alg), world.ca(ca_alg).certificate
    for host in (WRONG_DNS, "test", "x.app-0.test", WRONG_IP, "fd00::11"):
        assert_not_verifies_as_server(unit.certificate, ca, host)


@pytest.mark.parametrize(("ca_alg", "leaf_alg"), COMBOS, ids=COMBO_IDS)
def test_cryptography_verifies_client(world, ca_alg, leaf_alg):
    assert_verifies_as_client(world.unit(ca_alg, leaf_alg).certificate,
                              world.ca(ca_alg).certificate)


@pytest.mark.parametrize(("ca_alg", "leaf_alg"), COMBOS, ids=COMBO_IDS)
def test_cryptography_refuses_foreign_ca_with_same_name(world, ca_alg, leaf_alg):
    unit, foreign = world.unit(ca_alg, leaf_alg), world.ca(ca_alg, foreign=True).certificate
    assert foreign.subject == world.ca(ca_alg).certificate.subject
    assert_not_verifies_as_server(unit.certificate, foreign, DNS)
    assert_not_verifies_as_server(unit.certificate, foreign, IP)
    assert_not_verifies_as_client(unit.certificate, foreign)


def test_cryptography_refuses_expired_and_not_yet_valid_leaf(world):
    unit, ca = world.unit("ecdsa-p256", "ecdsa-p256"), world.ca("ecdsa-p256").certificate
    for now in (unit.certificate.not_valid_after_utc + datetime.timedelta(seconds=1),
                unit.certificate.not_valid_before_utc - datetime.timedelta(seconds=1)):
        with pytest.raises(pki.CertificateVerificationError):
            pki.verify_certificate(unit.certificate, [ca], dns_name=DNS, now=now)


def _ed25519_ca() -> pki.CertificateAuthority:
    """A CA with an Ed25519 key, built by hand: pki.create_ca refuses to make one."""
    from cryptography.hazmat.primitives.asymmetric import ed25519
    from cryptography.x509.oid import NameOID

    key = ed25519.Ed25519PrivateKey.generate()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Ed25519 CA")])
    now = pki.utcnow()
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=False, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .sign(key, None))
    return pki.CertificateAuthority(cert, key)


def test_ed25519_leaf_verifies_with_cryptography_but_an_ed25519_ca_does_not(world):
    """What cryptography 50 really does with Ed25519 (design section 5 asks): an Ed25519
    *leaf* under an ECDSA/RSA CA verifies with cryptography.x509.verification itself (the
    asserts above run the direct verifier on it); only an Ed25519 *CA* (signature
    algorithm Ed25519) is "Forbidden public key algorithm"; pki refuses to create one."""
    unit, ca = world.unit("ecdsa-p256", "ed25519"), world.ca("ecdsa-p256").certificate
    assert_verifies_as_server(unit.certificate, ca, DNS)
    assert_verifies_as_client(unit.certificate, ca)
    with pytest.raises(pki.PKIError):
        pki.create_ca("Ed25519 CA", key_algorithm="ed25519")
    ed_ca = _ed25519_ca()
    leaf = pki.issue_certificate(ed_ca, pki.generate_private_key().public_key(),
                                 common_name="app/0", dns_names=[DNS])
    assert_cryptography_forbids_ed25519_ca(leaf, ed_ca.certificate)
    late = unit.certificate.not_valid_after_utc + datetime.timedelta(seconds=1)
    with pytest.raises(pki.CertificateVerificationError):
        pki.verify_certificate(unit.certificate, [ca], dns_name=DNS, now=late)


# --- 2. openssl verify -------------------------------------------------------------------------

@pytest.mark.parametrize(("ca_alg", "leaf_alg"), COMBOS, ids=COMBO_IDS)
def test_openssl_verifies_server_and_client(world, ca_alg, leaf_alg, tmp_path):
    unit, ca = world.unit(ca_alg, leaf_alg), world.ca(ca_alg).certificate
    for host in (DNS, IP, IP6):
        assert_openssl_verifies_as_server(unit.certificate, ca, host, str(tmp_path))
    assert_openssl_verifies_as_client(unit.certificate, ca, str(tmp_path))


@pytest.mark.parametrize(("ca_alg", "leaf_alg"), COMBOS, ids=COMBO_IDS)
def test_openssl_refuses_wrong_name_and_foreign_ca(world, ca_alg, leaf_alg, tmp_path):
    unit = world.unit(ca_alg, leaf_alg)
    ca, foreign = world.ca(ca_alg).certificate, world.ca(ca_alg, foreign=True).certificate
    for host in (WRONG_DNS, WRONG_IP):
        assert_openssl_not_verifies_as_server(unit.certificate, ca, host, str(tmp_path))
    for host in (DNS, IP):
        assert_openssl_not_verifies_as_server(unit.certificate, foreign, host, str(tmp_path))
    assert_openssl_not_verifies_as_client(unit.certificate, foreign, str(tmp_path))


@pytest.mark.parametrize("ca_alg", ["ecdsa-p256", "ecdsa-p384", "rsa-2048"])
def test_openssl_refuses_the_ca_itself_as_a_tls_server(world, ca_alg, tmp_path):
    ca = world.ca(ca_alg).certificate
    assert_openssl_not_verifies_as_server(ca, ca, DNS, str(tmp_path))


# --- 3. a real mutual-TLS handshake --------------------------------------------------------

@pytest.mark.parametrize("tls_version", TLS_VERSIONS, ids=["tls1.2", "tls1.3"])
@pytest.mark.parametrize(("ca_alg", "leaf_alg"), COMBOS, ids=COMBO_IDS)
def test_mtls_handshake_succeeds(world, ca_alg, leaf_alg, tls_version):
    server, client = world.unit(ca_alg, leaf_alg, 0), world.unit(ca_alg, leaf_alg, 1)
    ca = world.ca(ca_alg).certificate
    for host in (DNS, IP):
        result = assert_mtls_succeeds(server, client, ca, host, tls_version=tls_version)
        assert result.version == {ssl.TLSVersion.TLSv1_2: "TLSv1.2",
                                  ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[tls_version]


@pytest.mark.parametrize("tls_version", TLS_VERSIONS, ids=["tls1.2", "tls1.3"])
@pytest.mark.parametrize(("ca_alg", "leaf_alg"), COMBOS, ids=COMBO_IDS)
def test_mtls_client_refuses_wrong_server_hostname(world, ca_alg, leaf_alg, tls_version):
    server, client = world.unit(ca_alg, leaf_alg, 0), world.unit(ca_alg, leaf_alg, 1)
    ca = world.ca(ca_alg).certificate
    for host in (WRONG_DNS, WRONG_IP):
        assert_mtls_fails_hostname(server, client, ca, host, tls_version=tls_version)


@pytest.mark.parametrize("tls_version", TLS_VERSIONS, ids=["tls1.2", "tls1.3"])
@pytest.mark.parametrize(("ca_alg", "leaf_alg"), COMBOS, ids=COMBO_IDS)
def test_mtls_server_refuses_client_from_foreign_ca(world, ca_alg, leaf_alg, tls_version):
    server = world.unit(ca_alg, leaf_alg, 0)
    intruder = world.unit(ca_alg, leaf_alg, 1, foreign=True)  # same CA name, other key
    ca, foreign = world.ca(ca_alg).certificate, world.ca(ca_alg, foreign=True).certificate
    # The intruder trusts our CA (it is public), so only the server's check stops it.
    assert_mtls_refuses_client(server, ca, intruder, ca, DNS, tls_version=tls_version)
    # ... and a client that trusts only the foreign CA refuses our server.
    client = world.unit(ca_alg, leaf_alg, 1)
    assert_mtls_refuses_server(server, ca, client, foreign, DNS, tls_version=tls_version)


# --- pkilint --------------------------------------------------------------------------------------

@pytest.mark.parametrize("ca_alg", ["ecdsa-p256", "ecdsa-p384", "rsa-2048"])
def test_pkilint_finds_nothing_in_the_ca(world, ca_alg):
    assert_pkilint_clean(world.ca(ca_alg).certificate)


@pytest.mark.parametrize(("ca_alg", "leaf_alg"), COMBOS, ids=COMBO_IDS)
def test_pkilint_finds_nothing_in_the_leaf(world, ca_alg, leaf_alg):
    assert_pkilint_clean(world.unit(ca_alg, leaf_alg).certificate)


@pytest.mark.parametrize(("ca_alg", "leaf_alg"), [COMBOS[0], COMBOS[3], COMBOS[5]],
                         ids=[COMBO_IDS[0], COMBO_IDS[3], COMBO_IDS[5]])
def test_pkilint_chain_linter_finds_nothing(world, ca_alg, leaf_alg, tmp_path):
    ca = world.ca(ca_alg).certificate
    assert_pkilint_chain_clean(ca, ca, str(tmp_path))
    assert_pkilint_chain_clean(ca, world.unit(ca_alg, leaf_alg).certificate, str(tmp_path))


# --- the issuing profile --------------------------------------------------------------------------

@pytest.mark.parametrize("ca_alg", ["ecdsa-p256", "ecdsa-p384", "rsa-2048"])
def test_ca_profile(world, ca_alg):
    assert_is_ca_profile(world.ca(ca_alg).certificate)


@pytest.mark.parametrize(("ca_alg", "leaf_alg"), COMBOS, ids=COMBO_IDS)
def test_leaf_profile(world, ca_alg, leaf_alg):
    unit, ca = world.unit(ca_alg, leaf_alg), world.ca(ca_alg).certificate
    assert_is_leaf_profile(unit.certificate, ca, unit_name="app/0", dns_names=[DNS],
                           ip_addresses=[IP, IP6])
    assert_serial_well_formed(unit.certificate)


@pytest.mark.parametrize(("ca_alg", "leaf_alg", "hash_name"), [
    ("ecdsa-p256", "ecdsa-p256", "sha256"),
    ("ecdsa-p384", "ecdsa-p384", "sha384"),
    ("rsa-2048", "rsa-2048", "sha256"),
])
def test_signature_hash_follows_the_ca_key(world, ca_alg, leaf_alg, hash_name):
    assert world.unit(ca_alg, leaf_alg).certificate.signature_hash_algorithm.name == hash_name


def test_serials_are_unique_positive_and_carry_at_least_64_random_bits():
    ca = make_ca()
    public_key = pki.generate_private_key().public_key()
    serials = []
    for _ in range(1000):
        cert = pki.issue_certificate(ca, public_key, common_name="app/0", dns_names=[DNS])
        assert_serial_well_formed(cert)
        serials.append(cert.serial_number)
    assert len(set(serials)) == len(serials)
    # 64 random bits: every one of the low 64 bits takes both values across 1,000 serials
    # (chance of a false failure per bit: 2**-999), and no serial is short.
    for bit in range(64):
        assert len({(s >> bit) & 1 for s in serials}) == 2, f"bit {bit} never varies"
    assert min(s.bit_length() for s in serials) > 64


def test_not_before_is_backdated_a_few_minutes():
    now = datetime.datetime(2030, 6, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)
    ca = make_ca(now=now - datetime.timedelta(days=1))
    cert = issue_unit(ca, now=now).certificate
    backdate = now - cert.not_valid_before_utc
    assert datetime.timedelta(minutes=1) <= backdate <= datetime.timedelta(minutes=15)
    assert cert.not_valid_after_utc == now + datetime.timedelta(days=365)


def test_not_before_never_precedes_the_ca():
    now = datetime.datetime(2030, 6, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)
    ca = make_ca(now=now)  # the CA's own notBefore is now - BACKDATE
    cert = issue_unit(ca, now=now + datetime.timedelta(seconds=30)).certificate
    assert cert.not_valid_before_utc >= ca.certificate.not_valid_before_utc


def test_not_after_is_capped_by_the_ca_expiry():
    now = datetime.datetime(2030, 6, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)
    ca = make_ca(lifetime_days=30, now=now)
    cert = issue_unit(ca, lifetime_days=365, now=now).certificate
    assert cert.not_valid_after_utc == ca.certificate.not_valid_after_utc
    # ... and it still verifies, right up to the shared expiry.
    last = cert.not_valid_after_utc - datetime.timedelta(seconds=1)
    pki.verify_certificate(cert, [ca.certificate], dns_name=DNS, now=last)


def test_refuses_to_sign_with_an_expired_or_not_yet_valid_ca():
    now = datetime.datetime(2030, 6, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)
    ca = make_ca(lifetime_days=30, now=now)
    key = pki.generate_private_key()
    csr = pki.csr_to_pem(pki.build_csr(key, "app/0", dns_names=[DNS]))
    for when in (ca.certificate.not_valid_after_utc,
                 ca.certificate.not_valid_after_utc + datetime.timedelta(days=1),
                 ca.certificate.not_valid_before_utc - datetime.timedelta(seconds=1)):
        with pytest.raises(pki.PKIError, match="not valid now"):
            pki.issue_certificate(ca, key.public_key(), common_name="app/0", dns_names=[DNS],
                                  now=when)
        with pytest.raises(pki.PKIError, match="not valid now"):
            policy.sign_csr(ca, csr, permissive_claims([DNS]), unit_name="app/0", now=when)


def _hostile_csr(key) -> bytes:
    """A CSR asking for everything a unit must not get: CA:TRUE, keyCertSign, codeSigning,
    OCSP no-check, a made-up critical extension, and an organisation in its subject."""
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

    builder = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Evil Root CA"),
                                 x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Evil")]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(DNS)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=True, key_encipherment=True,
            data_encipherment=True, key_agreement=True, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING,
                                              ExtendedKeyUsageOID.OCSP_SIGNING]),
                       critical=False)
        .add_extension(x509.OCSPNoCheck(), critical=False)
        .add_extension(x509.UnrecognizedExtension(ObjectIdentifier("1.3.6.1.4.1.99999.1"),
                                                  b"\x05\x00"), critical=True)
    )
    return pki.csr_to_pem(builder.sign(key, hashes.SHA256())).encode()


@pytest.mark.parametrize("leaf_alg", ["ecdsa-p256", "rsa-2048"])
def test_no_extension_or_subject_is_copied_from_the_csr(world, leaf_alg, tmp_path):
    ca = world.ca("ecdsa-p256")
    key = pki.generate_private_key(leaf_alg)
    cert = policy.sign_csr(ca, _hostile_csr(key), permissive_claims([DNS]), unit_name="app/7")
    assert {e.oid for e in cert.extensions} == LEAF_EXTENSIONS
    assert_is_leaf_profile(cert, ca.certificate, unit_name="app/7", dns_names=[DNS])
    # The result is an ordinary leaf to every verifier: it cannot sign other certificates.
    assert_openssl_verifies_as_server(cert, ca.certificate, DNS, str(tmp_path))
    assert_pkilint_clean(cert)
