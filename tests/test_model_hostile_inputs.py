"""Hostile peer data, bad config and a tampered unit against the built tls-demo charm.

Each scenario is an attack or a mistake from issue 11 (items 1, 4, 8, 10): no hook may end
in a failure loop, every bad input gives a log line and a blocked or waiting status naming
what is wrong, no private key shows anywhere, and the model recovers once the input is
gone. A test writes a unit's relation data by hand, as a hostile unit would, through
``model.hook_context(unit, relation="certificates")``.
"""
import datetime
import json
import os

import pytest
from charms.layer.tls import pki
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID
from model import SIM_PERMITTED_NAMES
from model_checks import check_all, check_certificates, check_mtls, check_no_key_leaks, unit_files

pytestmark = [pytest.mark.model, pytest.mark.slow]

DEEP_LIST = "[" * 100_000 + "]" * 100_000
DEEP_OBJECT = '{"a":' * 50_000 + "1" + "}" * 50_000
UNSPECIFIED = ".".join("0" * 4)  # 0.0.0.0, the address that means any host


def deploy(make_model, units, **kw):
    model = make_model(**kw)
    model.deploy(units)
    assert model.settle().failures == 0
    return model


def settle_cleanly(model):
    """Settle; no hook may fail (a failure loop raises HookFailed in settle itself)."""
    stats = model.settle()
    assert stats.failures == 0, [(r.unit, r.hook, r.stderr[-500:]) for r in model.history
                                 if not r.ok]
    return stats


def write_bag(model, unit, values, app=False):
    """Write ``values`` into ``unit``'s own bag (or, as the leader, the app bag) by hand,
    through ``relation-set --file`` (a command line cannot carry megabytes)."""
    path = model.unit(unit).root / "hostile.yaml"
    path.write_text(json.dumps(values))  # JSON is YAML
    with model.hook_context(unit, relation="certificates") as tool:
        done = tool("relation-set", *(["--app"] if app else []), "--file", str(path))
        assert done.returncode == 0, done.stderr
    path.unlink()


def status(model, unit):
    st = model.status(unit)
    return st["status"], st["message"]


def serial(model, unit):
    return pki.load_certificates(unit_files(model, unit)["cert"].read_bytes())[0].serial_number


def warnings_of(model, unit):
    return [line for line in model.hook_log(unit).splitlines() if "WARNING" in line
            or "ERROR" in line]


# ------------------------------------------------------------------ item 1: peer data


def test_hostile_peer_data_never_crashes_a_hook(make_model):
    model = deploy(make_model, 3, seed=21)
    leader = model.leader
    honest, evil = [n for n in model.unit_names if n != leader]

    # A 100,000-deep JSON list as tls-hostnames, with a fresh CSR so that the leader
    # reads the claims to sign it.
    key = pki.generate_private_key()
    evil_unit = model.unit(evil)
    csr = pki.csr_to_pem(pki.build_csr(key, evil, dns_names=[evil_unit.fqdn],
                                       ip_addresses=[evil_unit.address]))
    write_bag(model, evil, {"csr": csr, "tls-hostnames": DEEP_LIST})
    settle_cleanly(model)
    state, message = status(model, evil)
    assert state == "blocked" and "tls-hostnames" in message, message
    assert [w for w in warnings_of(model, leader) if f"{evil} tls-hostnames" in w]
    assert status(model, leader)[0] == "active"

    # Signing goes on for the others.
    before = serial(model, honest)
    assert model.run_action(honest, "rotate-certificate")["status"] == "completed"
    settle_cleanly(model)
    assert serial(model, honest) != before

    # Huge and deep values in every key the leader reads, then a signing round that
    # reads them all.
    write_bag(model, evil, {
        "tls-hostnames": json.dumps([f"h{i}.example" for i in range(100_000)]),
        "tls-addresses": DEEP_OBJECT,
        "private-address": "x" * 1_000_000,
        "tls-installed": DEEP_LIST,
        "csr": "-----BEGIN CERTIFICATE REQUEST-----\n" + "A" * 70_000
               + "\n-----END CERTIFICATE REQUEST-----\n",
        f"{honest}_signed_certificate": DEEP_LIST,
    })
    settle_cleanly(model)
    before = serial(model, honest)
    assert model.run_action(honest, "rotate-certificate")["status"] == "completed"
    # the leader waits for the unit with no readable CSR until update-status (the batch
    # rule for units that goal-state expects), then signs the others
    model.tick_update_status(settle=False)
    settle_cleanly(model)
    assert serial(model, honest) != before
    assert status(model, leader)[0] == "active"

    # During a CA rollover the leader reads every unit's tls-installed in every hook.
    assert model.run_action(leader, "rotate-ca")["status"] == "completed"
    write_bag(model, evil, {"tls-installed": DEEP_LIST})
    settle_cleanly(model)
    assert [w for w in warnings_of(model, leader) if f"{evil} tls-installed" in w]
    check_mtls(model, model.port)
    for name in (leader, honest):
        assert status(model, name)[0] == "active", status(model, name)
    check_no_key_leaks(model)


