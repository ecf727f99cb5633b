"""The signer's policy: one negative test per rule, and what an accepted CSR yields."""
import datetime
import ipaddress
import subprocess

import pytest
from charms.layer.tls import pki, policy
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, rsa
from cryptography.x509.oid import NameOID, ObjectIdentifier

UNIT_DNS = "unit-0.example"
UNIT_IP = "10.0.0.10"
CLAIMS = policy.Claims.build(allowed_dns=[UNIT_DNS, "shared.example"], allowed_ips=[UNIT_IP],
                             taken_dns=["unit-1.example"], taken_ips=["10.0.0.11"])


@pytest.fixture(scope="module")
def ca():
    return pki.create_ca("policy test CA", lifetime_days=60)


@pytest.fixture(scope="module")
def unit_key():
    return pki.generate_private_key()


def csr_pem(key, names=None, hash_algorithm="default"):
    """A CSR PEM with the given GeneralNames (default: the unit's own DNS name and IP)."""
    if names is None:
        names = [x509.DNSName(UNIT_DNS), x509.IPAddress(ipaddress.ip_address(UNIT_IP))]
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "anything")]))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    algorithm = hashes.SHA256() if hash_algorithm == "default" else hash_algorithm
    csr = builder.sign(key, algorithm)
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def assert_rejected(pem, code, claims=CLAIMS):
    with pytest.raises(policy.CSRRejected) as info:
        policy.check_csr(pem, claims)
    assert info.value.code == code, info.value
    return info.value


def test_a_good_csr_passes_with_its_names(unit_key):
    checked = policy.check_csr(csr_pem(unit_key), CLAIMS)
    assert checked.dns_names == [UNIT_DNS]
    assert checked.ip_addresses == [UNIT_IP]
    assert checked.key_fingerprint == pki.public_key_fingerprint(unit_key)


def test_shared_names_and_case_and_trailing_dot_are_normalised(unit_key):
    names = [x509.DNSName("Unit-0.Example."), x509.DNSName("shared.example")]
    checked = policy.check_csr(csr_pem(unit_key, names), CLAIMS)
    assert checked.dns_names == ["shared.example", UNIT_DNS]


def test_too_large_is_rejected_before_parsing():
    assert_rejected("A" * (policy.MAX_CSR_BYTES + 1), "too-large")


