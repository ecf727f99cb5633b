"""Checks run on a settled model of the tls-demo charm: certificates, mTLS, no key leaks.

Shared by the model tests and `make demo`; every check raises AssertionError with a
message naming the unit (pairs) that failed.
"""
from __future__ import annotations

import json
import os
import pathlib
import signal
import socket
import ssl
import stat
import tempfile
import time
from typing import Dict, List, Tuple

from charms.layer.tls import pki

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEMO_LAYER = ROOT / "examples" / "tls-demo"
PRIVATE_KEY_MARK = "PRIVATE KEY-----"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def unit_files(model, unit: str) -> Dict[str, pathlib.Path]:
    charm = model.unit(unit).charm_dir
    return {"cert": charm / "tls" / "server.crt", "key": charm / "tls" / "server.key",
            "ca": charm / "tls" / "ca.crt", "pid": charm / "echo.pid"}


def stop_services(model) -> None:
    """Kill every unit's echo service (they outlive hooks, as a workload does)."""
    for unit in model.units.values():
        pidfile = unit.charm_dir / "echo.pid"
        try:
            os.kill(int(pidfile.read_text()), signal.SIGTERM)
        except (OSError, ValueError):
            pass


def published_bundle(model) -> List:
    return pki.load_certificates(model.app_data()["ca-bundle"])


def published_intermediates(model) -> List:
    """The published signing CAs under the roots of the bundle (none: self-signed)."""
    text = model.app_data().get("ca-intermediates")
    return pki.load_certificates(text) if text else []


def signing_ca(model):
    """The CA that signs the leaves under the first root of the bundle: its intermediate,
    or the root itself when it is self-signed."""
    return pki.issuing_cas(published_bundle(model)[:1], published_intermediates(model))[0]


def secret_anchor(content) -> str:
    """The root (trust anchor) of the CA a CA secret holds: the end of its chain, or the
    CA itself when it is self-signed."""
    return pki.certificate_to_pem(pki.load_certificates(
        content.get("chain") or content["certificate"])[-1])


def check_certificates(model) -> Dict[str, object]:
    """Every live unit's certificate, with the intermediates its certificate file holds
    after it, verifies against the published CA bundle for its own FQDN and address
    (server) and as a client; the file holds exactly the leaf and the published
    intermediates above it (a full chain), the unit's CA file only roots (an intermediate
    there would be a trust anchor, whose name constraints Java ignores); its key file is
    0600 and matches."""
    bundle = published_bundle(model)
    intermediates = published_intermediates(model)
    certs = {}
    for name in model.unit_names:
        unit = model.unit(name)
        files = unit_files(model, name)
        cert, *chain = pki.load_certificates(files["cert"].read_bytes())
        assert chain == pki.chain_for(cert, intermediates), (
            f"{name}: its certificate file holds {len(chain)} certificate(s) after the "
            "leaf, not its chain up to the root")
        anchors = pki.load_certificates(files["ca"].read_bytes())
        assert all(a.issuer == a.subject for a in anchors), f"{name}: a non-root is trusted"
        for kwargs in ({"dns_name": unit.fqdn}, {"ip_address": unit.address},
                       {"purpose": "client"}):
            try:
                pki.verify_certificate(cert, bundle, intermediates=chain, **kwargs)
            except pki.CertificateVerificationError as exc:
                raise AssertionError(f"{name}: does not verify {kwargs}: {exc}") from None
        mode = stat.S_IMODE(files["key"].stat().st_mode)
        assert mode == 0o600, f"{name}: key file mode {oct(mode)}"
        key = pki.load_private_key(files["key"].read_bytes())
        assert pki.certificate_matches_key(cert, key), f"{name}: key and certificate differ"
        certs[name] = cert
    return certs


def _client_context(cert_file, key_file, ca_file) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    context.load_verify_locations(str(ca_file))
    context.load_cert_chain(str(cert_file), str(key_file))
    return context