# ------------------------------------------------------------------ item 4: lifetimes


def test_lifetimes_are_bounded_and_actions_fail_in_one_line(make_model):
    model = deploy(make_model, 2, seed=22)
    leader = model.leader
    (other,) = [n for n in model.unit_names if n != leader]

    def one_line_failure(result, *words):
        assert result["status"] == "failed", result
        assert "\n" not in result["message"] and "Traceback" not in result["stderr"], result
        for word in words:
            assert word in result["message"], result["message"]

    # Far beyond what a certificate can encode: refused, blocked, no hook fails even
    # with a CSR pending (the leader reads the lifetime to sign it).
    model.set_config({"tls_certificate_lifetime": "4000000d", "tls_ca_lifetime": "9000000d"})
    settle_cleanly(model)
    assert model.run_action(other, "rotate-certificate")["status"] == "completed"
    settle_cleanly(model)
    for name in model.unit_names:
        state, message = status(model, name)
        assert state == "blocked" and "tls_certificate_lifetime" in message, (name, message)
    one_line_failure(model.run_action(leader, "rotate-ca"), "tls_certificate_lifetime")

    model.set_config({"tls_certificate_lifetime": None, "tls_ca_lifetime": "9000000d"})
    settle_cleanly(model)
    assert "tls_ca_lifetime" in status(model, leader)[1]
    one_line_failure(model.run_action(leader, "rotate-ca"), "tls_ca_lifetime")

    model.set_config({"tls_ca_lifetime": "garbage"})
    settle_cleanly(model)
    assert "tls_ca_lifetime" in status(model, other)[1]
    one_line_failure(model.run_action(leader, "rotate-ca"), "tls_ca_lifetime", "garbage")

    # A certificate that would be expired before a unit could install it.
    model.set_config({"tls_ca_lifetime": None, "tls_certificate_lifetime": "0.001m"})
    settle_cleanly(model)
    state, message = status(model, other)
    assert state == "blocked" and "tls_certificate_lifetime" in message, message

    model.set_config({"tls_certificate_lifetime": None})
    settle_cleanly(model)
    check_all(model, model.port)  # the pending rotation is signed once the config is good
    assert model.app_data()["ca-bundle"].count("BEGIN CERTIFICATE") == 1


# ------------------------------------------------------------------ item 8: tls_extra_sans


BAD_EXTRA_SANS = [
    ("*.x", "*.x"),
    ("10.0.0.0/24", "10.0.0.0/24"),
    ("a" * 300 + ".example", "aaaaaaaaaa"),
    ("bücher.example", "bücher.example"),
    (UNSPECIFIED, UNSPECIFIED),
    # about 75 kB of names: a CSR over the signer's and the interface's size limits
    (" ".join(f"n{i:04d}-{'x' * 50}.example" for i in range(1200)), "n0"),
]