@pytest.mark.parametrize("mangle", [
    pytest.param(lambda p: p + "junk after the block\n", id="trailing-junk"),
    pytest.param(lambda p: "text before\n" + p, id="text-before"),
    pytest.param(lambda p: p + p, id="second-block"),
    pytest.param(lambda p: p.replace("CERTIFICATE REQUEST", "CERTIFICATE"), id="wrong-label"),
    pytest.param(lambda p: p.replace("CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"),
                 id="legacy-label"),
    pytest.param(lambda p: p[: len(p) // 2], id="truncated"),
    pytest.param(lambda p: p.replace("-----\n", "-----\nProc-Type: 4,ENCRYPTED\n\n", 1),
                 id="pem-headers"),
    pytest.param(lambda p: "", id="empty"),
    pytest.param(lambda p: p.replace("\n", "\n\u00e9", 1), id="non-ascii"),
])
def test_pem_structure_is_exactly_one_block(unit_key, mangle):
    pem = csr_pem(unit_key)
    assert_rejected(mangle(pem), "too-large" if len(mangle(pem)) > policy.MAX_CSR_BYTES
                    else "pem-structure")


def test_bad_base64_body_is_a_structure_error(unit_key):
    lines = csr_pem(unit_key).splitlines(keepends=True)
    lines[1] = "====" + lines[1][4:]
    assert_rejected("".join(lines), "pem-structure")


def test_garbage_der_is_unparseable_not_a_crash():
    body = "QUJDREVGR0g=\n"
    assert_rejected("-----BEGIN CERTIFICATE REQUEST-----\n" + body +
                    "-----END CERTIFICATE REQUEST-----\n", "unparseable")


def test_bad_signature_is_rejected(unit_key):
    csr = x509.load_pem_x509_csr(csr_pem(unit_key).encode())
    der = bytearray(csr.public_bytes(serialization.Encoding.DER))
    der[-1] ^= 0x01  # the last byte lies in the signature BIT STRING
    pem = x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM)
    assert_rejected(pem, "bad-signature")


@pytest.mark.parametrize("digest", ["sha1", "md5"])
def test_weak_signature_hashes_are_rejected(tmp_path, digest):
    # cryptography refuses to sign with SHA-1/MD5, so the openssl CLI makes these CSRs.
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_file = tmp_path / "key.pem"
    key_file.write_bytes(pki.private_key_to_pem(key))
    made = subprocess.run(
        ["openssl", "req", "-new", "-key", str(key_file), f"-{digest}", "-subj", "/CN=x",
         "-addext", f"subjectAltName=DNS:{UNIT_DNS}"], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"openssl refuses {digest} signatures here: {made.stderr.strip()}")
    assert x509.load_pem_x509_csr(made.stdout.encode()).signature_hash_algorithm.name == digest
    assert_rejected(made.stdout, "weak-signature")


@pytest.mark.parametrize("make_key", [
    pytest.param(lambda: rsa.generate_private_key(public_exponent=65537, key_size=1024),
                 id="rsa-1024"),
    pytest.param(lambda: rsa.generate_private_key(public_exponent=65537, key_size=4160),
                 id="rsa-4160"),
    pytest.param(lambda: rsa.generate_private_key(public_exponent=3, key_size=2048),
                 id="rsa-e3"),
    pytest.param(lambda: dsa.generate_private_key(key_size=2048), id="dsa"),
    pytest.param(lambda: ec.generate_private_key(ec.SECP521R1()), id="p521"),
    pytest.param(lambda: ec.generate_private_key(ec.SECP256K1()), id="secp256k1"),
])
def test_weak_or_unsupported_keys_are_rejected(make_key):
    assert_rejected(csr_pem(make_key()), "key-type")


def test_ed448_is_rejected():
    key = ed448.Ed448PrivateKey.generate()
    assert_rejected(csr_pem(key, hash_algorithm=None), "key-type")


@pytest.mark.parametrize("algorithm", ["ecdsa-p256", "ecdsa-p384", "rsa-2048", "ed25519"])
def test_allowed_key_types_pass(algorithm):
    key = pki.generate_private_key(algorithm)
    pem = pki.csr_to_pem(pki.build_csr(key, "u", dns_names=[UNIT_DNS]))
    assert policy.check_csr(pem, CLAIMS).dns_names == [UNIT_DNS]


def test_wildcards_are_rejected(unit_key):
    assert_rejected(csr_pem(unit_key, [x509.DNSName("*.example")]), "wildcard")


@pytest.mark.parametrize("name", [
    pytest.param(x509.RFC822Name("root@example.com"), id="email"),
    pytest.param(x509.UniformResourceIdentifier("https://example.com/"), id="uri"),
    pytest.param(x509.OtherName(ObjectIdentifier("1.3.6.1.4.1.311.20.2.3"), b"\x0c\x01a"),
                 id="othername"),
    pytest.param(x509.DirectoryName(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")])),
                 id="dirname"),
    pytest.param(x509.IPAddress(ipaddress.ip_network("10.0.0.0/24")), id="ip-network"),
])
def test_san_types_other_than_dns_and_ip_are_rejected(unit_key, name):
    assert_rejected(csr_pem(unit_key, [x509.DNSName(UNIT_DNS), name]), "san-type")


@pytest.mark.parametrize("bad", ["a..example", "-lead.example", "x" * 64 + ".example",
                                 "under_score.example", "sp ace"])
def test_malformed_dns_names_are_rejected(unit_key, bad):
    assert_rejected(csr_pem(unit_key, [x509.DNSName(bad)]), "bad-name")


def test_no_san_is_rejected(unit_key):
    assert_rejected(csr_pem(unit_key, names=[]), "no-names")


@pytest.mark.parametrize("name", [x509.DNSName("elsewhere.example"),
                                  x509.IPAddress(ipaddress.ip_address("10.9.9.9"))],
                         ids=["dns", "ip"])
def test_names_the_unit_may_not_claim_are_rejected(unit_key, name):
    assert_rejected(csr_pem(unit_key, [name]), "name-not-allowed")


@pytest.mark.parametrize("name", [x509.DNSName("unit-1.example"),
                                  x509.IPAddress(ipaddress.ip_address("10.0.0.11"))],
                         ids=["dns", "ip"])
def test_names_held_by_another_unit_are_rejected_even_if_allowed(unit_key, name):
    claims = CLAIMS._replace(allowed_dns=CLAIMS.allowed_dns | {"unit-1.example"},
                             allowed_ips=CLAIMS.allowed_ips | {"10.0.0.11"})
    assert_rejected(csr_pem(unit_key, [name]), "name-taken", claims)


def test_the_cas_own_key_is_refused(ca):
    with pytest.raises(policy.CSRRejected) as info:
        policy.sign_csr(ca, csr_pem(ca.private_key), CLAIMS, unit_name="app/0")
    assert info.value.code == "key-reused"


def test_another_units_key_is_refused(unit_key):
    claims = CLAIMS._replace(
        forbidden_key_fingerprints=frozenset({pki.public_key_fingerprint(unit_key)}))
    assert_rejected(csr_pem(unit_key), "key-reused", claims)


def test_rejection_reasons_never_carry_key_material(ca, unit_key):
    secret = pki.private_key_to_pem(unit_key).decode()
    err = assert_rejected(secret, "pem-structure")
    assert "PRIVATE KEY" not in str(err) and "PRIVATE KEY" not in err.reason


def test_sign_csr_issues_with_the_signers_subject_and_the_checked_names(ca, unit_key):
    cert = policy.sign_csr(ca, csr_pem(unit_key), CLAIMS, unit_name="app/0", lifetime_days=10)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "app/0"
    assert pki.certificate_names(cert) == ([UNIT_DNS], [UNIT_IP])
    assert pki.certificate_matches_key(cert, unit_key)
    assert 9.9 < pki.days_to_expiry(cert) <= 10


def test_sign_csr_refuses_with_an_expired_ca(ca, unit_key):
    later = ca.certificate.not_valid_after_utc + datetime.timedelta(seconds=1)
    with pytest.raises(pki.PKIError, match="not valid now"):
        policy.sign_csr(ca, csr_pem(unit_key), CLAIMS, unit_name="app/0", now=later)
