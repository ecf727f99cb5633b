"""The signer's policy against third-party CSRs: every CSR fixture that pyca's
``cryptography-vectors`` ships (x509/requests), plus generated CSRs for the notable cases the
vectors lack (MD5/SHA-1 with names, forbidden SAN types, weak keys, forged signatures).

Each input is checked twice: as shipped, and as a canonical PEM block (the single block
extracted, or the DER wrapped), so the check reaches past the PEM structure. Permissive
claims allow every name the CSR asks for, so what is tested is the CSR itself. Every outcome
is a CheckedCSR or a CSRRejected with the expected code; never another exception.
"""
import base64
import os
import re
import subprocess

import cryptography_vectors
import pytest
from charms.layer.tls import pki, policy
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.x509.oid import NameOID, ObjectIdentifier
from pki_helpers import assert_csr_rejected, csr_pem_from_der, make_ca

VECTOR_DIR = os.path.join(os.path.dirname(cryptography_vectors.__file__), "x509", "requests")
ACCEPTED = None  # expected outcome: check_csr returns a CheckedCSR

# name -> (code as shipped, code as a canonical PEM block). The shipped .der files and the
# files with `openssl req -text` output before the block fail the PEM structure check.
VECTOR_EXPECTATIONS = {
    "bad-version.pem": ("unparseable", "unparseable"),
    "basic_constraints.pem": ("pem-structure", "weak-signature"),  # SHA-1
    "challenge-invalid.der": ("pem-structure", "bad-signature"),
    "challenge-multi-valued.der": ("pem-structure", "bad-signature"),
    "challenge-unstructured.pem": ("no-names", "no-names"),
    "challenge.pem": ("no-names", "no-names"),
    "dsa_sha1.der": ("pem-structure", "key-type"),
    "dsa_sha1.pem": ("key-type", "key-type"),
    "ec_sha256.der": ("pem-structure", "no-names"),
    "ec_sha256.pem": ("no-names", "no-names"),
    "ec_sha256_old_header.pem": ("pem-structure", "no-names"),  # NEW CERTIFICATE REQUEST
    "freeipa-bad-critical.pem": ("unparseable", "unparseable"),  # otherName SANs, bad BOOL
    "invalid_signature.pem": ("key-type", "key-type"),  # RSA-1024: the key check comes first
    "long-form-attribute.pem": ("bad-signature", "bad-signature"),
    "rsa_md4.der": ("pem-structure", "weak-signature"),
    "rsa_md4.pem": ("weak-signature", "weak-signature"),
    "rsa_sha1.der": ("pem-structure", "weak-signature"),
    "rsa_sha1.pem": ("weak-signature", "weak-signature"),
    "rsa_sha256.der": ("pem-structure", "no-names"),
    "rsa_sha256.pem": ("no-names", "no-names"),
    "san_rsa_sha1.der": ("pem-structure", "weak-signature"),
    "san_rsa_sha1.pem": ("weak-signature", "weak-signature"),
    "two_basic_constraints.pem": ("pem-structure", "weak-signature"),
    "unsupported_extension.pem": ("pem-structure", "weak-signature"),
    "unsupported_extension_critical.pem": ("pem-structure", "weak-signature"),
    "zero-element-attribute.pem": ("unparseable", "unparseable"),
}
_ANY_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z ]+)-----\r?\n(.*?)-----END \1-----", re.S)


def _vector_files():
    return sorted(os.listdir(VECTOR_DIR))


def _read_vector(name: str) -> bytes:
    with open(os.path.join(VECTOR_DIR, name), "rb") as f:
        return f.read()


def _canonical_pem(name: str, data: bytes) -> bytes:
    """The vector as one clean CERTIFICATE REQUEST block, whatever its shipped form."""
    if name.endswith(".der"):
        return csr_pem_from_der(data)
    match = _ANY_PEM_BLOCK.search(data)
    assert match, name
    return csr_pem_from_der(base64.b64decode(b"".join(match.group(2).split())))


def _claims_for(pem: bytes) -> policy.Claims:
    """Permissive claims: every DNS/IP name the CSR asks for, read leniently."""
    dns = ["cryptography.io", "sub.cryptography.io", "replica1.ipa.test", "a.test"]
    try:
        san = x509.load_pem_x509_csr(pem).extensions.get_extension_for_class(
            x509.SubjectAlternativeName).value
    except Exception:  # a broken vector asks for nothing we can read
        return policy.Claims.build(allowed_dns=dns)
    return policy.Claims.build(
        allowed_dns=dns + san.get_values_for_type(x509.DNSName),
        allowed_ips=[str(i) for i in san.get_values_for_type(x509.IPAddress)])


def _outcome(pem, claims):
    """None when accepted, else the CSRRejected code; any other exception propagates."""
    try:
        policy.check_csr(pem, claims)
    except policy.CSRRejected as exc:
        assert exc.reason and "PRIVATE" not in exc.reason
        return exc.code
    return ACCEPTED


