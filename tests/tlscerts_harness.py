"""The tls-certificates requirer (interface-tls-certificates) on the real charms.reactive,
in the in-memory Juju of reactive_harness: a charm ``tls`` whose metadata requires
``ca-certificates: interface: tls-certificates``, related to a fake provider application
``root-ca`` whose app bag the tests fill (by hand, or with what the real provider library
wrote in tests/charms/root-ca).

Also real key/CSR makers (cryptography, test side only: the interface never sees a key).
"""
from __future__ import annotations

import pathlib
from typing import Any, Callable, List, Optional, Tuple

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from reactive_harness import FakeJuju

ROOT = pathlib.Path(__file__).resolve().parent.parent
INTERFACE = ROOT / 'interface-tls-certificates'
ENDPOINT = 'ca-certificates'
PROVIDER_APP = 'root-ca'
METADATA = {
    'name': 'tls',
    'summary': 'test charm',
    'description': 'test charm',
    'requires': {ENDPOINT: {'interface': 'tls-certificates'}},
}


def flag(name: str) -> str:
    """The full name of one of the endpoint's flags, e.g. ``certificate.available``."""
    return f'endpoint.{ENDPOINT}.{name}'


def deploy(tmp_path, units: int = 1, provider_units: int = 1, handlers=None
           ) -> Tuple[FakeJuju, str, List[str]]:
    """(juju, relation id, unit names): ``tls`` units related to ``root-ca``; the first
    unit is the leader; every unit has entered the relation (its hooks have run)."""
    juju = FakeJuju(tmp_path, metadata=METADATA,
                    interfaces={'tls-certificates': INTERFACE}, handlers=handlers)
    names = [juju.add_unit() for _ in range(units)]
    juju.set_leader(names[0])
    rid = juju.add_relation(ENDPOINT, [f'{PROVIDER_APP}/{i}' for i in range(provider_units)])
    for name in names:
        juju.enter(rid, name)
    juju.settle()
    return juju, rid, names


def endpoint():
    """The endpoint instance of the running hook."""
    from charms.reactive import endpoint_from_name

    return endpoint_from_name(ENDPOINT)


def call(juju: FakeJuju, unit: str, fn: Callable[[Any], Any], hook: str = 'update-status',
         **kw: Any):
    """Run ``hook`` on ``unit`` calling ``fn(endpoint)`` after dispatch; the HookRun."""
    return juju.run_hook(unit, hook, call=lambda: fn(endpoint()), **kw)


def provider_writes(juju: FakeJuju, rid: str, unit: str, **values: Optional[str]):
    """The provider's app bag becomes ``values`` (keys not in it are deleted, as when the
    library dumps its model); ``unit`` runs the relation-changed hook Juju would send it.
    Returns the HookRun."""
    gone = {key: None for key in juju.app_bag(rid, PROVIDER_APP) if key not in values}
    juju.set_app_data(rid, app=PROVIDER_APP, **gone, **values)
    return juju.run_hook(unit, f'{ENDPOINT}-relation-changed', rid=rid,
                         remote_unit=f'{PROVIDER_APP}/0')


def warnings(run) -> List[str]:
    return [m for level, m in run.logs if level == 'WARNING']


# ---------------------------------------------------------------- real keys and CSRs


def make_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def make_csr(key, common_name: str = 'tls intermediate CA') -> str:
    """A CSR PEM (as cryptography writes it) for ``key``."""
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
           .sign(key, hashes.SHA256()))
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def key_pem(key) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()
