"""Time passes in the simulated model (``Model.advance_clock``), and the duties time drives,
with the built tls-demo charm across simulated units (issue 11 row 9, renewal and rollover):

- the model's clock itself: hook processes see the model's wall time (Python, OpenSSL), not
  a shifted monotonic clock; a service a hook started keeps the clock it started with;
  without libfaketime the clock refuses to move, with a clear error;
(a) after a revocation, the leader renews the CRL once ``tls_renew_fraction`` of its 7 days
    passed, every unit installs it, and past the first CRL's nextUpdate every unit's CRL is
    still current and still lists the revoked certificate;
(b) the units' certificates (default lifetime, 365 days) renew by time, before they expire,
    and mutual TLS verifies at the model's time;
(c) the CA rolls over by age (``tls_ca_rollover_fraction``): the new CA alone ends in the
    bundle and every unit's certificate is from it.

After the clock moved, the checks run at the model's time (``clock_checks``): the test
process and the echo services the units started before the move are on other clocks.
"""
import datetime
import json
import pathlib
import re
import time

import pytest
from charms.layer.tls import crl, pki
from clock_checks import (
    assert_no_failed_hooks,
    certificates_at_model_time,
    check_mtls_at_model_time,
    model_now,
    mtls_at_model_time,
    openssl_at_model_time,
    unit_paths,
)
from model_checks import secret_anchor, signing_ca

pytestmark = pytest.mark.model

DAY = 86400


def advance_to(model, when) -> None:
    """Move the model's clock to the datetime ``when`` (rounded up to a whole second)."""
    seconds = (when - model_now(model)).total_seconds()
    if seconds > 0:
        model.advance_clock(int(seconds) + 1)


def published_crl(model):
    """The signing CA's CRL as the leader published it (app bag ``crl``)."""
    (pem,) = json.loads(model.app_data()["crl"]).values()
    return crl.load_crl(pem)


def installed_crl_text(model, unit) -> str:
    return unit_paths(model, unit)["crl"].read_text()


def serials(certs):
    return {name: cert.serial_number for name, cert in certs.items()}


# ------------------------------------------------------------ the clock itself

PROBE = ("import datetime, json, time\n"
         "wall = time.time()\n"
         "time.sleep(0.01)\n"  # Python 3.11+ sleeps on an absolute monotonic deadline
         "print(json.dumps([wall, datetime.datetime.now(datetime.timezone.utc).timestamp(),"
         " time.monotonic()]))\n")


@pytest.mark.slow  # a 1-unit model: the quick run keeps its one 3-unit model
def test_hook_processes_see_the_model_clock_and_services_keep_theirs(make_model, tmp_path):
    model = make_model(seed=31)
    (unit,) = model.deploy(1)
    model.settle()
    service = int((model.unit(unit).charm_dir / "echo.pid").read_text())
    # a certificate valid for 10 real days: the model's clock runs past its end
    ca = pki.create_ca("clock test CA", lifetime_days=20)
    key = pki.generate_private_key()
    cert = pki.issue_certificate(ca, key.public_key(), common_name="short",
                                 dns_names=["short.sim"], lifetime_days=10)
    (tmp_path / "short.pem").write_text(pki.certificate_to_pem(cert))
    (tmp_path / "ca.pem").write_text(pki.certificate_to_pem(ca.certificate))

    assert model.clock_offset == 0
    assert model.advance_clock(30 * DAY) == 30 * DAY
    assert model.advance_clock(0) == 30 * DAY and model.clock_offset == 30 * DAY
    before, mono = time.time(), time.monotonic()
    with model.hook_context(unit, commit=False) as tool:
        probe = tool("python3", "-c", PROBE)
        checkend = tool("openssl", "x509", "-in", tmp_path / "short.pem", "-noout",
                        "-checkend", "0")
        verify = tool("openssl", "verify", "-CAfile", tmp_path / "ca.pem",
                      tmp_path / "short.pem")
        date = tool("date", "+%s")
    assert probe.returncode == 0, probe.stderr
    wall, now, hook_mono = json.loads(probe.stdout)
    for seen in (wall, now, int(date.stdout)):  # Python's clocks and a C program's time()
        assert before + 30 * DAY - 5 < seen < time.time() + 30 * DAY + 5, seen
    assert abs(hook_mono - mono) < 60, "the monotonic clock is the machine's"
    assert checkend.returncode == 1 and "will expire" in checkend.stdout, checkend
    assert verify.returncode != 0 and "certificate has expired" in verify.stdout + \
        verify.stderr, verify
    # the test's own process is on real time, and so is the service started at offset 0
    assert pki.verify_certificate(cert, [ca.certificate], dns_name="short.sim") is None
    environ = pathlib.Path(f"/proc/{service}/environ").read_bytes().split(b"\0")
    assert not [v for v in environ if v.startswith(b"FAKETIME=")], "service env changed"


