"""interface:tls keeps the legacy contract: handlers written the old way, legacy keys/flags.

The handler module (interface_fixtures/legacy_handlers.py) takes the relation instance
as its argument, exactly like legacy layer-tls; it is run by the real charms.reactive.
"""
import json
import pathlib

from interface_fixtures.pem import fake_cert, fake_csr
from reactive_harness import FakeJuju

FIXTURES = pathlib.Path(__file__).parent / 'interface_fixtures'
LEGACY = (FIXTURES / 'legacy_handlers.py').read_text()
CREATE, SIGN, SIGNED = ('create certificate signing request',
                        'sign certificate signing request', 'signed certificate available')


def _model(tmp_path, units=2):
    juju = FakeJuju(tmp_path, handlers={'legacy.py': LEGACY})
    names = [juju.add_unit() for _ in range(units)]
    juju.set_leader(names[0])
    rid = juju.add_peer_relation()
    return juju, rid, names


def test_legacy_handler_gets_the_endpoint_instance_from_a_space_separated_flag(tmp_path):
    juju, rid, (a0,) = _model(tmp_path, units=1)
    juju.enter(rid, a0)
    # endpoint_from_flag found our class through the flag value, then our from_flag
    assert juju.kv(a0).get('test.create.arg') == ['TlsPeers', 'certificates']
    assert juju.unit_bag(rid, a0)['csr'] == fake_csr(a0)


def test_flag_set_bare_by_an_upper_layer_still_reaches_a_legacy_handler(tmp_path):
    juju, rid, (a0,) = _model(tmp_path, units=1)
    juju.set_leader(None)
    juju.enter(rid, a0)
    assert not juju.flag_set(a0, CREATE)  # cleared by set_csr in the legacy handler
    # a legacy upper layer asks for a new CSR with a plain set_state (no value)
    juju.kv(a0).set('reactive.states.' + CREATE, None)
    juju.kv(a0).set('test.create.arg', None)
    juju.kv(a0).flush()
    run = juju.run_hook(a0, 'update-status')
    assert run.ok
    assert juju.kv(a0).get('test.create.arg') == ['TlsPeers', 'certificates']
    assert not juju.flag_set(a0, CREATE)


def test_old_api_end_to_end_create_sign_receive(tmp_path):
    juju, rid, (a0, a1) = _model(tmp_path)
    juju.enter(rid, a0)
    juju.enter(rid, a1)
    juju.settle()
    for unit in (a0, a1):
        cert = fake_cert(fake_csr(unit))
        assert juju.flag_set(unit, SIGNED)
        assert not juju.flag_set(unit, CREATE)
        assert juju.kv(unit).get('test.cert') == cert           # get_signed_cert()
        assert juju.kv(unit).get(unit + '_signed_certificate') == cert  # README promise
        # legacy keys: raw PEM, not JSON-quoted
        assert juju.unit_bag(rid, unit)['csr'] == fake_csr(unit)
        if unit != a0:  # legacy peers read their certificate from the leader's bag
            assert juju.unit_bag(rid, a0)[unit + '_signed_certificate'] == cert
    assert not juju.flag_set(a0, SIGN)
    assert not juju.flag_set(a1, SIGN)  # never on a non-leader
    app = juju.app_bag(rid)
    assert sorted(json.loads(app['certificates'])) == [a0, a1]


def test_legacy_leader_only_unit_keys_still_serve_a_new_non_leader(tmp_path):
    """A not-yet-upgraded leader writes only '<unit>_signed_certificate' in its bag."""
    juju = FakeJuju(tmp_path, handlers={'legacy.py': LEGACY})
    a0, a1 = juju.add_unit(), juju.add_unit()
    juju.set_leader(a0)
    rid = juju.add_peer_relation()
    juju.enter(rid, a0, hooks=False)
    juju.enter(rid, a1, hooks=False)
    juju.run_hook(a1, 'certificates-relation-joined', rid=rid, remote_unit=a0)
    csr = juju.unit_bag(rid, a1)['csr']
    assert not juju.flag_set(a1, SIGNED)
    juju.set_unit_data(rid, a0, **{a1 + '_signed_certificate': fake_cert(csr, 'legacy')})
    juju.run_hook(a1, 'certificates-relation-changed', rid=rid, remote_unit=a0)
    assert juju.flag_set(a1, SIGNED)
    assert juju.kv(a1).get('test.cert') == fake_cert(csr, 'legacy')


def test_legacy_certificate_for_an_old_csr_is_not_current(tmp_path):
    juju = FakeJuju(tmp_path, handlers={'legacy.py': LEGACY})
    a0, a1 = juju.add_unit(), juju.add_unit()
    juju.set_leader(a0)
    rid = juju.add_peer_relation()
    juju.enter(rid, a0, hooks=False)
    juju.enter(rid, a1, hooks=False)
    old = fake_cert('old csr', 'legacy')
    juju.set_unit_data(rid, a0, **{a1 + '_signed_certificate': old})
    juju.set_unit_data(rid, a1, csr=fake_csr(a1, 'old'))
    juju.run_hook(a1, 'certificates-relation-changed', rid=rid, remote_unit=a0)
    assert juju.flag_set(a1, SIGNED)  # the legacy cert is taken for the published CSR
    # the unit sends a new CSR: the cert it holds now is for the old one

    def new_csr():
        from charms.reactive import endpoint_from_name

        endpoint_from_name('certificates').set_csr(fake_csr(a1, 'new'))

    juju.run_hook(a1, 'config-changed', call=new_csr)
    assert not juju.flag_set(a1, SIGNED)
    juju.set_unit_data(rid, a0, **{a1 + '_signed_certificate': fake_cert('x', 'legacy')})
    juju.run_hook(a1, 'certificates-relation-changed', rid=rid, remote_unit=a0)
    assert juju.flag_set(a1, SIGNED)