def test_every_shipped_request_vector_has_an_expectation():
    """A new cryptography-vectors release adding a CSR fixture makes this fail: look at it."""
    assert _vector_files() == sorted(VECTOR_EXPECTATIONS)


@pytest.mark.parametrize("name", sorted(VECTOR_EXPECTATIONS))
def test_vector_as_shipped(name):
    data = _read_vector(name)
    assert _outcome(data, _claims_for(_canonical_pem(name, data))) == \
        VECTOR_EXPECTATIONS[name][0]


@pytest.mark.parametrize("name", sorted(VECTOR_EXPECTATIONS))
def test_vector_as_canonical_pem(name):
    pem = _canonical_pem(name, _read_vector(name))
    assert _outcome(pem, _claims_for(pem)) == VECTOR_EXPECTATIONS[name][1]
    assert _outcome(pem.decode("ascii"), _claims_for(pem)) == VECTOR_EXPECTATIONS[name][1]


@pytest.mark.parametrize("name", sorted(VECTOR_EXPECTATIONS))
def test_sign_csr_rejects_vector_the_same_way(name, ca):
    pem = _canonical_pem(name, _read_vector(name))
    with pytest.raises(policy.CSRRejected) as info:
        policy.sign_csr(ca, pem, _claims_for(pem), unit_name="app/0")
    assert info.value.code == VECTOR_EXPECTATIONS[name][1]


def test_md4_signed_vector_is_named_a_weak_signature():
    pem = _canonical_pem("rsa_md4.pem", _read_vector("rsa_md4.pem"))
    assert_csr_rejected(pem, _claims_for(pem), "weak-signature")


# --- generated CSRs for the notable cases ------------------------------------------------------

@pytest.fixture(scope="module")
def ca():
    return make_ca()


@pytest.fixture(scope="module")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


SHA256 = hashes.SHA256()


def _csr(key, names, hash_algorithm=SHA256, *, extensions=()):
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "app/0")]))
    if names is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    for ext, critical in extensions:
        builder = builder.add_extension(ext, critical=critical)
    algorithm = None if isinstance(key, (ed25519.Ed25519PrivateKey,
                                         ed448.Ed448PrivateKey)) else hash_algorithm
    return builder.sign(key, algorithm).public_bytes(serialization.Encoding.PEM)


def _openssl_csr(key, digest: str, tmp_path) -> bytes:
    """A CSR signed with ``digest`` by the openssl CLI (cryptography refuses MD5/SHA-1)."""
    key_path = tmp_path / "key.pem"
    key_path.write_bytes(pki.private_key_to_pem(key))
    return subprocess.run(
        ["openssl", "req", "-new", "-key", str(key_path), "-" + digest, "-subj", "/CN=app-0",
         "-addext", "subjectAltName=DNS:a.test"],
        capture_output=True, check=True, timeout=30).stdout


def _with_foreign_signature(pem: bytes, key) -> bytes:
    """The same CSR with its signature replaced by one from ``key`` (no proof of
    possession of the key inside)."""
    csr = x509.load_pem_x509_csr(pem)
    der = csr.public_bytes(serialization.Encoding.DER)
    forged = key.sign(csr.tbs_certrequest_bytes, padding.PKCS1v15(), hashes.SHA256())
    assert len(forged) == len(csr.signature)
    return csr_pem_from_der(der.replace(csr.signature, forged))


def _flip_last_signature_byte(pem: bytes) -> bytes:
    der = x509.load_pem_x509_csr(pem).public_bytes(serialization.Encoding.DER)
    return csr_pem_from_der(der[:-1] + bytes([der[-1] ^ 0x01]))


A_TEST = [x509.DNSName("a.test")]


@pytest.mark.parametrize("digest", ["md5", "sha1"])
def test_md5_and_sha1_signed_csrs_with_names_are_weak(rsa_key, digest, tmp_path):
    pem = _openssl_csr(rsa_key, digest, tmp_path)
    assert x509.load_pem_x509_csr(pem).signature_hash_algorithm.name == digest
    assert_csr_rejected(pem, _claims_for(pem), "weak-signature")


@pytest.mark.parametrize("hash_algorithm", [hashes.SHA224(), hashes.SHA3_256()],
                         ids=["sha224", "sha3-256"])
def test_hashes_outside_sha256_384_512_are_refused(rsa_key, hash_algorithm):
    pem = _csr(rsa_key, A_TEST, hash_algorithm)
    assert_csr_rejected(pem, _claims_for(pem), "weak-signature")


def test_a_signature_by_another_key_is_refused(rsa_key):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = _with_foreign_signature(_csr(rsa_key, A_TEST), other)
    assert_csr_rejected(pem, _claims_for(pem), "bad-signature")