def _echo(context, address: str, port: int, message: str) -> str:
    with socket.create_connection((address, port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=address) as tls:
            tls.sendall(message.encode() + b"\n")
            return tls.recv(4096).decode().strip()


def wait_for_services(model, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    for name in model.unit_names:
        pidfile = unit_files(model, name)["pid"]
        while not pidfile.exists():
            if time.monotonic() > deadline:
                raise AssertionError(f"{name}: the echo service did not start")
            time.sleep(0.05)


def mtls_matrix(model, port: int) -> Dict[Tuple[str, str], str]:
    """Every unit (client, with its own files) talks to every unit's echo service (server,
    checked for its address). Returns {(client, server): "ok" or the error}."""
    wait_for_services(model)
    results = {}
    for client in model.unit_names:
        files = unit_files(model, client)
        context = _client_context(files["cert"], files["key"], files["ca"])
        for server in model.unit_names:
            address = model.unit(server).address
            try:
                answer = _echo(context, address, port, f"hello from {client}")
                expected = f"{server} to {client}: hello from {client}"
                results[(client, server)] = "ok" if answer == expected else f"got {answer!r}"
            except (OSError, ssl.SSLError) as exc:
                results[(client, server)] = f"{type(exc).__name__}: {exc}"
    return results


def check_mtls(model, port: int) -> Dict[Tuple[str, str], str]:
    return assert_all_ok(mtls_matrix(model, port), "mTLS failures")


def assert_all_ok(results: Dict[Tuple[str, str], str], what: str
                  ) -> Dict[Tuple[str, str], str]:
    """``results`` ({(client, server): "ok" or the error}) when every pair is "ok"."""
    failed = {pair: r for pair, r in results.items() if r != "ok"}
    assert not failed, f"{what}: {failed}"
    return results


def foreign_client_refused(model, port: int) -> Dict[str, str]:
    """A client whose certificate comes from another CA is refused by every unit."""
    foreign = pki.create_ca("foreign CA")
    key = pki.generate_private_key()
    cert = pki.issue_certificate(foreign, key.public_key(), common_name="intruder",
                                 dns_names=["intruder.example"])
    outcome = {}
    with tempfile.TemporaryDirectory() as tmp:
        cert_file, key_file = pathlib.Path(tmp, "c.pem"), pathlib.Path(tmp, "k.pem")
        cert_file.write_text(pki.certificate_to_pem(cert))
        key_file.write_bytes(pki.private_key_to_pem(key))
        for server in model.unit_names:
            # The intruder trusts the real CA (it may learn it), so only its own
            # certificate can make the handshake fail.
            ca_file = unit_files(model, server)["ca"]
            context = _client_context(cert_file, key_file, ca_file)
            try:
                answer = _echo(context, model.unit(server).address, port, "let me in")
                outcome[server] = f"ACCEPTED: {answer!r}"
            except (OSError, ssl.SSLError) as exc:
                outcome[server] = f"refused ({type(exc).__name__})"
    accepted = {s: o for s, o in outcome.items() if o.startswith("ACCEPTED")}
    assert not accepted, f"a foreign-CA client was accepted: {accepted}"
    return outcome


def check_no_key_leaks(model, allow_leader_settings: bool = False) -> None:
    """No private key PEM in relation data, leader settings (except the documented
    pre-secrets fallback), statuses or hook logs."""
    state = model.state()
    places = {"relation data": state["relations"],
              "statuses": {u: v.get("status") for u, v in state["units"].items()},
              "hook logs": model.logs()}
    if not allow_leader_settings:
        places["leader settings"] = state["leader_settings"]
    for where, value in places.items():
        assert PRIVATE_KEY_MARK not in json.dumps(value), f"a private key is in the {where}"


def presented_chains(model, port: int) -> Dict[str, List]:
    """The certificates each unit's echo service presents in a real handshake
    (``openssl s_client -showcerts``, a client with another unit's files)."""
    import re
    import subprocess

    client = unit_files(model, model.unit_names[0])
    chains = {}
    for server in model.unit_names:
        done = subprocess.run(
            ["openssl", "s_client", "-connect", f"{model.unit(server).address}:{port}",
             "-showcerts", "-CAfile", str(client["ca"]), "-cert", str(client["cert"]),
             "-key", str(client["key"]), "-verify_return_error"],
            input="hello\n", capture_output=True, text=True, timeout=30, check=False)
        blocks = re.findall(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----\n?",
                            done.stdout, re.S)
        chains[server] = pki.load_certificates("".join(blocks)) if blocks else []
    return chains


def check_presented_chains(model, port: int) -> Dict[str, int]:
    """Every unit's service presents its certificate, then the intermediates above it
    (the certificate file's full chain); anything after them can only be a root of the
    bundle (an OpenSSL server given no chain completes it from its trust store, as under
    a self-signed CA). Returns how many certificates each presents."""
    intermediates, roots = published_intermediates(model), published_bundle(model)
    lengths = {}
    for name, presented in presented_chains(model, port).items():
        cert = pki.load_certificates(unit_files(model, name)["cert"].read_bytes())[0]
        expected = [cert, *pki.chain_for(cert, intermediates)]
        assert presented[:len(expected)] == expected, (
            f"{name}: presents {len(presented)} certificate(s), not its leaf and its "
            f"{len(expected) - 1} intermediate(s)")
        assert all(extra in roots for extra in presented[len(expected):]), name
        lengths[name] = len(presented)
    return lengths


def check_all(model, port: int, allow_leader_settings: bool = False) -> dict:
    certs = check_certificates(model)
    matrix = check_mtls(model, port)
    check_presented_chains(model, port)
    refused = foreign_client_refused(model, port)
    check_no_key_leaks(model, allow_leader_settings)
    for name in model.unit_names:
        state, message = model.status(name)["status"], model.status(name)["message"]
        assert state == "active", f"{name}: {state} {message}"
    return {"certs": certs, "matrix": matrix, "refused": refused}


def assert_quiet(model) -> None:
    """Nothing queued, and no unit's last hook failed (no hook left in a failure loop)."""
    assert not model.pending(), f"hooks still queued: {model.pending()}"
    last = {}
    for run in model.history:
        last[run.unit] = run
    failed = {u: r.hook for u, r in last.items() if not r.ok and u in model.unit_names}
    assert not failed, f"last hook failed: {failed}"


def assert_one_new_ca(model, old_bundle=None):
    """The rollover ended: one CA, not the old one, in the bundle, in every unit's CA file
    and in the CA secret, whose older revisions were pruned (secret-remove) once no unit
    read them; every unit's certificate is from it, mTLS works between every pair, every
    unit is active and no hook is left failing. ``old_bundle=None``: any one CA."""
    assert_quiet(model)
    statuses = {name: model.status(name) for name in model.unit_names}
    bundle = model.app_data().get("ca-bundle", "")
    count = bundle.count("BEGIN CERTIFICATE")
    assert count == 1, f"{count} CAs in the bundle; statuses: {statuses}"
    assert bundle != old_bundle
    new_ca = signing_ca(model)  # the new root's intermediate (or the root, self-signed)
    certs = check_all(model, model.port)["certs"]
    assert all(cert.issuer == new_ca.subject for cert in certs.values())
    for name in model.unit_names:
        assert unit_files(model, name)["ca"].read_text() == bundle
    if model.secrets_supported:
        (secret,) = model.secrets().values()
        assert secret_anchor(secret["content"]) == bundle
        assert secret["content"]["certificate"] == pki.certificate_to_pem(new_ca)
        assert sorted(secret["revisions"]) == [secret["revision"]], "old CA keys left"
    return certs


def step_checking_mtls(model, max_hooks=400):
    """Run queued hooks one at a time; after each, every pair of units must still complete
    a mutual-TLS handshake. Returns the number of hooks run."""
    return step_checking(model, lambda: check_mtls(model, model.port), max_hooks)


def step_checking(model, check, max_hooks=400):
    """Run queued hooks one at a time and call ``check()`` after each, until the model
    settles. Returns the number of hooks run."""
    from model import SettleTimeout

    hooks = 0
    while True:
        try:
            model.settle(max_hooks=1)
            done = True
        except SettleTimeout:
            done = False
        hooks += 1
        check()
        if done:
            return hooks
        assert hooks < max_hooks, "the model did not settle"
