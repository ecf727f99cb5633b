"""Checks of a client application that trusts tls-demo through certificate_transfer.

The client units (tests/charms/trust-client, run in the model) write the CA bundle they
received to ``~/ca-bundle.crt`` (their ``$SIM_UNIT_ROOT``). A check connects from a client
unit's address to a tls-demo unit's echo service and verifies the server with that bundle
only (chain and the server's IP address). The echo service then asks for a client
certificate the client does not have (it does mutual TLS with its peers): that comes after
the client's verification, which is what is checked here. Shared by
tests/test_model_transfer.py and `make demo`.
"""
from __future__ import annotations

import pathlib
import socket
import ssl
from typing import Dict, Optional, Tuple

from model import pack_ops_charm
from model_checks import assert_all_ok

ROOT = pathlib.Path(__file__).resolve().parent.parent
CLIENT_SRC = ROOT / "tests" / "charms" / "trust-client"
CLIENT_APP = "trust-client"
CLIENT_CONFIG = {"bundle-path": "~/ca-bundle.crt"}
PROVIDER_ENDPOINT = "tls-demo:send-ca-cert"
CLIENT_ENDPOINT = "trust-client:receive-ca-cert"


def client_charm() -> pathlib.Path:
    """trust-client laid out as charmcraft packs it (cached under build/charms/)."""
    return pack_ops_charm(CLIENT_SRC)


def add_client(model, units: int = 2, relate: bool = True) -> Optional[str]:
    """Deploy trust-client next to tls-demo (and integrate them); returns the relation id."""
    model.add_application(client_charm(), config=CLIENT_CONFIG)
    model.deploy(units, app=CLIENT_APP)
    return model.integrate(PROVIDER_ENDPOINT, CLIENT_ENDPOINT) if relate else None


def bundle_file(model, client: str) -> pathlib.Path:
    return model.unit(client).root / "ca-bundle.crt"


def verify_server(ca_file, source: str, server: str, port: int) -> str:
    """"ok" if a TLS 1.3 client at ``source`` trusting ``ca_file`` only verifies the echo
    service at ``server``:``port`` (chain and IP address), else the error."""
    try:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.minimum_version = ssl.TLSVersion.TLSv1_3
        context.verify_flags |= ssl.VERIFY_X509_STRICT
        context.load_verify_locations(str(ca_file))
        with socket.create_connection((server, port), timeout=10,
                                      source_address=(source, 0)) as raw:
            with context.wrap_socket(raw, server_hostname=server) as tls:
                return "ok" if tls.getpeercert() else "no server certificate"
    except (OSError, ssl.SSLError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"


def client_matrix(model, port: int, ca_file=None) -> Dict[Tuple[str, str], str]:
    """Every client unit against every tls-demo unit, each client with its own received
    bundle (or ``ca_file`` for all). {(client, server): "ok" or the error}."""
    results = {}
    for client in model.app_units(CLIENT_APP):
        trusted = ca_file or bundle_file(model, client)
        source = model.unit(client).address
        for server in model.unit_names:
            if not pathlib.Path(trusted).exists():
                results[(client, server)] = "no bundle received"
                continue
            results[(client, server)] = verify_server(trusted, source,
                                                      model.unit(server).address, port)
    return results


def check_clients(model, port: int) -> Dict[Tuple[str, str], str]:
    """Every client unit verifies every tls-demo unit with the bundle it received."""
    return assert_all_ok(client_matrix(model, port), "client verification failures")
