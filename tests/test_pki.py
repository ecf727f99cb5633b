"""The PKI library on its own: keys, the CA, leaves, verification, PEM round trips."""
import datetime

import pytest
from charms.layer.tls import pki
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

NOW = datetime.datetime(2026, 6, 1, 12, 0, tzinfo=datetime.timezone.utc)


def extension(cert, cls):
    return cert.extensions.get_extension_for_class(cls)


def assert_verifies(cert, ca, **kw):
    pki.verify_certificate(cert, [ca.certificate], **kw)


def assert_does_not_verify(cert, bundle, **kw):
    with pytest.raises(pki.CertificateVerificationError):
        pki.verify_certificate(cert, bundle, **kw)


@pytest.fixture(scope="module")
def ca():
    return pki.create_ca("unit test CA", organization="tests", lifetime_days=3650, now=NOW)


@pytest.mark.parametrize("algorithm,kind", [
    ("ecdsa-p256", ec.EllipticCurvePrivateKey), ("ecdsa-p384", ec.EllipticCurvePrivateKey),
    ("rsa-2048", rsa.RSAPrivateKey), ("ed25519", ed25519.Ed25519PrivateKey)])
def test_generate_private_key_gives_the_asked_type(algorithm, kind):
    key = pki.generate_private_key(algorithm)
    assert isinstance(key, kind)
    assert pki.key_algorithm_of(key) == algorithm


def test_unknown_key_algorithm_is_a_clear_error():
    with pytest.raises(pki.PKIError, match="unknown key algorithm 'rsa-1024'"):
        pki.generate_private_key("rsa-1024")


