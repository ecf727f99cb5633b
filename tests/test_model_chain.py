"""The signing CA is an intermediate under a root whose key is gone (issue 11's Java gap),
against the built tls-demo.

Every unit can read the CA secret, so a unit that owns one machine holds the key that
signs certificates. With a self-signed CA that key is the trust anchor's, and Java's PKIX
validator does not apply a trust anchor's name constraints: a ``pypi.org`` leaf forged
with it is accepted by Java. The leader now makes a root and an intermediate, keeps only
the intermediate's key and publishes the root as the only trust anchor: a leaf forged with
the key from the secret is refused by Java and OpenSSL alike, while the units' own
certificates (presented with the intermediate) verify and mutual TLS works. An
application with a CA of the old shape (here a self-signed CA given as
``root_certificate``) keeps it until ``rotate-ca``, which moves it to the new shape through
the rollover with mutual TLS working after every hook (old and new shapes mixed).
"""
import base64
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from charms.layer.tls import namespace, pki
from model import SIM_PERMITTED_NAMES
from model_checks import (
    assert_one_new_ca,
    check_all,
    published_bundle,
    published_intermediates,
    step_checking_mtls,
    unit_files,
)

pytestmark = [pytest.mark.model, pytest.mark.slow]

JAVA_CHECK = Path(__file__).resolve().parent / "java" / "NameConstraintsCheck.java"
needs_java = pytest.mark.skipif(shutil.which("java") is None, reason="no java")


def settle_cleanly(model):
    stats = model.settle()
    assert stats.failures == 0, [(r.unit, r.hook, r.stderr[-500:]) for r in model.history
                                 if not r.ok]


def java_validates(anchor_file, chain_file):
    """Java's PKIX validator (JSSE's default trust manager's): the first certificate of
    ``anchor_file`` as the only trust anchor, the certificates of ``chain_file`` (leaf
    first) as the path. Returns (valid, output)."""
    done = subprocess.run(["java", str(JAVA_CHECK), str(anchor_file), str(chain_file)],
                          capture_output=True, text=True, timeout=120, check=False,
                          env=dict(os.environ, JAVA_TOOL_OPTIONS=""))
    assert done.returncode in (0, 1), done.stderr
    return done.returncode == 0, done.stdout + done.stderr


def openssl_verify(anchor_file, chain_file, name, tmp_path):
    """``openssl verify -x509_strict`` for ``name``, the certificates after the first of
    ``chain_file`` given as untrusted intermediates."""
    leaf, *chain = pki.load_certificates(Path(chain_file).read_text())
    (tmp_path / "leaf.pem").write_text(pki.certificate_to_pem(leaf))
    (tmp_path / "untrusted.pem").write_text(pki.certificates_to_pem(chain))
    untrusted = ["-untrusted", str(tmp_path / "untrusted.pem")] if chain else []
    flag = "-verify_ip" if name.replace(".", "").isdigit() else "-verify_hostname"
    return subprocess.run(["openssl", "verify", "-x509_strict", "-purpose", "sslserver",
                           flag, name, "-CAfile", str(anchor_file), *untrusted,
                           str(tmp_path / "leaf.pem")],
                          capture_output=True, text=True, check=False)


def stolen_ca(model):
    """What a unit that reads the CA secret holds: the signing CA's certificate and key,
    and the chain above it (public)."""
    (secret,) = model.secrets().values()
    content = secret["content"]
    chain = content.get("chain")
    assert content["private-key"].count("PRIVATE KEY-----") == 2, "one key in the secret"
    return pki.CertificateAuthority(pki.load_certificate(content["certificate"]),
                                    pki.load_private_key(content["private-key"]),
                                    pki.load_certificates(chain) if chain else ())


def forge(ca, tmp_path, dns_names=(), ip_addresses=()):
    """A leaf signed with the stolen key for outside names, written as the chain a server
    would present (leaf, then the intermediates)."""
    key = pki.generate_private_key()
    leaf = pki.issue_certificate(ca, key.public_key(), common_name="evil",
                                 dns_names=list(dns_names), ip_addresses=list(ip_addresses))
    path = tmp_path / "forged.pem"
    path.write_text(pki.certificates_to_pem([leaf, *ca.intermediates]))
    return path


