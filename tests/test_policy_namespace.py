"""tls_permitted_names in the PKI and the signer: the CA's name constraints (pki), the
``outside-namespace`` and ``outside-ca-constraints`` refusals (policy, signer's batch)."""
import pytest
from charms.layer.tls import namespace, pki, policy, signer
from cryptography import x509

AUTO = namespace.parse("auto")
WIDER = namespace.parse("auto pypi.org 93.184.216.0/24")


@pytest.fixture(scope="module")
def ca():
    return pki.create_ca("auto CA", name_constraints=AUTO)


def _csr(key, dns=(), ips=()):
    return pki.csr_to_pem(pki.build_csr(key, "tls/1", dns_names=list(dns),
                                        ip_addresses=list(ips)))


# ------------------------------------------------------------------ pki


def test_a_ca_made_for_a_namespace_carries_it_as_critical_name_constraints(ca):
    ext = ca.certificate.extensions.get_extension_for_class(x509.NameConstraints)
    assert ext.critical
    permitted = ext.value.permitted_subtrees
    assert [n.value for n in permitted if isinstance(n, x509.DNSName)] == list(
        namespace.AUTO_DOMAINS)
    assert [str(n.value) for n in permitted if isinstance(n, x509.IPAddress)] == list(
        namespace.AUTO_NETWORKS)
    assert pki.name_constraints_of(ca.certificate) == AUTO
    assert pki.ca_problem(ca) is None


def test_a_ca_without_a_namespace_or_for_any_has_no_constraints():
    for constraints in (None, namespace.ANY):
        made = pki.create_ca("old style", name_constraints=constraints)
        with pytest.raises(x509.ExtensionNotFound):
            made.certificate.extensions.get_extension_for_class(x509.NameConstraints)
        assert pki.name_constraints_of(made.certificate) is namespace.ANY


@pytest.mark.parametrize("value, dns, ips", [
    ("10.0.0.0/8", [pki.NO_DNS], ["10.0.0.0/8"]),
    ("internal", ["internal"], list(pki.NO_IPS)),
])
def test_a_namespace_without_a_kind_of_name_excludes_that_kind(value, dns, ips):
    made = pki.create_ca("one kind", name_constraints=namespace.parse(value))
    ext = made.certificate.extensions.get_extension_for_class(x509.NameConstraints).value
    assert [n.value for n in ext.permitted_subtrees if isinstance(n, x509.DNSName)] == dns
    assert [str(n.value) for n in ext.permitted_subtrees
            if isinstance(n, x509.IPAddress)] == ips
    key = pki.generate_private_key()
    # forged with the CA key: the excluded kind does not verify
    if value == "internal":
        leaf = pki.issue_certificate(made, key.public_key(), common_name="x",
                                     ip_addresses=["10.1.1.1"])
        assert not namespace.parse(" ".join(pki.NO_IPS)).permits("10.1.1.1")
    else:
        leaf = pki.issue_certificate(made, key.public_key(), common_name="x",
                                     dns_names=["a.internal"])
    with pytest.raises(pki.CertificateVerificationError):
        pki.verify_certificate(leaf, [made.certificate], purpose="client")


def test_name_constraints_of_a_foreign_ca_reads_what_it_permits():
    key = pki.generate_private_key()
    base = pki.create_ca("foreign", private_key=key)
    subject = base.certificate.subject
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    only_dns = x509.NameConstraints(permitted_subtrees=[x509.DNSName(".corp.example")],
                                    excluded_subtrees=None)
    cert = pki._sign_ca(key, subject, 1, base.certificate.not_valid_before_utc,
                        base.certificate.not_valid_after_utc, ski, only_dns)
    read = pki.name_constraints_of(cert)
    assert read.permits("a.corp.example") and not read.permits("corp.example")
    assert read.permits("93.184.216.34")  # no iPAddress subtree: addresses unconstrained
    only_excluded = x509.NameConstraints(permitted_subtrees=None,
                                         excluded_subtrees=[x509.DNSName("evil.example")])
    cert = pki._sign_ca(key, subject, 2, base.certificate.not_valid_before_utc,
                        base.certificate.not_valid_after_utc, ski, only_excluded)
    assert pki.name_constraints_of(cert) is namespace.ANY


