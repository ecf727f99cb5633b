"""Handlers using the new interface API, the way layer-tls will (argument-less).

Test knobs: config ``serial`` (a change asks for a new CSR), config ``issuer`` (changes
the text of certificates this leader issues). Records in unitdata: ``test.signed`` (the
units signed in each signing run), ``test.removed``.
"""
from charmhelpers.core import hookenv, unitdata
from charms.reactive import endpoint_from_name, when, when_not

from interface_fixtures.pem import CA_BUNDLE, fake_cert, fake_csr


def _tls():
    return endpoint_from_name('certificates')


@when('create certificate signing request')
def publish_csr():
    tls = _tls()
    unit = hookenv.local_unit()
    tls.publish_claims([unit.replace('/', '-')], [])
    tls.set_csr(fake_csr(unit, hookenv.config().get('serial') or 0))


@when('sign certificate signing request')
def sign_pending():
    tls = _tls()
    pending = tls.pending_csrs()
    kv = unitdata.kv()
    kv.set('test.signed', (kv.get('test.signed') or []) + [sorted(pending)])
    issuer = hookenv.config().get('issuer') or 'ca'
    tls.set_ca_bundle(CA_BUNDLE)
    tls.set_certs({unit: fake_cert(csr, issuer) for unit, csr in pending.items()})


@when('tls.peers.departed')
def clean_departed():
    tls = _tls()
    kv = unitdata.kv()
    for unit in tls.departed_units():
        kv.set('test.removed', (kv.get('test.removed') or []) + [unit])
        tls.remove_unit(unit)


@when_not('test.never.set')
def rotate_on_serial_change():
    serial = hookenv.config().get('serial') or 0
    kv = unitdata.kv()
    if serial and kv.get('test.serial') != serial:
        kv.set('test.serial', serial)
        _tls().request_new_csr()
