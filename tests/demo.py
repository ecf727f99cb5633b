"""`make demo`: build the tls-demo charm, run it across simulated units, prove it works.

Builds the charm from local layers with charm-tools, deploys 3 units in the simulated model
(tests/model), lets it settle, then moves leadership and adds a unit. After each phase it
prints, per unit, its names, issuer, expiry and status, the mutual-TLS handshake matrix
(every unit's client certificate against every unit's echo service) and the number of
hooks run. Last, a client application (tests/charms/trust-client: an ops charm on the real
certificate_transfer requirer library) is related to tls-demo; each of its units verifies
every tls-demo unit's echo service with only the CA bundle it received. It exits non-zero if
any check fails.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE / "shim"), str(HERE.parent / "layer-tls" / "lib"),
                str(HERE / "layers" / "basic" / "lib"), str(HERE)]

import charmhelpers_debian_shim  # noqa: E402,F401
import model_checks  # noqa: E402
import transfer_checks  # noqa: E402
from charms.layer.tls import pki  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402
from model import Model, build_charm  # noqa: E402


def say(text: str) -> None:
    print(text, flush=True)


def report(model, port: int, title: str, hooks: int) -> bool:
    say(f"\n== {title}: settled after {hooks} hooks ({sum(model.hook_counts().values())} "
        "in total)")
    ok = True
    try:
        certs = model_checks.check_certificates(model)
    except AssertionError as exc:
        say(f"   CERTIFICATE CHECK FAILED: {exc}")
        return False
    say(f"   {'unit':<12} {'leader':<6} {'names (DNS, IP)':<44} {'issuer':<32} expiry      status")
    for name in model.unit_names:
        cert = certs[name]
        dns_names, ips = pki.certificate_names(cert)
        issuer = cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        status = model.status(name)
        say(f"   {name:<12} {'*' if name == model.leader else '':<6} "
            f"{', '.join(dns_names + ips):<44} {issuer:<32} "
            f"{cert.not_valid_after_utc:%Y-%m-%d}  {status['status']}: {status['message']}")
        ok &= status["status"] == "active"
    try:
        lengths = model_checks.check_presented_chains(model, port)
        say(f"   every service presents its certificate + intermediate "
            f"({sorted(set(lengths.values()))} certificate(s)); the clients trust the root")
    except AssertionError as exc:
        say(f"   CHAIN CHECK FAILED: {exc}")
        ok = False
    matrix = model_checks.mtls_matrix(model, port)
    names = model.unit_names
    say("\n   mTLS matrix (row: client unit, column: server unit)")
    say("   " + " " * 12 + "".join(f"{n:>12}" for n in names))
    for client in names:
        cells = "".join(f"{'ok' if matrix[(client, s)] == 'ok' else 'FAIL':>12}" for s in names)
        say(f"   {client:<12}{cells}")
    failures = {pair: r for pair, r in matrix.items() if r != "ok"}
    for pair, why in failures.items():
        say(f"   FAILED {pair}: {why}")
    ok &= not failures
    try:
        refused = model_checks.foreign_client_refused(model, port)
        say(f"   a client with a foreign CA's certificate: refused by all {len(refused)} units")
        model_checks.check_no_key_leaks(model)
        say("   no private key in relation data, leader settings, statuses or hook logs")
    except AssertionError as exc:
        say(f"   FAILED: {exc}")
        ok = False
    return ok


def report_clients(model, port: int, hooks: int) -> bool:
    """The client application's units: what they trust, and their verification matrix."""
    app = transfer_checks.CLIENT_APP
    say(f"\n== {app} related to tls-demo over certificate_transfer: settled after {hooks} "
        "hooks")
    ok = True
    for client in model.app_units(app):
        status = model.status(client)
        say(f"   {client:<16} {status['status']}: {status['message']}")
        ok &= status["status"] == "active"
    matrix = transfer_checks.client_matrix(model, port)
    names = model.unit_names
    say("\n   server verification with the received bundle only (row: client unit, column:"
        " tls-demo unit)")
    say("   " + " " * 16 + "".join(f"{n:>12}" for n in names))
    for client in model.app_units(app):
        cells = "".join(f"{'ok' if matrix[(client, s)] == 'ok' else 'FAIL':>12}"
                        for s in names)
        say(f"   {client:<16}{cells}")
    failures = {pair: r for pair, r in matrix.items() if r != "ok"}
    for pair, why in failures.items():
        say(f"   FAILED {pair}: {why}")
    with tempfile.TemporaryDirectory() as tmp:  # the check can fail: a foreign CA
        foreign = Path(tmp, "foreign.crt")
        foreign.write_text(pki.certificate_to_pem(pki.create_ca("foreign CA").certificate))
        wrong = transfer_checks.client_matrix(model, port, ca_file=foreign)
    accepted = [pair for pair, r in wrong.items() if r == "ok"]
    say(f"   trusting a foreign CA instead: {len(wrong) - len(accepted)} of {len(wrong)} "
        "verifications refused")
    return ok and not failures and not accepted


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--units", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    started = time.monotonic()
    say("== building the tls-demo charm with charm-tools (local layers only; cached)")
    charm = build_charm(model_checks.DEMO_LAYER)
    say(f"   built {charm} in {time.monotonic() - started:.1f}s")
    port = model_checks.free_port()
    ok = True
    with tempfile.TemporaryDirectory(prefix="tls-demo-") as tmp:
        model = Model(charm, tmp, seed=args.seed, config={"echo_port": port})
        try:
            say(f"== deploying {args.units} units (hooks run as real processes; seed "
                f"{args.seed})")
            model.deploy(args.units)
            stats = model.settle()
            ok &= report(model, port, f"deploy of {args.units} units", stats.hooks)
            ca = model.app_data().get("ca-bundle")

            new_leader = next(n for n in model.unit_names if n != model.leader)
            say(f"\n== moving leadership to {new_leader}, then adding a unit")
            model.set_leader(new_leader)
            hooks = model.settle().hooks
            added = model.add_unit()
            hooks += model.settle().hooks
            ok &= report(model, port, f"leader change and {added} added", hooks)
            same_ca = model.app_data().get("ca-bundle") == ca
            say(f"   the CA is {'unchanged' if same_ca else 'CHANGED'} after the leader change")
            ok &= same_ca

            say(f"\n== deploying {transfer_checks.CLIENT_APP} (2 units; an ops charm with "
                "its own venv) and relating it to tls-demo")
            transfer_checks.add_client(model, 2)
            ok &= report_clients(model, port, model.settle().hooks)
        finally:
            model_checks.stop_services(model)
    say(f"\n== {'PASS' if ok else 'FAIL'} in {time.monotonic() - started:.0f}s")
    return 0 if ok else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    sys.exit(main())