def assert_forgery_refused(model, tmp_path, java=True):
    """A leaf for pypi.org (and one for a public address) forged with the key from the
    CA secret is refused by OpenSSL and Java trusting a unit's CA file."""
    ca = stolen_ca(model)
    anchors = unit_files(model, model.unit_names[1])["ca"]
    for names, asked in ((("pypi.org",), ()), ((), ("93.184.216.34",))):
        forged = forge(ca, tmp_path, names, asked)
        result = openssl_verify(anchors, forged, (names or asked)[0], tmp_path)
        assert result.returncode != 0, result
        assert "permitted subtree violation" in result.stdout + result.stderr, result
        if java:
            valid, output = java_validates(anchors, forged)
            assert not valid and "invalid" in output, output


@needs_java
def test_a_leaf_forged_with_the_key_in_the_ca_secret_is_refused_by_java_and_openssl(
        make_model, tmp_path):
    model = make_model(seed=41)
    model.deploy(3)
    settle_cleanly(model)
    check_all(model, model.port)  # leaf + intermediate presented, the root trusted: mTLS

    # The shape: one root in the bundle (the trust anchor), one intermediate under it that
    # the secret holds with its key; the root's key is nowhere.
    [root] = published_bundle(model)
    [intermediate] = published_intermediates(model)
    ca = stolen_ca(model)
    assert ca.certificate == intermediate and ca.chain == (root,)
    assert pki.authority_key_id(intermediate) == pki.subject_key_id(root)
    assert not pki.certificate_matches_key(root, ca.private_key)
    for cert in (root, intermediate):
        assert pki.name_constraints_of(cert) == namespace.parse(SIM_PERMITTED_NAMES)

    # Java accepts the units' own certificates, presented with their intermediate...
    for name in model.unit_names:
        files = unit_files(model, name)
        valid, output = java_validates(files["ca"], files["cert"])
        assert valid, (name, output)
        result = openssl_verify(files["ca"], files["cert"], model.unit(name).fqdn, tmp_path)
        assert result.returncode == 0, result
    # ... and refuses, as OpenSSL does, what the stolen key signs for outside names.
    assert_forgery_refused(model, tmp_path)


@needs_java
def test_rotate_ca_moves_a_self_signed_ca_to_the_chain_keeping_mtls_after_every_hook(
        make_model, tmp_path):
    """A CA of the old shape (self-signed, its key in the secret, as every CA made before
    and as ``root_certificate`` gives) keeps working unchanged; ``rotate-ca`` replaces it
    by a root + intermediate through the rollover: the bundle holds the new root and the
    old CA (units with certificates of either shape trust each other) until every unit
    uses a certificate from the new intermediate."""
    old = pki.create_ca("operator CA", name_constraints=namespace.parse(SIM_PERMITTED_NAMES))
    pem = pki.certificate_to_pem(old.certificate) + pki.private_key_to_pem(
        old.private_key).decode()
    model = make_model(seed=42, config={"root_certificate": base64.b64encode(
        pem.encode()).decode()})
    model.deploy(3)
    settle_cleanly(model)
    old_bundle = model.app_data()["ca-bundle"]
    assert published_bundle(model) == [old.certificate]
    assert published_intermediates(model) == []
    assert stolen_ca(model).chain == ()  # the old shape: the secret holds the anchor's key
    check_all(model, model.port)
    # the old shape's gap, still there until rotate-ca: Java trusts what this key signs
    valid, output = java_validates(unit_files(model, model.unit_names[1])["ca"],
                                   forge(old, tmp_path, ["pypi.org"]))
    assert valid, output

    assert model.run_action(model.leader, "rotate-ca")["status"] == "completed"
    hooks = step_checking_mtls(model)
    assert_one_new_ca(model, old_bundle)
    [root] = published_bundle(model)
    [intermediate] = published_intermediates(model)
    assert root != old.certificate and root.issuer == root.subject
    assert stolen_ca(model).certificate == intermediate
    assert_forgery_refused(model, tmp_path)
    print(f"rollover to the root + intermediate shape: {hooks} hooks, mTLS after each")