# ------------------------------------------------------------------ policy


@pytest.mark.parametrize("dns, ips, named", [
    (["unit-1.internal", "pypi.org"], ["10.0.0.11"], "pypi.org"),
    (["unit-1.internal"], ["10.0.0.11", "93.184.216.34"], "93.184.216.34"),
    (["juju-abc-1"], [], "juju-abc-1"),
])
def test_a_csr_with_an_outside_name_is_refused_even_when_claimed(dns, ips, named):
    key = pki.generate_private_key()
    # the unit claims every name (Juju vouches for none of them): the namespace still bounds
    claims = policy.Claims.build(allowed_dns=dns, allowed_ips=ips, namespace=AUTO)
    with pytest.raises(policy.CSRRejected) as info:
        policy.check_csr(_csr(key, dns, ips), claims)
    assert info.value.code == "outside-namespace"
    assert info.value.reason == f"{named} is outside tls_permitted_names"
    assert info.value.name == named
    # without a namespace (the any escape hatch) the same CSR passes the claims
    assert policy.check_csr(_csr(key, dns, ips), claims._replace(namespace=None))


def test_the_signer_refuses_a_name_outside_the_cas_own_constraints(ca):
    key = pki.generate_private_key()
    claims = policy.Claims.build(allowed_dns=["unit-1.internal", "pypi.org"],
                                 namespace=WIDER)
    pem = _csr(key, ["unit-1.internal", "pypi.org"])
    with pytest.raises(policy.CSRRejected) as info:
        policy.sign_csr(ca, pem, claims, unit_name="tls/1")
    assert info.value.code == "outside-ca-constraints"
    assert info.value.reason == ("pypi.org is outside the CA's name constraints (run the "
                                 "rotate-ca action)")
    wide_ca = pki.create_ca("wider CA", name_constraints=WIDER)
    cert = policy.sign_csr(wide_ca, pem, claims, unit_name="tls/1")
    pki.verify_certificate(cert, [wide_ca.certificate], dns_name="pypi.org")


def test_an_in_namespace_certificate_from_the_ca_verifies(ca):
    key = pki.generate_private_key()
    claims = policy.Claims.build(allowed_dns=["unit-1.lxd"], allowed_ips=["10.0.0.11"],
                                 namespace=AUTO)
    cert = policy.sign_csr(ca, _csr(key, ["unit-1.lxd"], ["10.0.0.11"]), claims,
                           unit_name="tls/1")
    pki.verify_certificate(cert, [ca.certificate], dns_name="unit-1.lxd")
    pki.verify_certificate(cert, [ca.certificate], ip_address="10.0.0.11")


# ------------------------------------------------------------------ the batch


def test_the_batch_refuses_the_outside_unit_and_serves_the_others(ca):
    keys = {u: pki.generate_private_key() for u in ("tls/0", "tls/1")}
    pending = {"tls/0": _csr(keys["tls/0"], ["tls-0.lxd"], ["10.0.0.10"]),
               "tls/1": _csr(keys["tls/1"], ["tls-1.lxd", "archive.ubuntu.com"],
                             ["10.0.0.11"])}
    claims = {"tls/0": {"hostnames": ["tls-0.lxd"], "addresses": ["10.0.0.10"]},
              "tls/1": {"hostnames": ["tls-1.lxd", "archive.ubuntu.com"],
                        "addresses": ["10.0.0.11"]}}
    result = signer.sign_batch(ca, pending, claims, {}, namespace=AUTO, lifetime_days=1)
    assert list(result.certificates) == ["tls/0"]
    assert result.rejections == {"tls/1": signer.Rejection(
        "outside-namespace", "archive.ubuntu.com is outside tls_permitted_names")}