@pytest.mark.parametrize("alg", ["ecdsa-p256", "ed25519"])
def test_a_damaged_signature_is_refused(alg):
    pem = _flip_last_signature_byte(_csr(pki.generate_private_key(alg), A_TEST))
    assert_csr_rejected(pem, _claims_for(pem), "bad-signature")


@pytest.mark.parametrize("make_key", [
    lambda: dsa.generate_private_key(2048),
    lambda: ed448.Ed448PrivateKey.generate(),
    lambda: ec.generate_private_key(ec.SECP521R1()),
    lambda: ec.generate_private_key(ec.SECP256K1()),
    lambda: rsa.generate_private_key(public_exponent=65537, key_size=1024),
    lambda: rsa.generate_private_key(public_exponent=3, key_size=2048),
], ids=["dsa-2048", "ed448", "ecdsa-p521", "ecdsa-secp256k1", "rsa-1024", "rsa-e3"])
def test_key_types_outside_the_allowed_set_are_refused(make_key):
    pem = _csr(make_key(), A_TEST)
    assert_csr_rejected(pem, _claims_for(pem), "key-type")


@pytest.mark.parametrize("name", [
    x509.RFC822Name("root@a.test"),
    x509.UniformResourceIdentifier("https://a.test/"),
    x509.OtherName(ObjectIdentifier("1.3.6.1.4.1.311.20.2.3"), b"\x0c\x06a.test"),
    x509.RegisteredID(ObjectIdentifier("1.2.3.4")),
    x509.DirectoryName(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "a.test")])),
], ids=["email", "uri", "otherName-upn", "registeredID", "directoryName"])
def test_san_types_other_than_dns_and_ip_are_refused(name):
    pem = _csr(pki.generate_private_key(), [x509.DNSName("a.test"), name])
    assert_csr_rejected(pem, _claims_for(pem), "san-type")


def test_an_ip_network_in_the_san_is_refused():
    import ipaddress
    pem = _csr(pki.generate_private_key(),
               [x509.IPAddress(ipaddress.ip_network("10.0.0.0/8"))])
    assert_csr_rejected(pem, _claims_for(pem), "san-type")


@pytest.mark.parametrize(("dns_name", "code"), [
    ("*.a.test", "wildcard"),
    ("a*.test", "wildcard"),
    ("under_score.test", "bad-name"),
    ("-lead.test", "bad-name"),
    ("a" * 64 + ".test", "bad-name"),
    ("a..test", "bad-name"),
])
def test_bad_dns_names_are_refused(dns_name, code):
    pem = _csr(pki.generate_private_key(), [x509.DNSName(dns_name)])
    assert_csr_rejected(pem, policy.Claims.build(allowed_dns=[dns_name]), code)


def test_a_csr_without_names_is_refused():
    assert_csr_rejected(_csr(pki.generate_private_key(), None), _claims_for(b""), "no-names")


def test_an_oversized_csr_is_refused_before_parsing():
    names = [x509.DNSName(f"host-{i:05d}.a.test") for i in range(1200)]
    pem = _csr(pki.generate_private_key(), names)
    assert len(pem) > policy.MAX_CSR_BYTES
    assert_csr_rejected(pem, _claims_for(pem), "too-large")


@pytest.mark.parametrize(("alg", "hash_algorithm"), [
    ("ecdsa-p256", hashes.SHA256()), ("ecdsa-p256", hashes.SHA384()),
    ("ecdsa-p384", hashes.SHA384()), ("rsa-2048", hashes.SHA512()), ("ed25519", None),
], ids=["p256-sha256", "p256-sha384", "p384-sha384", "rsa2048-sha512", "ed25519"])
def test_good_csrs_from_other_builders_are_accepted(alg, hash_algorithm, ca):
    pem = _csr(pki.generate_private_key(alg), A_TEST, hash_algorithm)
    assert _outcome(pem, _claims_for(pem)) is ACCEPTED
    cert = policy.sign_csr(ca, pem, _claims_for(pem), unit_name="app/0")
    pki.verify_certificate(cert, [ca.certificate], dns_name="a.test")


def test_an_openssl_made_sha256_csr_is_accepted(rsa_key, ca, tmp_path):
    pem = _openssl_csr(rsa_key, "sha256", tmp_path)
    cert = policy.sign_csr(ca, pem, _claims_for(pem), unit_name="app/0")
    pki.verify_certificate(cert, [ca.certificate], dns_name="a.test")


def test_an_unknown_critical_extension_in_the_csr_is_ignored_not_copied(ca):
    """The signer never copies CSR extensions, so an unknown critical one is harmless."""
    ext = x509.UnrecognizedExtension(ObjectIdentifier("1.3.6.1.4.1.99999.7"), b"\x05\x00")
    pem = _csr(pki.generate_private_key(), A_TEST, extensions=[(ext, True)])
    cert = policy.sign_csr(ca, pem, _claims_for(pem), unit_name="app/0")
    assert ext.oid not in {e.oid for e in cert.extensions}