def test_bad_extra_sans_block_naming_the_entry(make_model):
    # good.example is a public name: the operator permits it (from the start: the CA's
    # name constraints are made from tls_permitted_names)
    model = deploy(make_model, 2, seed=23,
                   config={"tls_permitted_names": SIM_PERMITTED_NAMES + " good.example"})
    before = {name: serial(model, name) for name in model.unit_names}
    for value, named in BAD_EXTRA_SANS:
        model.set_config({"tls_extra_sans": "good.example " + value})
        settle_cleanly(model)
        for name in model.unit_names:
            state, message = status(model, name)
            assert state == "blocked", (value[:40], name, message)
            assert "tls_extra_sans" in message and named in message, (value[:40], message)
        for name, cert in check_certificates(model).items():
            assert UNSPECIFIED not in pki.certificate_names(cert)[1], name
    assert {name: serial(model, name) for name in model.unit_names} == before

    model.set_config({"tls_extra_sans": "good.example 10.9.9.9"})
    settle_cleanly(model)
    for cert in check_all(model, model.port)["certs"].values():
        dns_names, ips = pki.certificate_names(cert)
        assert "good.example" in dns_names and "10.9.9.9" in ips


# ------------------------------------------------------------------ item 10: files


def _expired_certificate_for(model, unit):
    """A certificate from the application's CA for ``unit``'s installed key and names,
    expired yesterday: what a stale or restored leader could publish."""
    (secret,) = model.secrets().values()
    ca = pki.CertificateAuthority(pki.load_certificate(secret["content"]["certificate"]),
                                  pki.load_private_key(secret["content"]["private-key"]))
    current = pki.load_certificates(unit_files(model, unit)["cert"].read_bytes())[0]
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, unit)]))
            .issuer_name(ca.certificate.subject)
            .public_key(current.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=2))
            .not_valid_after(now - datetime.timedelta(days=1)))
    for ext in current.extensions:
        cert = cert.add_extension(ext.value, ext.critical)
    return pki.certificate_to_pem(cert.sign(ca.private_key, hashes.SHA256()))


def test_tampered_files_are_repaired_or_block(make_model):
    model = deploy(make_model, 2, seed=24)
    leader = model.leader
    (other,) = [n for n in model.unit_names if n != leader]
    key_path = unit_files(model, other)["key"]
    key_text = key_path.read_text()

    # The key path replaced by a directory: blocked, naming it; repaired once it is gone.
    key_path.unlink()
    key_path.mkdir()
    (key_path / "something").write_text("not ours to delete")
    model.tick_update_status(settle=False)
    settle_cleanly(model)
    state, message = status(model, other)
    assert state == "blocked" and str(key_path) in message, message
    assert (key_path / "something").exists()
    (key_path / "something").unlink()
    key_path.rmdir()
    model.tick_update_status(settle=False)
    settle_cleanly(model)
    assert key_path.read_text() == key_text and status(model, other)[0] == "active"

    # Chowned away: the owner is repaired, not only content and mode.
    os.chown(key_path, 65534, 65534)
    model.tick_update_status(settle=False)
    settle_cleanly(model)
    assert (key_path.stat().st_uid, key_path.stat().st_gid) == (os.geteuid(), os.getegid())

    # Replaced by a symlink to a file of the same content and mode: a regular file again.
    decoy = model.unit(other).root / "decoy.key"
    decoy.write_text(key_text)
    decoy.chmod(0o600)
    key_path.unlink()
    key_path.symlink_to(decoy)
    model.tick_update_status(settle=False)
    settle_cleanly(model)
    assert not key_path.is_symlink() and key_path.read_text() == key_text
    assert oct(key_path.stat().st_mode & 0o777) == "0o600"

    # An already-expired certificate published for the unit's current request: not
    # kept silently; the unit says so and asks for a new one, which the leader signs.
    certs = json.loads(model.app_data()["certificates"])
    certs[other] = _expired_certificate_for(model, other)
    write_bag(model, leader, {"certificates": json.dumps(certs, sort_keys=True)}, app=True)
    settle_cleanly(model)
    assert any("expired" in message for _, _, state, message in model.status_history(other)
               if state == "blocked"), model.status_history(other)
    assert pki.days_to_expiry(check_certificates(model)[other]) > 300
    check_all(model, model.port)
