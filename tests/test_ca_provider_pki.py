"""pki_provider: the CA's CSR, signed by the REAL charmlibs tls-certificates library
(the code canonical's self-signed-certificates charm signs with), and the checks of a
provider's answer before the application uses it. Hostile answers never raise."""
import datetime

import pytest
from charmlibs.interfaces.tls_certificates import _tls_certificates as lib
from charms.layer.tls import namespace, pki, pki_provider
from cryptography import x509

NOW = None


def library_root(name="provider root"):
    key = lib.PrivateKey.generate()
    cert = lib.Certificate.generate_self_signed_ca(
        lib.CertificateRequestAttributes(common_name=name, is_ca=True,
                                         add_unique_id_to_subject_name=False),
        key, datetime.timedelta(days=3650))
    return cert, key


def library_sign(csr_pem, ca, ca_key, days=90, is_ca=True):
    """What the library's provider publishes: the certificate, the CA, the chain."""
    cert = lib.CertificateSigningRequest.from_string(csr_pem).sign(
        ca=ca, ca_private_key=ca_key, validity=datetime.timedelta(days=days), is_ca=is_ca)
    return str(cert), str(ca), [str(cert), str(ca)]


def our_request(algorithm="ecdsa-p256", space=None):
    key = pki.generate_private_key(algorithm)
    csr = pki_provider.ca_csr(key, "tls-demo CA", organization="Juju model m",
                              namespace=space, request_id="1")
    return key, pki.private_key_to_pem(key).decode(), csr


def test_the_library_signs_our_csr_and_it_verifies_with_a_note_on_the_path_length():
    root, root_key = library_root()
    key, key_pem, csr = our_request(space=namespace.parse("example.com, 10.0.0.0/8"))
    cert, ca, chain = library_sign(csr, root, root_key)
    checked = pki_provider.verify_provider_ca(key_pem, cert, ca, chain, min_days=1)
    assert checked.problem is None, checked.problem
    assert checked.ca.certificate == pki.load_certificate(cert)
    assert checked.ca.anchor == pki.load_certificate(ca)
    assert checked.ca.intermediates == [pki.load_certificate(cert)]
    # the pinned library sets no path length on a CA it signs (pathLen 0 is not kept)
    assert checked.notes == ["the provider set no path length on the CA (0 is safer)"]
    # it copied our name constraints, so the signing CA carries them
    assert pki.name_constraints_of(checked.ca.certificate).dns_domains == ("example.com",)
    # a leaf our signer makes with it names it by key id and verifies under the root
    leaf_key = pki.generate_private_key()
    leaf = pki.issue_certificate(checked.ca, leaf_key.public_key(), common_name="u",
                                 dns_names=["u.example.com"])
    assert pki.authority_key_id(leaf) == pki.subject_key_id(checked.ca.certificate)
    pki.verify_certificate(leaf, [checked.ca.anchor], dns_name="u.example.com",
                           intermediates=checked.ca.intermediates)


def test_two_requests_for_one_rsa_key_differ():
    """A renewal CSR (same key, same subject) must not repeat the last one, or a provider
    that answered it would not sign again; RSA signatures are deterministic."""
    key = pki.generate_private_key("rsa-2048")
    one = pki_provider.ca_csr(key, "a CA", organization=None, namespace=None, request_id="1")
    two = pki_provider.ca_csr(key, "a CA", organization=None, namespace=None, request_id="2")
    assert one != two
    assert x509.load_pem_x509_csr(one.encode()).subject == \
        x509.load_pem_x509_csr(two.encode()).subject


@pytest.mark.parametrize("case", ["other key", "not a CA", "no root", "root only",
                                  "short", "expired", "self-signed"])