def test_the_clock_refuses_bad_steps_and_a_missing_libfaketime(make_model, monkeypatch):
    from model import clock

    model = make_model(seed=32)
    for bad in (-1, 1.5, float("nan"), "1d", True):
        with pytest.raises((TypeError, ValueError)):
            model.advance_clock(bad)
    assert model.clock_offset == 0
    monkeypatch.setattr(clock, "CANDIDATES", ("/nonexistent/libfaketime.so.1",))
    with pytest.raises(clock.ClockUnavailable, match="Debian package libfaketime"):
        model.advance_clock(DAY)
    assert model.clock_offset == 0
    assert model.advance_clock(0) == 0  # nothing moves: nothing needed


# ------------------------------------------------------------ (a) the CRL's renewal

@pytest.mark.slow
def test_the_crl_is_renewed_before_its_next_update_and_keeps_the_revocation(make_model):
    model = make_model(seed=41)
    model.deploy(3)
    model.settle()
    leader = model.leader
    victim = next(n for n in model.unit_names if n != leader)
    bystander = next(n for n in model.unit_names if n not in (leader, victim))
    revoked_pem = unit_paths(model, victim)["cert"].read_text()
    serial = pki.load_certificates(revoked_pem)[0].serial_number  # leaf, then intermediate
    done = model.run_action(leader, "revoke-certificate", {"unit": victim})
    assert done["status"] == "completed", done
    model.settle()
    since = len(model.history)
    first = published_crl(model)
    assert serial in crl.revoked_serials(first)
    for name in model.unit_names:
        assert installed_crl_text(model, name) == crl.crl_to_pem(first), name
    span = first.next_update_utc - first.last_update_utc
    assert span.days == 7

    advance_to(model, first.last_update_utc + span * 0.6)  # before tls_renew_fraction
    model.tick_update_status()
    assert crl.crl_number(published_crl(model)) == crl.crl_number(first), "renewed early"

    advance_to(model, first.last_update_utc + span * 0.7)  # past it (0.67)
    model.tick_update_status()
    renewed = published_crl(model)
    assert crl.crl_number(renewed) > crl.crl_number(first)
    assert renewed.next_update_utc > first.next_update_utc
    assert crl.revoked_serials(renewed) == crl.revoked_serials(first)
    for name in model.unit_names:  # installed at crl_path, verified, on every unit
        assert installed_crl_text(model, name) == crl.crl_to_pem(renewed), name

    advance_to(model, first.next_update_utc + datetime.timedelta(hours=1))  # the first one expired
    model.tick_update_status()
    now = model_now(model)
    assert first.next_update_utc < now
    revoked_file = unit_paths(model, victim)["cert"].parent / "revoked.pem"
    revoked_file.write_text(revoked_pem)
    for name in model.unit_names:
        files = unit_paths(model, name)
        shown = openssl_at_model_time(model, "crl", "-in", str(files["crl"]), "-noout",
                                      "-nextupdate")
        assert shown.returncode == 0, shown.stderr
        next_update = _openssl_date(shown.stdout.split("=", 1)[1])
        assert next_update > now, f"{name}: its CRL expired at {next_update}"
        installed = crl.load_crl(files["crl"].read_text())
        assert serial in crl.revoked_serials(installed), name
        # OpenSSL at the model's time: the CRL is current, the revoked certificate revoked
        # and a peer's certificate good
        for cert_file, want in ((revoked_file, "certificate revoked"),
                                (unit_paths(model, bystander)["cert"], ": OK")):
            # the file holds the leaf then its intermediate: the chain to the root
            checked = openssl_at_model_time(model, "verify", "-crl_check", "-CAfile",
                                            str(files["ca"]), "-CRLfile", str(files["crl"]),
                                            "-untrusted", str(cert_file), str(cert_file))
            assert want in checked.stdout + checked.stderr, (name, cert_file, checked)
    others = [n for n in model.unit_names if n != victim]
    matrix = mtls_at_model_time(model)  # the others talk; the revoked unit is refused
    for client in model.unit_names:
        for server in others:
            want_ok = client != victim
            assert (matrix[(client, server)] == "ok") == want_ok, (client, server, matrix)
    assert_no_failed_hooks(model, since)


