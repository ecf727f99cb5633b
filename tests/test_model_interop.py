"""The interop checks of test_pki_interop, run on what the built charm really issues.

test_pki_interop issues its fixtures with dotted names (``app-N.test``); a deployed unit's
certificate carries the machine's single-label host name (``juju-xxxxxx-N``), its FQDN and
its address. Here a 3-unit model of tls-demo settles and each unit's own files (leaf, key,
CA) go through cryptography's verifier, ``openssl verify -x509_strict``, a strict mutual-TLS
handshake with Python's ``ssl`` and pkilint, whose findings must be exactly the expected ones.
"""
import ssl

import pytest
from charms.layer.tls import pki
from cryptography import x509
from model_checks import check_certificates, published_bundle, unit_files
from pki_helpers import (
    Unit,
    assert_mtls_fails_hostname,
    assert_mtls_succeeds,
    assert_not_verifies_as_server,
    assert_openssl_not_verifies_as_server,
    assert_openssl_verifies_as_client,
    assert_openssl_verifies_as_server,
    assert_pkilint_chain_clean,
    assert_verifies_as_client,
    assert_verifies_as_server,
    pkilint_findings,
)

pytestmark = [pytest.mark.model, pytest.mark.slow]

TLS_VERSIONS = [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3]


def single_label_findings(cert: x509.Certificate):
    """The findings pkilint's PKIX profile has for ``cert`` although RFC 5280 allows them:
    one ``pkix.invalid_domain_name_syntax`` ERROR per single-label dNSName in the SAN.

    pkilint checks dNSName with ``validators.domain``, which wants at least one dot. RFC
    5280 section 4.2.1.6 asks for the "preferred name syntax" of RFC 1034 section 3.5 (as
    modified by RFC 1123 section 2.1), where ``<subdomain> ::= <label> | <subdomain> "."
    <label>``: a single label such as a unit's host name ``juju-xxxxxx-N`` is a valid
    dNSName, and cryptography, OpenSSL and Python's ``ssl`` all match it (checked below).
    """
    extensions = list(cert.extensions)
    san_index = [e.oid for e in extensions].index(x509.SubjectAlternativeName.oid)
    path = "certificate.tbsCertificate.extensions.{}.extnValue.subjectAltName.{}.dNSName"
    return sorted(
        ("ERROR", "pkix.invalid_domain_name_syntax",
         f'Invalid domain name syntax: "{name.value}"', path.format(san_index, i))
        for i, name in enumerate(extensions[san_index].value)
        if isinstance(name, x509.DNSName) and "." not in name.value)


def test_the_certificates_a_model_issues_pass_the_interop_checks(make_model, tmp_path):
    model = make_model(seed=1)
    model.deploy(3)
    model.settle()
    check_certificates(model)  # each unit's key file is 0600 and matches its certificate

    # After a fresh deploy every unit trusts the one CA the leader published.
    [ca] = published_bundle(model)
    units, hosts = {}, {}
    for name in model.unit_names:
        files = unit_files(model, name)
        assert pki.load_certificates(files["ca"].read_bytes()) == [ca], name
        units[name] = Unit(name, pki.load_private_key(files["key"].read_bytes()),
                           pki.load_certificate(files["cert"].read_bytes()))
        unit = model.unit(name)
        hosts[name] = (unit.hostname, f"{unit.hostname}.sim", unit.address)
        assert "." not in unit.hostname, unit.hostname  # the case the fixtures never have

    directory = str(tmp_path)
    for name, unit in units.items():
        cert, (hostname, fqdn, address) = unit.certificate, hosts[name]
        others = [hosts[other][0] for other in units if other != name]

        # 1. cryptography's verifier (directly and through pki.verify_certificate)
        for host in (hostname, hostname.upper(), fqdn, address):
            assert_verifies_as_server(cert, ca, host)
        assert_verifies_as_client(cert, ca)
        for host in others + [f"x.{hostname}", fqdn.split(".", 1)[1]]:
            assert_not_verifies_as_server(cert, ca, host)

        # 2. openssl verify -x509_strict with the CA
        for host in (hostname, fqdn, address):
            assert_openssl_verifies_as_server(cert, ca, host, directory)
        assert_openssl_verifies_as_client(cert, ca, directory)
        for host in others:
            assert_openssl_not_verifies_as_server(cert, ca, host, directory)

        # 3. pkilint (RFC 5280 profile) at WARNING and above: exactly the single-label
        # host name, in every unit certificate, and nothing else.
        assert sorted(pkilint_findings(cert, "WARNING")) == single_label_findings(cert), name
        assert len(single_label_findings(cert)) == 1, name  # the host name, not the FQDN
        assert_pkilint_chain_clean(ca, cert, directory)

    # ... and nothing at all in the CA (it names no host).
    assert pkilint_findings(ca, "WARNING") == []
    assert_pkilint_chain_clean(ca, ca, directory)

    # 4. strict mutual TLS (VERIFY_X509_STRICT, CERT_REQUIRED both ways, check_hostname
    # with the server unit's single-label host name), every ordered pair of units.
    for tls_version in TLS_VERSIONS:
        for server in units.values():
            clients = [u for u in units.values() if u is not server]
            for client in clients:
                assert_mtls_succeeds(server, client, ca, hosts[server.name][0],
                                     tls_version=tls_version)
            # The client refuses the server when it expects another unit.
            assert_mtls_fails_hostname(server, clients[0], ca, hosts[clients[0].name][0],
                                       tls_version=tls_version)