def test_answers_that_are_not_usable(case):
    root, root_key = library_root()
    key, key_pem, csr = our_request()
    if case == "other key":
        _, key_pem, _ = our_request()
    days = {"short": 0.01, "expired": -1}.get(case, 90)
    cert, ca, chain = library_sign(csr, root, root_key, days=1 if days < 1 else days,
                                   is_ca=case != "not a CA")
    if days < 1:  # the library takes whole timedeltas; make the end near or past
        cert, ca, chain = library_sign(csr, root, root_key, days=days)
    if case == "no root":
        other, _ = library_root("another root")
        ca, chain = str(other), [cert]
    if case == "root only":
        chain = []
    if case == "self-signed":
        ca_cert = pki.create_ca("self", private_key=key)
        cert = pki.certificate_to_pem(ca_cert.certificate)
        ca, chain = cert, [cert]
    checked = pki_provider.verify_provider_ca(key_pem, cert, ca, chain, min_days=1)
    if case == "root only":  # the CA alone (chain empty) is enough: it is the root
        assert checked.problem is None
        return
    assert checked.ca is None and checked.problem, case
    assert "PRIVATE KEY" not in checked.problem and "BEGIN" not in checked.problem


def test_the_library_issuer_name_bug_below_an_intermediate_is_refused():
    """A provider whose own CA is an intermediate signs with the pinned library: the
    certificate names the root as its issuer (Certificate.generate copies the CA's
    issuer), so it does not chain to the intermediate that signed it."""
    root, root_key = library_root()
    mid_key = lib.PrivateKey.generate()
    mid_csr = lib.CertificateSigningRequest.generate(
        lib.CertificateRequestAttributes(common_name="provider intermediate", is_ca=True),
        mid_key)
    mid = mid_csr.sign(ca=root, ca_private_key=root_key,
                       validity=datetime.timedelta(days=365), is_ca=True)
    key, key_pem, csr = our_request()
    cert, ca, _ = library_sign(csr, mid, mid_key)
    checked = pki_provider.verify_provider_ca(key_pem, cert, ca, [cert, ca, str(root)],
                                              min_days=1)
    assert checked.ca is None
    assert checked.problem


@pytest.mark.parametrize("garbage", ["", "x" * 70000, "-----BEGIN CERTIFICATE-----\nAAAA\n"
                                     "-----END CERTIFICATE-----\n", "\x00\xff", None, 5])
def test_garbage_never_raises(garbage):
    root, root_key = library_root()
    key, key_pem, csr = our_request()
    cert, ca, chain = library_sign(csr, root, root_key)
    for args in ((garbage, ca, chain), (cert, garbage, chain), (cert, ca, [garbage]),
                 (cert, ca, [cert] * 20)):
        checked = pki_provider.verify_provider_ca(key_pem, *args, min_days=1)
        assert checked.problem or checked.ca is not None
    assert pki_provider.verify_provider_ca(garbage, cert, ca, chain, min_days=1).problem


def test_a_renewal_is_overdue_halfway_from_the_rollover_fraction_to_the_end():
    """At fraction 0.8 of a 100-day CA the renewal is asked for; at 0.9 (day 90) a
    provider that has not answered is overdue and the self-made rollover takes over."""
    start = datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)
    ca = pki.create_ca("provider-signed CA", lifetime_days=100, now=start)
    pem = pki.certificate_to_pem(ca.certificate)
    begin = ca.certificate.not_valid_before_utc  # backdated a little
    end = ca.certificate.not_valid_after_utc
    at = begin + (end - begin) * 0.9
    assert not pki_provider.renewal_overdue(pem, 0.8, now=start)
    assert not pki_provider.renewal_overdue(pem, 0.8, now=begin + (end - begin) * 0.85)
    assert not pki_provider.renewal_overdue(pem, 0.8, now=at - datetime.timedelta(seconds=1))
    assert pki_provider.renewal_overdue(pem, 0.8, now=at)
    assert pki_provider.renewal_overdue(pem, 0.8, now=end)
    assert pki_provider.renewal_overdue("not a certificate", 0.8)
