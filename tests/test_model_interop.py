"""The interop checks of test_pki_interop, run on what the built charm really issues.

test_pki_interop issues its fixtures with dotted names (``app-N.test``); a deployed unit's
certificate carries the machine's FQDN (``juju-xxxxxx-N.sim``) and its address, and not its
single-label host name (``juju-xxxxxx-N``: outside ``tls_permitted_names``, and under the
CA's name constraints it would make clients refuse the whole certificate). Here a 3-unit
model of tls-demo settles and each unit's own files (leaf, key, CA) go through
cryptography's verifier, ``openssl verify -x509_strict``, a strict mutual-TLS handshake
with Python's ``ssl`` and pkilint, which must find nothing.
"""
import ssl

import pytest
from charms.layer.tls import pki
from cryptography import x509
from model_checks import (
    check_certificates,
    published_bundle,
    published_intermediates,
    unit_files,
)
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


def single_label_constraint_findings(ca: x509.Certificate):
    """The findings pkilint's PKIX profile has for the CA although RFC 5280 allows them:
    one ``pkix.invalid_domain_name_syntax`` ERROR per single-label dNSName in its name
    constraints' permitted subtrees (``internal``, ``lxd``, ``sim``...).

    pkilint checks dNSName with ``validators.domain``, which wants at least one dot. RFC
    5280 section 4.2.1.10 takes a DNS name constraint in the syntax of section 4.2.1.6, the
    "preferred name syntax" of RFC 1034 section 3.5, where ``<subdomain> ::= <label> |
    <subdomain> "." <label>``: a single label is a valid domain, and cryptography, OpenSSL
    and Python's ``ssl`` apply it (tests/test_name_constraints.py).
    """
    extensions = list(ca.extensions)
    index = [e.oid for e in extensions].index(x509.NameConstraints.oid)
    path = ("certificate.tbsCertificate.extensions.{}.extnValue.nameConstraints."
            "permittedSubtrees.{}.base.dNSName")
    return sorted(
        ("ERROR", "pkix.invalid_domain_name_syntax",
         f'Invalid domain name syntax: "{name.value}"', path.format(index, i))
        for i, name in enumerate(extensions[index].value.permitted_subtrees)
        if isinstance(name, x509.DNSName) and "." not in name.value)


def single_label_names(cert: x509.Certificate):
    """The single-label dNSNames of ``cert``'s SAN (none since tls_permitted_names: such a
    name is in no DNS domain, so no name constraint can permit it)."""
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return [n for n in san.get_values_for_type(x509.DNSName) if "." not in n]


def test_the_certificates_a_model_issues_pass_the_interop_checks(make_model, tmp_path):
    model = make_model(seed=1)
    model.deploy(3)
    model.settle()
    check_certificates(model)  # each unit's key file is 0600 and matches its certificate

    # After a fresh deploy every unit trusts the one root the leader published, and
    # presents its certificate with the intermediate under that root.
    [ca] = published_bundle(model)
    [intermediate] = published_intermediates(model)
    units, hosts = {}, {}
    for name in model.unit_names:
        files = unit_files(model, name)
        assert pki.load_certificates(files["ca"].read_bytes()) == [ca], name
        leaf, *chain = pki.load_certificates(files["cert"].read_bytes())
        assert chain == [intermediate], name
        units[name] = Unit(name, pki.load_private_key(files["key"].read_bytes()), leaf,
                           tuple(chain))
        unit = model.unit(name)
        hosts[name] = (unit.fqdn, unit.hostname, unit.address)
        assert "." not in unit.hostname, unit.hostname  # a machine's single-label host name

    directory = str(tmp_path)
    for name, unit in units.items():
        cert, (fqdn, hostname, address) = unit.certificate, hosts[name]
        others = [hosts[other][0] for other in units if other != name]
        assert single_label_names(cert) == [], name  # outside tls_permitted_names

        # 1. cryptography's verifier (directly and through pki.verify_certificate), the
        # CA's name constraints included
        chain = unit.chain
        for host in (fqdn, fqdn.upper(), address):
            assert_verifies_as_server(cert, ca, host, chain=chain)
        assert_verifies_as_client(cert, ca, chain=chain)
        for host in others + [hostname, f"x.{fqdn}", fqdn.split(".", 1)[1]]:
            assert_not_verifies_as_server(cert, ca, host, chain=chain)

        # 2. openssl verify -x509_strict with the CA
        for host in (fqdn, address):
            assert_openssl_verifies_as_server(cert, ca, host, directory, chain=chain)
        assert_openssl_verifies_as_client(cert, ca, directory, chain=chain)
        for host in others + [hostname]:
            assert_openssl_not_verifies_as_server(cert, ca, host, directory, chain=chain)

        # 3. pkilint (RFC 5280 profile) at WARNING and above: nothing (the single-label
        # host name it used to flag is no longer in the certificate)
        assert pkilint_findings(cert, "WARNING") == [], name
        assert_pkilint_chain_clean(intermediate, cert, directory)

    # ... and in the root and the intermediate exactly their single-label name constraints
    # (internal, lxd, sim...).
    for signer in (ca, intermediate):
        findings = single_label_constraint_findings(signer)
        assert sorted(pkilint_findings(signer, "WARNING")) == findings
        assert len(findings) == 7  # auto's 6 single-label domains and the sim's own
    assert_pkilint_chain_clean(ca, intermediate, directory)
    assert_pkilint_chain_clean(ca, ca, directory)

    # 4. strict mutual TLS (VERIFY_X509_STRICT, CERT_REQUIRED both ways, check_hostname
    # with the server unit's FQDN), every ordered pair of units.
    for tls_version in TLS_VERSIONS:
        for server in units.values():
            clients = [u for u in units.values() if u is not server]
            for client in clients:
                assert_mtls_succeeds(server, client, ca, hosts[server.name][0],
                                     tls_version=tls_version)
            # The client refuses the server when it expects another unit.
            assert_mtls_fails_hostname(server, clients[0], ca, hosts[clients[0].name][0],
                                       tls_version=tls_version)