def _openssl_date(text):
    parsed = datetime.datetime.strptime(re.sub(r"\s+", " ", text.strip()),
                                        "%b %d %H:%M:%S %Y GMT")
    return parsed.replace(tzinfo=datetime.timezone.utc)


# ------------------------------------------------------------ (b) certificate renewal

@pytest.mark.slow
def test_certificates_renew_by_time_with_the_default_lifetime(make_model):
    model = make_model(seed=42)
    model.deploy(3)
    model.settle()
    since = len(model.history)
    first = certificates_at_model_time(model)
    born = max(c.not_valid_before_utc for c in first.values())
    lifetime = min(c.not_valid_after_utc - c.not_valid_before_utc for c in first.values())
    assert lifetime.days == 365

    advance_to(model, born + lifetime * 0.6)  # tls_renew_fraction 0.67, jitter 0.05
    model.tick_update_status()
    assert serials(certificates_at_model_time(model)) == serials(first), "renewed early"

    advance_to(model, born + lifetime * 0.75)
    model.tick_update_status()
    now = model_now(model)
    renewed = certificates_at_model_time(model)
    for name, cert in renewed.items():
        old = first[name]
        assert cert.serial_number != old.serial_number, f"{name} was not renewed"
        assert cert.public_key() != old.public_key(), f"{name} kept its key"
        assert now < old.not_valid_after_utc, "renewed before the old one expired"
        assert cert.not_valid_before_utc <= now < cert.not_valid_after_utc
        assert (cert.not_valid_after_utc - now).days >= 364
    # the first CRL lapsed during the 219 days without a hook: the leader made a new one
    ca = signing_ca(model)  # the CRL's issuer: the intermediate under the root
    for name in model.unit_names:
        installed = crl.load_crl(installed_crl_text(model, name))
        assert crl.crl_problem(installed, ca, now=now) is None, name
    check_mtls_at_model_time(model)  # the servers check the client's CRL
    for name in model.unit_names:
        assert model.status(name)["status"] == "active", (name, model.status(name))
    assert_no_failed_hooks(model, since)


# ------------------------------------------------------------ (c) CA rollover by age

@pytest.mark.slow
def test_the_ca_rolls_over_by_age(make_model):
    """A 30-day CA and 10-day certificates; time passes in steps of 3 days with an
    update-status after each (shorter than what is left of a certificate or a CRL when it
    is due), so every unit stays valid on the way; past 0.8 of the CA's life the leader
    starts the rollover, which the settle completes."""
    model = make_model(seed=43, config={"tls_ca_lifetime": "30d",
                                        "tls_certificate_lifetime": "10d"})
    model.deploy(3)
    model.settle()
    since = len(model.history)
    old_bundle = model.app_data()["ca-bundle"]
    old_ca = pki.load_certificate(old_bundle)
    life = old_ca.not_valid_after_utc - old_ca.not_valid_before_utc
    due = old_ca.not_valid_before_utc + life * 0.8  # tls_ca_rollover_fraction
    steps = 0
    while model.app_data()["ca-bundle"] == old_bundle:
        assert steps < 12, "no rollover after 36 days"
        certificates_at_model_time(model)  # nobody's certificate lapsed on the way
        model.advance_clock(3 * DAY)
        model.tick_update_status()
        steps += 1
        if model_now(model) < due:
            assert model.app_data()["ca-bundle"] == old_bundle, "rolled over too early"
    assert model_now(model) >= due
    model.settle()
    bundle = model.app_data()["ca-bundle"]
    assert bundle.count("BEGIN CERTIFICATE") == 1, "the old CA left the bundle"
    new_root = pki.load_certificate(bundle)
    assert new_root.subject == new_root.issuer and new_root.public_key() != old_ca.public_key()
    new_ca = signing_ca(model)  # the intermediate under the new root signs
    assert pki.authority_key_id(new_ca) == pki.subject_key_id(new_root)
    certs = certificates_at_model_time(model)
    assert all(cert.issuer == new_ca.subject for cert in certs.values())
    assert all(pki.authority_key_id(c) == pki.subject_key_id(new_ca) for c in certs.values())
    for name in model.unit_names:
        assert unit_paths(model, name)["ca"].read_text() == bundle, name
        assert model.status(name)["status"] == "active", (name, model.status(name))
    (secret,) = model.secrets().values()
    assert secret_anchor(secret["content"]) == bundle  # the root of the intermediate it holds
    assert secret["content"]["certificate"] == pki.certificate_to_pem(new_ca)
    check_mtls_at_model_time(model)
    assert_no_failed_hooks(model, since)
