"""A charm layer written the old way: handlers take the relation instance as argument.

Kept exactly in the style of legacy layer-tls handlers (no new API used).
"""
from charmhelpers.core import hookenv, unitdata
from charms.reactive import remove_state, when

from interface_fixtures.pem import fake_cert, fake_csr


@when('create certificate signing request')
def create_csr(tls):
    unitdata.kv().set('test.create.arg', [type(tls).__name__, tls.endpoint_name])
    tls.set_csr(fake_csr(hookenv.local_unit()))


@when('sign certificate signing request')
def sign_all(tls):
    for unit_name, csr in tls.get_csr_map().items():
        tls.set_cert(unit_name, fake_cert(csr))
    remove_state('sign certificate signing request')


@when('signed certificate available')
def store_certificate(tls):
    unitdata.kv().set('test.cert', tls.get_signed_cert())