def test_private_key_pem_round_trip_and_errors_hide_the_text():
    key = pki.generate_private_key()
    pem = pki.private_key_to_pem(key)
    assert pki.public_key_fingerprint(pki.load_private_key(pem)) == (
        pki.public_key_fingerprint(key))
    broken = pem.replace(b"A", b"B", 3)
    with pytest.raises(pki.PKIError) as info:
        pki.load_private_key(broken)
    assert "BEGIN" not in str(info.value) and broken.decode()[40:80] not in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_the_ca_has_the_profile_of_a_pathlen_zero_root(ca):
    cert = ca.certificate
    constraints = extension(cert, x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0
    usage = extension(cert, x509.KeyUsage)
    assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign
    assert not usage.value.digital_signature
    assert extension(cert, x509.SubjectKeyIdentifier).value.digest
    assert cert.not_valid_after_utc - NOW == datetime.timedelta(days=3650)
    assert cert.subject == cert.issuer
    assert "tests" in cert.subject.rfc4514_string()


def test_the_ca_repr_never_shows_its_key(ca):
    assert "PRIVATE" not in repr(ca) and "unit test CA" in repr(ca)


def test_a_ca_refuses_a_key_that_does_not_match(ca):
    with pytest.raises(pki.PKIError, match="does not match"):
        pki.CertificateAuthority(ca.certificate, pki.generate_private_key())


def test_a_ca_cannot_use_ed25519():
    with pytest.raises(pki.PKIError, match="a CA key must be"):
        pki.create_ca("x", key_algorithm="ed25519")


def test_a_leaf_has_the_signers_extensions(ca):
    key = pki.generate_private_key("rsa-2048")
    cert = pki.issue_certificate(ca, key.public_key(), common_name="app/3",
                                 dns_names=["a.example"], ip_addresses=["10.1.2.3"],
                                 lifetime_days=90, now=NOW)
    constraints = extension(cert, x509.BasicConstraints)
    assert constraints.critical and not constraints.value.ca
    usage = extension(cert, x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and usage.value.key_encipherment
    eku = extension(cert, x509.ExtendedKeyUsage).value
    assert list(eku) == [x509.oid.ExtendedKeyUsageOID.SERVER_AUTH,
                         x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]
    aki = extension(cert, x509.AuthorityKeyIdentifier).value.key_identifier
    assert aki == extension(ca.certificate, x509.SubjectKeyIdentifier).value.digest
    assert cert.serial_number.bit_length() >= 64
    assert cert.not_valid_before_utc == NOW - pki.BACKDATE
    assert cert.not_valid_after_utc == NOW + datetime.timedelta(days=90)


def test_an_ecdsa_leaf_has_no_key_encipherment(ca):
    key = pki.generate_private_key()
    cert = pki.issue_certificate(ca, key.public_key(), common_name="u", dns_names=["u"], now=NOW)
    assert not extension(cert, x509.KeyUsage).value.key_encipherment


def test_a_leaf_never_outlives_its_ca(ca):
    key = pki.generate_private_key()
    cert = pki.issue_certificate(ca, key.public_key(), common_name="u", dns_names=["u"],
                                 lifetime_days=100000, now=NOW)
    assert cert.not_valid_after_utc == ca.certificate.not_valid_after_utc


def test_issuing_needs_a_name_and_a_valid_ca(ca):
    key = pki.generate_private_key()
    with pytest.raises(pki.PKIError, match="at least one"):
        pki.issue_certificate(ca, key.public_key(), common_name="u", now=NOW)
    with pytest.raises(pki.PKIError, match="not valid now"):
        pki.issue_certificate(ca, key.public_key(), common_name="u", dns_names=["u"],
                              now=NOW - datetime.timedelta(days=1))


@pytest.mark.parametrize("algorithm", ["ecdsa-p256", "ecdsa-p384", "rsa-2048", "ed25519"])
def test_leaves_verify_for_their_names_and_purposes_only(ca, algorithm):
    key = pki.generate_private_key(algorithm)
    cert = pki.issue_certificate(ca, key.public_key(), common_name="u",
                                 dns_names=["u.example"], ip_addresses=["10.0.0.7"], now=NOW)
    when = NOW + datetime.timedelta(hours=1)
    assert_verifies(cert, ca, dns_name="u.example", now=when)
    assert_verifies(cert, ca, ip_address="10.0.0.7", now=when)
    assert_verifies(cert, ca, purpose="client", now=when)
    assert_does_not_verify(cert, [ca.certificate], dns_name="v.example", now=when)
    assert_does_not_verify(cert, [ca.certificate], ip_address="10.0.0.8", now=when)
    foreign = pki.create_ca("foreign", now=NOW)
    assert_does_not_verify(cert, [foreign.certificate], dns_name="u.example", now=when)
    assert_does_not_verify(cert, [ca.certificate], dns_name="u.example",
                           now=cert.not_valid_after_utc + datetime.timedelta(seconds=1))


def test_a_bundle_with_two_cas_verifies_leaves_of_either(ca):
    other = pki.create_ca("next CA", now=NOW)
    key = pki.generate_private_key()
    cert = pki.issue_certificate(other, key.public_key(), common_name="u",
                                 dns_names=["u.example"], now=NOW)
    bundle = pki.load_certificates(pki.certificates_to_pem([other.certificate, ca.certificate]))
    pki.verify_certificate(cert, bundle, dns_name="u.example",
                           now=NOW + datetime.timedelta(minutes=1))


def test_certificate_matches_key_and_days_to_expiry(ca):
    key = pki.generate_private_key()
    cert = pki.issue_certificate(ca, key.public_key(), common_name="u", dns_names=["u"],
                                 lifetime_days=30, now=NOW)
    assert pki.certificate_matches_key(cert, key)
    assert not pki.certificate_matches_key(cert, pki.generate_private_key())
    assert pki.days_to_expiry(cert, NOW) == pytest.approx(30)
    assert pki.days_to_expiry(cert, NOW + datetime.timedelta(days=31)) < 0


def test_pem_helpers_round_trip_and_reject_garbage(ca):
    pem = pki.certificate_to_pem(ca.certificate)
    assert pki.load_certificate(pem) == ca.certificate
    with pytest.raises(pki.PKIError, match="expected one certificate"):
        pki.load_certificate(pem + pem)
    with pytest.raises(pki.PKIError):
        pki.load_certificates("not pem")


# --- the root + intermediate chain (issue 11: Java ignores a trust anchor's constraints) --

def _chain(**kw):
    from charms.layer.tls import namespace

    return pki.create_ca_chain("chain CA", organization="tests", lifetime_days=30,
                               name_constraints=namespace.parse("internal 10.0.0.0/8"),
                               now=NOW, **kw)


def test_a_ca_chain_is_an_intermediate_pathlen_zero_under_a_pathlen_one_root():
    ca = _chain()
    (root,) = ca.chain
    inter = ca.certificate
    assert ca.anchor is root and ca.intermediates == [inter]
    assert root.issuer == root.subject and inter.issuer == root.subject
    assert inter.subject != root.subject
    for cert, path_length in ((root, 1), (inter, 0)):
        basic = extension(cert, x509.BasicConstraints)
        assert basic.critical and basic.value.ca and basic.value.path_length == path_length
        usage = extension(cert, x509.KeyUsage)
        assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign
        constraints = extension(cert, x509.NameConstraints)
        assert constraints.critical
        assert [n.value for n in constraints.value.permitted_subtrees if
                isinstance(n, x509.DNSName)] == ["internal"]
    assert pki.authority_key_id(inter) == pki.subject_key_id(root)
    assert pki.subject_key_id(inter) != pki.subject_key_id(root)
    inter.verify_directly_issued_by(root)
    # the intermediate lives exactly as long as the root: without the root key it cannot
    # be renewed, so its end is a CA rollover
    assert (inter.not_valid_before_utc, inter.not_valid_after_utc) == (
        root.not_valid_before_utc, root.not_valid_after_utc)
    assert pki.ca_problem(ca, now=NOW) is None


def test_the_root_key_is_neither_returned_nor_kept():
    ca = _chain()
    assert ca.__slots__ == ("certificate", "private_key", "chain")
    assert pki.certificate_matches_key(ca.certificate, ca.private_key)
    assert not pki.certificate_matches_key(ca.anchor, ca.private_key)
    assert all(isinstance(c, x509.Certificate) for c in ca.chain)


def test_a_leaf_of_the_intermediate_verifies_only_with_the_intermediate_presented():
    ca = _chain()
    key = pki.generate_private_key()
    leaf = pki.issue_certificate(ca, key.public_key(), common_name="u", dns_names=[
        "a.internal"], now=NOW)
    assert pki.authority_key_id(leaf) == pki.subject_key_id(ca.certificate)
    pki.verify_certificate(leaf, [ca.anchor], dns_name="a.internal",
                           intermediates=ca.intermediates, now=NOW)
    assert_does_not_verify(leaf, [ca.anchor], dns_name="a.internal", now=NOW)
    assert pki.chain_for(leaf, ca.intermediates) == ca.intermediates
    forged = pki.issue_certificate(ca, key.public_key(), common_name="u",
                                   dns_names=["pypi.org"], now=NOW)
    assert_does_not_verify(forged, [ca.anchor], dns_name="pypi.org",
                           intermediates=ca.intermediates, now=NOW)


def test_issuing_cas_finds_the_intermediate_of_each_root_and_checks_its_signature(ca):
    chained = _chain()
    other = _chain()
    assert pki.issuing_cas([chained.anchor, ca.certificate],
                           [other.certificate, chained.certificate]) == [
        chained.certificate, ca.certificate]
    # an intermediate naming the root's key id but not signed by it is not taken
    impostor = pki.create_ca("impostor", now=NOW)
    fake = (x509.CertificateBuilder().subject_name(chained.certificate.subject)
            .issuer_name(chained.anchor.subject).public_key(impostor.private_key.public_key())
            .serial_number(1).not_valid_before(NOW).not_valid_after(
                NOW + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier(
                pki.subject_key_id(chained.anchor), None, None), critical=False)
            .sign(impostor.private_key, pki.hashes.SHA256()))
    assert pki.issuing_cas([chained.anchor], [fake]) == [chained.anchor]


def test_issuing_cas_lists_every_intermediate_under_a_root_the_first_first():
    """A switch under the same root publishes the new intermediate, then the old one:
    both sign leaves (each gets its CRL), the new one first."""
    from pki_helpers import make_external_ca

    root, old = make_external_ca("old")
    _, new = make_external_ca("new", root=root)
    assert pki.issuing_cas([root.certificate], [new.certificate, old.certificate]) == [
        new.certificate, old.certificate]
    assert pki.issuing_cas([root.certificate], [old.certificate]) == [old.certificate]


def test_a_chain_that_does_not_lead_to_a_root_is_a_ca_problem(ca):
    chained = _chain()
    broken = pki.CertificateAuthority(chained.certificate, chained.private_key,
                                      [ca.certificate])
    assert "chain breaks" in pki.ca_problem(broken, now=NOW)
    assert pki.chain_problem(chained.certificate, chained.chain, now=NOW) is None
