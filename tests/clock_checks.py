"""Checks of a tls-demo model at the model's time (after ``Model.advance_clock``).

The test process runs in real time and the units' echo services keep the clock they started
with, so after the model's clock moved these checks judge times as the units do: the
certificate checks take ``now`` from the model's clock, and the mutual-TLS handshakes run in
one subprocess on the model's clock (``python tests/clock_checks.py`` reads a spec on stdin),
with every unit's files: a server per unit with the echo service's own TLS context
(``examples/tls-demo/files/echo_server.py`` ``make_context``: bundle, CRL check), a client
per unit as ``model_checks`` makes it. ``openssl`` runs on the model's clock too.
"""
from __future__ import annotations

import datetime
import json
import pathlib
import socket
import ssl
import sys
import threading
from typing import Dict, List, Tuple

ROOT = pathlib.Path(__file__).resolve().parent.parent
ECHO_SERVER = ROOT / "examples" / "tls-demo" / "files" / "echo_server.py"


# ------------------------------------------------------------ in the test process

def model_now(model) -> datetime.datetime:
    """The model's time now (aware UTC)."""
    from model.clock import model_now as now

    return now(model.clock_offset)


def unit_paths(model, unit: str) -> Dict[str, pathlib.Path]:
    """The tls-demo unit's certificate, key, CA bundle and CRL files (its layer.yaml)."""
    tls = model.unit(unit).charm_dir / "tls"
    return {"cert": tls / "server.crt", "key": tls / "server.key", "ca": tls / "ca.crt",
            "crl": tls / "ca.crl"}


def certificates_at_model_time(model) -> Dict[str, object]:
    """Every live unit's certificate verifies at the model's time against the published
    bundle, as a server for its FQDN and address and as a client, and matches its key."""
    from charms.layer.tls import pki

    bundle = pki.load_certificates(model.app_data()["ca-bundle"])
    now = model_now(model)
    certs = {}
    for name in model.unit_names:
        unit, files = model.unit(name), unit_paths(model, name)
        # the certificate file: the unit's certificate, then its intermediate
        cert, *chain = pki.load_certificates(files["cert"].read_bytes())
        for kwargs in ({"dns_name": unit.fqdn}, {"ip_address": unit.address},
                       {"purpose": "client"}):
            try:
                pki.verify_certificate(cert, bundle, now=now, intermediates=chain, **kwargs)
            except pki.CertificateVerificationError as exc:
                raise AssertionError(f"{name}: does not verify {kwargs} at {now}: {exc}") \
                    from None
        key = pki.load_private_key(files["key"].read_bytes())
        assert pki.certificate_matches_key(cert, key), f"{name}: key and certificate differ"
        certs[name] = cert
    return certs


def mtls_at_model_time(model) -> Dict[Tuple[str, str], str]:
    """Every unit (client) against every unit (server), both on the model's clock, with the
    units' own files. Returns {(client, server): "ok" or the error}."""
    from model.clock import run_at_model_time

    spec = {"echo_server": str(ECHO_SERVER),
            "units": {name: {"address": model.unit(name).address,
                             **{k: str(p) for k, p in unit_paths(model, name).items()}}
                      for name in model.unit_names}}
    done = run_at_model_time(model.clock_offset, [sys.executable, __file__],
                             input=json.dumps(spec), timeout=120)
    assert done.returncode == 0, f"the handshake check failed: {done.stderr}"
    return {tuple(pair.split(" ")): result for pair, result in json.loads(done.stdout).items()}


def check_mtls_at_model_time(model) -> Dict[Tuple[str, str], str]:
    matrix = mtls_at_model_time(model)
    failed = {pair: r for pair, r in matrix.items() if r != "ok"}
    assert not failed, f"mTLS failures at the model's time: {failed}"
    return matrix


def openssl_at_model_time(model, *argv: str):
    """``openssl argv...`` on the model's clock (CompletedProcess, text)."""
    from model.clock import run_at_model_time

    return run_at_model_time(model.clock_offset, ["openssl", *argv], timeout=60)


def assert_no_failed_hooks(model, since: int = 0) -> None:
    """No hook or action run from history index ``since`` on failed."""
    failed = [(r.unit, r.hook, r.stderr[-400:]) for r in model.history[since:] if not r.ok]
    assert not failed, f"hooks failed: {failed}"


# ------------------------------------------------------------ the handshake subprocess

def _client_context(files: Dict[str, str]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # as model_checks._client_context
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    context.load_verify_locations(files["ca"])
    context.load_cert_chain(files["cert"], files["key"])
    return context


def _serve(listener: socket.socket, context: ssl.SSLContext, name: str, echo) -> None:
    """Answer each connection with the echo service's own ``serve_one``, until closed."""
    while True:
        try:
            connection, _ = listener.accept()
        except OSError:
            return
        echo.serve_one(connection, context, name)


def handshake_matrix(spec: dict) -> Dict[str, str]:
    """Run in the subprocess: one server per unit on its address (a free port), then every
    client unit talks to every server. No time.sleep (see tests/model/hostshim)."""
    import argparse
    import importlib.util

    loaded = importlib.util.spec_from_file_location("echo_server", spec["echo_server"])
    echo = importlib.util.module_from_spec(loaded)
    loaded.loader.exec_module(echo)
    servers: Dict[str, Tuple[str, int]] = {}
    listeners: List[socket.socket] = []
    for name, files in spec["units"].items():
        args = argparse.Namespace(cert=files["cert"], key=files["key"], ca=files["ca"],
                                  crl=files["crl"])
        listener = socket.create_server((files["address"], 0))
        listeners.append(listener)
        servers[name] = (files["address"], listener.getsockname()[1])
        threading.Thread(target=_serve, args=(listener, echo.make_context(args), name, echo),
                         daemon=True).start()
    results = {}
    for client, files in spec["units"].items():
        try:
            context = _client_context(files)
        except (OSError, ssl.SSLError) as exc:
            context, error = None, f"{type(exc).__name__}: {exc}"
        for server, (address, port) in servers.items():
            key = f"{client} {server}"
            if context is None:
                results[key] = error
                continue
            try:
                with socket.create_connection((address, port), timeout=10) as raw:
                    with context.wrap_socket(raw, server_hostname=address) as tls:
                        tls.sendall(f"hello from {client}\n".encode())
                        answer = tls.recv(4096).decode().strip()
                expected = f"{server} to {client}: hello from {client}"
                results[key] = "ok" if answer == expected else f"got {answer!r}"
            except (OSError, ssl.SSLError) as exc:
                results[key] = f"{type(exc).__name__}: {exc}"
    for listener in listeners:
        listener.close()
    return results


if __name__ == "__main__":
    print(json.dumps(handshake_matrix(json.load(sys.stdin))))
