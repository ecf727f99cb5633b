"""interface:tls (peers) on the real charms.reactive, driven through the in-memory Juju.

Handlers: interface_fixtures/modern_handlers.py (the new API, as layer-tls uses it).
"""
import json
import pathlib

import pytest
from interface_fixtures.pem import CA_BUNDLE, fake_cert, fake_csr
from reactive_harness import FakeJuju

FIXTURES = pathlib.Path(__file__).parent / 'interface_fixtures'
MODERN = (FIXTURES / 'modern_handlers.py').read_text()
CREATE, SIGN, SIGNED = ('create certificate signing request',
                        'sign certificate signing request', 'signed certificate available')
DEPARTED = 'tls.peers.departed'
OURS = (CREATE, SIGN, SIGNED, DEPARTED)


def _model(tmp_path, units=2, handlers=True, enter=True):
    juju = FakeJuju(tmp_path, handlers={'modern.py': MODERN} if handlers else None)
    names = [juju.add_unit() for _ in range(units)]
    juju.set_leader(names[0])
    rid = juju.add_peer_relation()
    if enter:
        for unit in names:
            juju.enter(rid, unit)
        juju.settle()
    return juju, rid, names


def _certs(juju, rid):
    return json.loads(juju.app_bag(rid).get('certificates', '{}'))


def _signed(juju, unit):
    return juju.kv(unit).get('test.signed') or []


def _tls():
    from charms.reactive import endpoint_from_name

    return endpoint_from_name('certificates')


def _endpoint_call(juju, unit, method, *args, hook='update-status'):
    """Run a hook on ``unit`` calling one endpoint method after dispatch; its result."""
    return juju.run_hook(unit, hook, call=lambda: getattr(_tls(), method)(*args)).result


def _warnings(run):
    return [m for level, m in run.logs if level == 'WARNING']


# ---------------------------------------------------------------- single unit


def test_single_unit_flags_fire_with_no_remote_unit(tmp_path):
    juju, rid, (a0,) = _model(tmp_path, units=1, handlers=False, enter=False)
    juju.enter(rid, a0)  # relation-created: relation-ids lists it, relation-list is empty
    assert juju.flags(a0) == [CREATE]
    assert juju.flag_value(a0, CREATE) == {'relation': 'certificates'}


def test_single_unit_leader_signs_its_own_csr(tmp_path):
    juju, rid, (a0,) = _model(tmp_path, units=1)
    cert = fake_cert(fake_csr(a0))
    assert juju.flag_set(a0, SIGNED)
    assert not juju.flag_set(a0, SIGN) and not juju.flag_set(a0, CREATE)
    assert _certs(juju, rid) == {a0: cert}
    assert juju.app_bag(rid)['ca-bundle'] == CA_BUNDLE  # raw PEM
    assert json.loads(juju.app_bag(rid)['signed-csrs']) == {
        a0: __import__('hashlib').sha256(fake_csr(a0).encode()).hexdigest()}
    assert juju.kv(a0).get(a0 + '_signed_certificate') == cert
    assert _signed(juju, a0) == [[a0]]


def test_no_relation_no_flags(tmp_path):
    juju, rid, (a0,) = _model(tmp_path, units=1, enter=False)
    run = juju.run_hook(a0, 'install')
    assert run.ok and juju.flags(a0) == []


# ---------------------------------------------------------------- join / change


def test_join_every_unit_gets_a_certificate_for_its_csr(tmp_path):
    juju, rid, names = _model(tmp_path, units=3)
    certs = _certs(juju, rid)
    for unit in names:
        assert juju.flag_set(unit, SIGNED), unit
        assert certs[unit] == fake_cert(fake_csr(unit))
        assert juju.kv(unit).get(unit + '_signed_certificate') == certs[unit]
    # current peers (they publish their names) read the app data: no legacy mirror, so
    # one signing round writes one bag and wakes each peer once
    assert not [k for k in juju.unit_bag(rid, names[0]) if k.endswith('_signed_certificate')]
    for unit in names[1:]:
        assert not juju.flag_set(unit, SIGN)
        assert not [k for k in juju.unit_bag(rid, unit) if k.endswith('_signed_certificate')]


def test_non_leader_never_writes_app_data(tmp_path):
    juju, rid, (a0, a1) = _model(tmp_path)
    app_writers = {run.unit for run in juju.history for _, owner, _ in run.relation_sets
                   if owner == juju.app}
    assert app_writers == {a0}
    before = juju.app_bag(rid)

    def forge():
        tls = _tls()
        tls.set_cert(a1, fake_cert('forged'))
        tls.set_ca_bundle(CA_BUNDLE)
        tls.remove_unit(a0)

    run = juju.run_hook(a1, 'update-status', call=forge)
    assert run.ok and not run.relation_sets
    assert juju.app_bag(rid) == before
    assert any('only the leader' in m for m in _warnings(run))


def test_new_csr_is_signed_alone_and_flags_follow(tmp_path):
    juju, rid, (a0, a1) = _model(tmp_path)
    old = _certs(juju, rid)
    juju.set_config(a1, serial=1)
    run = juju.run_hook(a1, 'config-changed')
    assert juju.unit_bag(rid, a1)['csr'] == fake_csr(a1, 1)
    assert not juju.flag_set(a1, SIGNED)  # its certificate is for the old CSR
    assert not juju.flag_set(a1, CREATE)
    assert run.ok
    juju.settle()
    assert _signed(juju, a0)[-1] == [a1]  # only the pending CSR was signed
    certs = _certs(juju, rid)
    assert certs[a0] == old[a0]
    assert certs[a1] == fake_cert(fake_csr(a1, 1))
    assert juju.flag_set(a1, SIGNED)
    assert juju.kv(a1).get(a1 + '_signed_certificate') == certs[a1]


def test_request_new_csr_sets_the_create_flag_until_set_csr(tmp_path):
    juju, rid, (a0,) = _model(tmp_path, units=1, handlers=False)
    _endpoint_call(juju, a0, 'set_csr', fake_csr(a0))
    assert not juju.flag_set(a0, CREATE)
    _endpoint_call(juju, a0, 'request_new_csr')
    assert juju.flag_value(a0, CREATE) == {'relation': 'certificates'}
    juju.run_hook(a0, 'update-status')
    assert juju.flag_set(a0, CREATE)  # a request survives hooks
    _endpoint_call(juju, a0, 'set_csr', fake_csr(a0, 2))
    assert not juju.flag_set(a0, CREATE)


# ---------------------------------------------------------------- depart / broken


def test_departed_unit_is_cleaned_by_the_leader(tmp_path):
    juju, rid, (a0, a1, a2) = _model(tmp_path, units=3)
    juju.leave(rid, a2)
    assert juju.kv(a0).get('test.removed') == [a2]
    assert sorted(_certs(juju, rid)) == [a0, a1]
    assert a2 not in json.loads(juju.app_bag(rid)['signed-csrs'])
    assert a2 + '_signed_certificate' not in juju.unit_bag(rid, a0)
    assert not juju.flag_set(a0, DEPARTED)
    assert not juju.flag_set(a1, DEPARTED)  # never on a non-leader


def test_departed_flag_stays_until_cleaned(tmp_path):
    juju, rid, (a0, a1) = _model(tmp_path, handlers=False, enter=False)
    juju.enter(rid, a0)
    juju.enter(rid, a1)
    _endpoint_call(juju, a0, 'set_certs', {a0: fake_cert('0'), a1: fake_cert('1')})
    juju.leave(rid, a1)
    assert juju.flag_set(a0, DEPARTED)
    assert _endpoint_call(juju, a0, 'departed_units') == [a1]
    juju.run_hook(a0, 'update-status')
    assert juju.flag_set(a0, DEPARTED)  # level-triggered: still there
    _endpoint_call(juju, a0, 'remove_unit', a1)
    assert not juju.flag_set(a0, DEPARTED)
    assert _certs(juju, rid) == {a0: fake_cert('0')}


def test_writes_in_the_departed_hook_of_the_last_peer_are_published(tmp_path):
    """Endpoint drops the relation from .relations when its last remote unit departs;
    the peer relation still exists, so the leader's writes there must still flush."""
    juju, rid, (a0, a1) = _model(tmp_path)
    juju.leave(rid, a1)
    run = juju.history[-1]
    assert run.hook == 'certificates-relation-departed' and run.ok
    assert {owner for _, owner, _ in run.relation_sets} == {juju.app}
    assert sorted(_certs(juju, rid)) == [a0]
    assert juju.flag_set(a0, SIGNED)  # its own state is unaffected


def test_relation_broken_clears_every_flag(tmp_path):
    juju, rid, (a0,) = _model(tmp_path, units=1, handlers=False, enter=False)
    juju.enter(rid, a0)
    _endpoint_call(juju, a0, 'request_new_csr')
    assert juju.flag_set(a0, CREATE)
    juju.run_hook(a0, 'certificates-relation-broken', rid=rid)
    assert not [f for f in juju.flags(a0) if f in OURS]


def test_relation_gone_clears_every_flag(tmp_path):
    juju, rid, (a0, a1) = _model(tmp_path)
    assert juju.flag_set(a0, SIGNED)
    juju.relations[rid].members.remove(a0)  # not in relation-ids any more
    juju.run_hook(a0, 'update-status')
    assert not [f for f in juju.flags(a0) if f in OURS]


# ---------------------------------------------------------------- leadership


def test_leadership_moves_new_leader_reuses_app_data(tmp_path):
    juju, rid, (a0, a1) = _model(tmp_path)
    certs = _certs(juju, rid)
    juju.set_leader(a1)
    run = juju.run_hook(a1, 'leader-elected')
    assert run.ok and not juju.flag_set(a1, SIGN)  # nothing pending: nothing re-signed
    assert _signed(juju, a1) == []
    # a0 publishes its names (a current peer): the new leader mirrors nothing for it
    assert a0 + '_signed_certificate' not in juju.unit_bag(rid, a1)
    assert certs[a0] == _certs(juju, rid)[a0]
    juju.run_hook(a0, 'leader-settings-changed')
    assert not juju.flag_set(a0, SIGN)
    # the old leader drops its mirror, now served by the app data
    assert not [k for k in juju.unit_bag(rid, a0) if k.endswith('_signed_certificate')]
    assert juju.flag_set(a0, SIGNED) and juju.flag_set(a1, SIGNED)
    # a new unit: only its CSR is signed by the new leader
    a2 = juju.add_unit()
    juju.enter(rid, a2)
    juju.settle()
    assert _signed(juju, a1) == [[a2]]
    assert _certs(juju, rid)[a0] == certs[a0]
    assert juju.flag_set(a2, SIGNED)


def test_leadership_lost_clears_leader_flags(tmp_path):
    juju, rid, (a0, a1) = _model(tmp_path, handlers=False, enter=False)
    juju.enter(rid, a0)
    juju.enter(rid, a1)
    _endpoint_call(juju, a0, 'set_csr', fake_csr(a0))
    assert juju.flag_set(a0, SIGN)
    juju.set_leader(a1)
    juju.run_hook(a0, 'leader-settings-changed')
    assert not juju.flag_set(a0, SIGN)


def test_old_leader_departs_new_leader_cleans_it(tmp_path):
    juju, rid, (a0, a1, a2) = _model(tmp_path, units=3)
    juju.set_leader(a1)
    juju.run_hook(a1, 'leader-elected')
    juju.leave(rid, a0)
    assert juju.kv(a1).get('test.removed') == [a0]
    assert sorted(_certs(juju, rid)) == [a1, a2]
    assert juju.flag_set(a2, SIGNED)


# ---------------------------------------------------------------- no spurious writes


def test_nothing_changed_nothing_written(tmp_path):
    juju, rid, names = _model(tmp_path, units=3)
    for unit in names:
        for hook in ('update-status', 'config-changed'):
            run = juju.run_hook(unit, hook)
            assert run.ok and run.relation_sets == [], (unit, hook, run.relation_sets)
        run = juju.run_hook(unit, 'certificates-relation-changed', rid=rid,
                            remote_unit=[n for n in names if n != unit][0])
        assert run.relation_sets == []
    assert not juju.pending


def test_same_certificates_again_write_nothing(tmp_path):
    juju, rid, (a0, a1) = _model(tmp_path)
    certs = _certs(juju, rid)

    def again():
        tls = _tls()
        tls.set_certs(certs)
        tls.set_ca_bundle(CA_BUNDLE)
        tls.set_csr(fake_csr(a0))
        tls.publish_claims([a0.replace('/', '-')], [])
        tls.remove_unit('tls/99')

    run = juju.run_hook(a0, 'update-status', call=again)
    assert run.ok and run.relation_sets == []


def test_failed_hook_commits_nothing(tmp_path):
    juju, rid, (a0,) = _model(tmp_path, units=1, handlers=False, enter=False)
    juju.enter(rid, a0)

    def crash():
        _tls().set_csr(fake_csr(a0))
        raise RuntimeError('handler crashed')

    with pytest.raises(RuntimeError):
        juju.run_hook(a0, 'update-status', call=crash)
    assert 'csr' not in juju.unit_bag(rid, a0)
    assert juju.flag_set(a0, CREATE)  # flag changes rolled back with the hook
    assert juju.history[-1].error is not None and not juju.pending


def test_rejections_are_recorded_and_dropped_when_signed(tmp_path):
    juju, rid, (a0, a1) = _model(tmp_path, handlers=False, enter=False)
    juju.enter(rid, a0)
    juju.enter(rid, a1)
    _endpoint_call(juju, a1, 'set_csr', fake_csr(a1))
    _endpoint_call(juju, a0, 'set_csr', fake_csr(a0))
    # a0 sees a1's CSR once its relation-changed about a1 refreshed its relation cache
    juju.settle()
    digest = __import__('hashlib').sha256(fake_csr(a1).encode()).hexdigest()

    def refuse_a1_sign_a0():
        tls = _tls()
        tls.set_certs({a0: fake_cert(fake_csr(a0))})
        tls.update_rejections({a1: {'csr-sha256': digest, 'reason': 'name not yours'},
                               a0: {'reason': 'no digest: ignored'},
                               'tls/7': {'csr-sha256': 'ab', 'reason': 'x' * 500}})

    run = juju.run_hook(a0, 'update-status', call=refuse_a1_sign_a0)
    assert [owner for _, owner, _ in run.relation_sets].count(juju.app) == 1  # one write
    assert any('bad entry' in m for m in _warnings(run))
    # a refused CSR stays pending (the layer decides when to look again)
    assert juju.flag_set(a0, SIGN)
    assert _endpoint_call(juju, a0, 'pending_csrs') == {a1: fake_csr(a1)}
    assert _endpoint_call(juju, a1, 'get_rejection') == {'csr-sha256': digest,
                                                         'reason': 'name not yours'}
    assert len(_endpoint_call(juju, a0, 'get_rejection', 'tls/7')['reason']) == 200
    assert _endpoint_call(juju, a0, 'departed_units') == ['tls/7']
    _endpoint_call(juju, a0, 'update_rejections', {}, ['tls/7'])
    assert sorted(_endpoint_call(juju, a0, 'rejected_csrs')) == [a1]
    _endpoint_call(juju, a0, 'set_cert', a1, fake_cert(fake_csr(a1)))
    assert 'rejections' not in juju.app_bag(rid)
    assert not juju.flag_set(a0, SIGN)
    assert _endpoint_call(juju, a1, 'get_rejection') is None


# ---------------------------------------------------------------- claims and maps


def test_claims_local_and_remote(tmp_path):
    juju, rid, (a0, a1) = _model(tmp_path)
    _endpoint_call(juju, a1, 'publish_claims', ['b.example', 'a.example', 'a.example'],
                   ['192.0.2.7', '10.0.0.11'])
    juju.settle()  # a0's relation cache has a1's new bag after its relation-changed
    assert json.loads(juju.unit_bag(rid, a1)['tls-hostnames']) == ['a.example', 'b.example']
    expected = {'hostnames': ['a.example', 'b.example'],
                'addresses': ['10.0.0.11', '192.0.2.7']}
    assert _endpoint_call(juju, a0, 'unit_claims', a1) == expected
    assert _endpoint_call(juju, a1, 'unit_claims', a1) == expected
    assert _endpoint_call(juju, a0, 'unit_claims', a0) == {
        'hostnames': ['tls-0'], 'addresses': ['10.0.0.10']}
    assert _endpoint_call(juju, a0, 'unit_claims', 'tls/42') == {
        'hostnames': [], 'addresses': []}


def test_maps_and_identity(tmp_path):
    juju, rid, (a0, a1, a2) = _model(tmp_path, units=3)
    assert _endpoint_call(juju, a1, 'peer_units') == [a0, a2]
    assert _endpoint_call(juju, a1, 'get_csr_map') == {u: fake_csr(u) for u in (a0, a1, a2)}
    assert _endpoint_call(juju, a1, 'pending_csrs') == {}
    assert _endpoint_call(juju, a1, 'get_ca_bundle') == CA_BUNDLE
    assert _endpoint_call(juju, a1, 'get_signed_cert') == fake_cert(fake_csr(a1))
    assert _endpoint_call(juju, a1, 'signed_cert_is_current') is True
    assert _endpoint_call(juju, a1, 'own_csr') == fake_csr(a1)
    assert _endpoint_call(juju, a0, 'legacy_certificates') == {}  # no legacy peers here
    assert sorted(_endpoint_call(juju, a2, 'get_certificates')) == [a0, a1, a2]


# ---------------------------------------------------------------- bad data


BAD_APP_DATA = [
    {'certificates': 'not json {', 'signed-csrs': '[1, 2]'},
    {'certificates': '["a list"]', 'signed-csrs': '{"tls/1": 5}'},
    {'certificates': json.dumps({'tls/1': 'MIIC not pem at all', 'tls/0': 7})},
    {'ca-bundle': 'MIICgarbage'},
    {'certificates': json.dumps({'tls/1': '-----BEGIN CERTIFICATE-----\nMIIC' + 'A' * 70000
                                 + '\n-----END CERTIFICATE-----\n'})},
]


@pytest.mark.parametrize('bad', BAD_APP_DATA)
def test_bad_app_data_is_ignored_and_logged(tmp_path, bad):
    juju, rid, (a0, a1) = _model(tmp_path, handlers=False, enter=False)
    juju.enter(rid, a0)
    juju.enter(rid, a1)
    juju.set_app_data(rid, **bad)
    juju.set_unit_data(rid, a1, csr=fake_csr(a1))
    juju.set_unit_data(rid, a0, **{'csr': 'MIIR junk, not a CSR', 'tls-hostnames': '{bad',
                                   'tls-addresses': '[1, "10.1.1.1"]'})
    for unit, hook in ((a1, 'certificates-relation-changed'), (a0, 'update-status')):
        run = juju.run_hook(unit, hook, rid=rid if unit == a1 else None,
                            remote_unit=a0 if unit == a1 else None)
        assert run.ok
        assert not juju.flag_set(a1, SIGNED)
        assert all('MII' not in m for _, m in run.logs), 'a PEM body reached the log'

    def check():
        tls = _tls()
        assert tls.get_signed_cert() is None or 'ca-bundle' in bad
        assert a0 not in tls.get_csr_map()
        assert tls.unit_claims(a0)['addresses'] == ['10.1.1.1', '10.0.0.10']
        if 'ca-bundle' in bad:
            assert tls.get_ca_bundle() is None

    run = juju.run_hook(a0, 'update-status', call=check)
    assert _warnings(run), run.logs
    assert all('MII' not in m for _, m in run.logs)


def test_bad_data_from_a_peer_does_not_block_the_others(tmp_path):
    juju, rid, (a0, a1, a2) = _model(tmp_path, units=3)
    juju.set_unit_data(rid, a2, csr='-----BEGIN CERTIFICATE REQUEST-----\nMIIRno end')
    run = juju.run_hook(a0, 'certificates-relation-changed', rid=rid, remote_unit=a2)
    assert run.ok and any(a2 in m and 'csr' in m for m in _warnings(run))
    juju.set_config(a1, serial=3)
    juju.run_hook(a1, 'config-changed')
    juju.settle()
    assert juju.flag_set(a1, SIGNED)
    assert _certs(juju, rid)[a1] == fake_cert(fake_csr(a1, 3))


def test_app_data_overwritten_cleanly_after_bad_json(tmp_path):
    juju, rid, (a0,) = _model(tmp_path, units=1, handlers=False, enter=False)
    juju.enter(rid, a0)
    juju.set_app_data(rid, certificates='not json {')
    _endpoint_call(juju, a0, 'set_csr', fake_csr(a0))
    _endpoint_call(juju, a0, 'set_cert', a0, fake_cert('x'))
    assert _certs(juju, rid) == {a0: fake_cert('x')}
    assert juju.flag_set(a0, SIGNED)


def test_a_legacy_certificate_with_openssl_text_before_the_pem_is_read(tmp_path):
    """easy-rsa's issued/*.crt (which the legacy layer published as is) starts with
    openssl's text dump; the interface takes the one PEM block out of it."""
    from charms.reactive import endpoint_from_name

    juju = FakeJuju(tmp_path)
    a0, a1 = juju.add_unit(), juju.add_unit()
    juju.set_leader(a0)
    rid = juju.add_peer_relation()
    juju.enter(rid, a0)
    juju.enter(rid, a1)
    juju.settle()
    pem = fake_cert(fake_csr(a1))
    dump = "Certificate:\n    Data:\n        Version: 3 (0x2)\n" + pem
    juju.set_unit_data(rid, a0, **{f"{a1}_signed_certificate": dump})
    run = juju.run_hook(a1, "update-status", call=lambda: endpoint_from_name(
        "certificates").legacy_certificates())
    assert run.result[a1].strip() == pem.strip()


def test_nothing_holding_a_private_key_is_ever_published(tmp_path):
    from charms.reactive import endpoint_from_name

    juju, rid, (a0, a1) = _model(tmp_path)
    leaked = fake_csr(a1) + "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI\n" \
                            "-----END PRIVATE KEY-----\n"
    run = juju.run_hook(a1, "update-status",
                        call=lambda: endpoint_from_name("certificates").set_csr(leaked))
    assert "PRIVATE KEY" not in json.dumps(run.relation_sets)
    assert juju.unit_bag(rid, a1)["csr"] == fake_csr(a1)
    assert any("refused to publish csr" in message for _, message in run.logs)


# ---------------------------------------------------------------- what a hook reads
# Juju runs relation-changed for a peer whenever its bag changed (after joined, always):
# a hook about peer X reads X's bag, this unit's own and the app bag, never the others'
# (worker/uniter/relation/resolver.go nextHookForRelation). The leader, which uses every
# peer's CSR and names, keeps them in unitdata and reads them all in other hooks only.


def _reading(juju, unit, hook, **kw):
    """Run ``hook`` on ``unit``; (the run, the owners of the bags it read with
    relation-get: unit names, or the app name for the app bag)."""
    run = juju.run_hook(unit, hook, **kw)
    return run, [owner for _rid, owner, _app in run.relation_reads()]


def test_a_non_leader_hook_about_one_peer_reads_only_that_peers_bag(tmp_path):
    juju, rid, names = _model(tmp_path, units=5)
    a2, a3 = names[2], names[3]
    _, read = _reading(juju, a2, 'certificates-relation-changed', rid=rid, remote_unit=a3)
    assert sorted(read) == sorted([a2, a3, juju.app])  # own, the peer's, the app bag
    _, read = _reading(juju, a2, 'certificates-relation-joined', rid=rid, remote_unit=a3)
    assert sorted(read) == sorted([a2, a3, juju.app])
    for hook in ('update-status', 'leader-settings-changed'):
        _, read = _reading(juju, a2, hook)
        assert sorted(read) == sorted([a2, juju.app]), hook
    _, read = _reading(juju, a2, 'certificates-relation-changed', rid=rid)  # app bag
    assert sorted(read) == sorted([a2, juju.app])


def test_a_non_leader_departed_hook_reads_only_the_departing_bag(tmp_path):
    """charms.reactive keeps a copy of the departing unit's bag (its departed-units list);
    no other peer's bag is read."""
    juju, rid, names = _model(tmp_path, units=4)
    a1, a3 = names[1], names[3]
    juju.leave(rid, a3, hooks=False)
    run, read = _reading(juju, a1, 'certificates-relation-departed', rid=rid,
                         remote_unit=a3, departing_unit=a3)
    assert run.ok and sorted(read) == sorted([a1, a3, juju.app])
    assert juju.flag_set(a1, 'endpoint.certificates.departed')


def test_a_non_leader_waiting_for_its_certificate_reads_no_other_peer(tmp_path):
    """Before its certificate arrives the unit looks for it under the legacy key too
    (a legacy leader's bag): in the hook about each peer, not in every hook."""
    juju, rid, names = _model(tmp_path, units=5, handlers=False, enter=False)
    for unit in names:
        juju.enter(rid, unit, hooks=False)
    a1, a3 = names[1], names[3]
    juju.run_hook(a1, 'certificates-relation-created', rid=rid)  # the first look
    _, read = _reading(juju, a1, 'certificates-relation-changed', rid=rid, remote_unit=a3)
    assert sorted(read) == sorted([a1, a3, juju.app])
    assert not juju.flag_set(a1, SIGNED)


def test_the_leader_reads_every_csr_in_its_hooks(tmp_path):
    juju, rid, names = _model(tmp_path, units=4)
    _, read = _reading(juju, names[0], 'update-status')
    assert sorted(read) == sorted(names + [juju.app])


def _claims_in(juju, unit, of, hook='certificates-relation-changed', **kw):
    """(the hostnames ``unit`` finds claimed by ``of`` in ``hook``, the bags it read)."""
    run, read = _reading(juju, unit, hook, call=lambda: _tls().unit_claims(of), **kw)
    return run.result['hostnames'], sorted(read)


def test_a_leader_peer_hook_reads_the_peers_bag_and_keeps_the_others(tmp_path):
    """The leader keeps every peer's bag in unitdata (TlsPeers._remote_bags): a peer hook
    reads only the bag it is about, since Juju runs one for every change of a peer's bag;
    any other hook (update-status) reads every bag again, which catches a change whose
    hook was skipped (``juju resolved`` without a retry)."""
    juju, rid, names = _model(tmp_path, units=4)
    a0, a1, a2 = names[:3]
    juju.set_unit_data(rid, a1, **{'tls-hostnames': json.dumps(['new.internal'])})
    claims, read = _claims_in(juju, a0, a1, rid=rid, remote_unit=a2)
    assert read == sorted([a0, a2, juju.app]) and 'new.internal' not in claims
    claims, read = _claims_in(juju, a0, a1, rid=rid, remote_unit=a1)  # the hook about a1
    assert read == sorted([a0, a1, juju.app]) and 'new.internal' in claims
    juju.set_unit_data(rid, a1, **{'tls-hostnames': json.dumps(['newer.internal'])})
    claims, read = _claims_in(juju, a0, a1, hook='update-status')
    assert read == sorted(names + [juju.app]) and claims == ['newer.internal']
    claims, _ = _claims_in(juju, a0, a1, rid=rid, remote_unit=a2)
    assert claims == ['newer.internal']  # kept from update-status


@pytest.mark.parametrize('record', ['garbage', {'relation': 'certificates:9', 'bags': {}},
                                    {'relation': 'certificates:0', 'bags': []},
                                    {'relation': 'certificates:0', 'bags': {'tls/1': 7}}])
def test_a_bad_record_of_kept_bags_is_read_again_in_full(tmp_path, record):
    juju, rid, names = _model(tmp_path, units=3)
    a0, a1, a2 = names
    assert rid == 'certificates:0'
    kv = juju.kv(a0)
    kv.set('tls.peers.bags', record)
    kv.flush()
    juju.set_unit_data(rid, a1, **{'tls-hostnames': json.dumps(['new.internal'])})
    claims, read = _claims_in(juju, a0, a1, rid=rid, remote_unit=a2)
    assert a1 in read and claims == ['new.internal']
    assert juju.kv(a0).get('tls.peers.bags')['bags'][a1]['tls-hostnames']


def test_garbage_inside_a_kept_bag_is_dropped_not_used(tmp_path):
    """The record is a file (hostile): values of the wrong type or keys the leader does
    not read are dropped when it is loaded; the hook does not fail."""
    juju, rid, (a0, a1, a2) = _model(tmp_path, units=3)
    kv = juju.kv(a0)
    record = kv.get('tls.peers.bags')
    record['bags'][a1] = {'tls-hostnames': 7, 'csr': ['x'], 'x': 'y'}
    kv.set('tls.peers.bags', record)
    kv.flush()
    claims, read = _claims_in(juju, a0, a1, rid=rid, remote_unit=a2)
    assert claims == [] and a1 not in read
    assert juju.kv(a0).get('tls.peers.bags')['bags'][a1] == {}
    claims, _ = _claims_in(juju, a0, a1, hook='update-status')
    assert claims  # the sweep reads the real bag again


def test_the_leader_keeps_only_the_keys_it_reads_each_cut_to_its_bound(tmp_path):
    """A peer bag may hold other layers' keys (secrets among them) and values of any size:
    the kept copy has only the keys the leader reads, each at most one character over the
    bound its reader applies, so the reader refuses it as it refuses the original."""
    juju, rid, (a0, a1, a2) = _model(tmp_path, units=3)
    juju.set_unit_data(rid, a1, **{'db-password': 's3cret', 'tls-hostnames': 'x' * 200_000})
    claims, _ = _claims_in(juju, a0, a1, rid=rid, remote_unit=a1)
    assert claims == []  # too long: ignored, in the hook that read it
    kept = juju.kv(a0).get('tls.peers.bags')['bags'][a1]
    assert 'db-password' not in kept and 'csr' in kept and 'private-address' in kept
    assert len(kept['tls-hostnames']) == 65537  # MAX_CLAIMS_CHARS + 1
    claims, read = _claims_in(juju, a0, a1, rid=rid, remote_unit=a2)
    assert a1 not in read and claims == []  # from the kept copy: ignored the same way


def test_a_unit_that_is_not_the_leader_keeps_no_bags(tmp_path):
    """A later leadership starts from a full read, never from bags kept long ago."""
    juju, rid, (a0, a1) = _model(tmp_path, units=2)
    assert juju.kv(a0).get('tls.peers.bags') is not None
    assert juju.kv(a1).get('tls.peers.bags') is None
    juju.set_leader(a1)
    juju.run_hook(a0, 'leader-settings-changed')
    assert juju.kv(a0).get('tls.peers.bags') is None


def test_a_departed_peer_leaves_the_leaders_record(tmp_path):
    juju, rid, names = _model(tmp_path, units=3)
    a0, a1, a2 = names
    assert a2 in juju.kv(a0).get('tls.peers.bags')['bags']
    juju.leave(rid, a2)
    juju.settle()
    bags = juju.kv(a0).get('tls.peers.bags')['bags']
    assert sorted(bags) == [a1]


def test_an_app_bag_only_change_keeps_the_record_and_reads_no_peer(tmp_path):
    juju, rid, names = _model(tmp_path, units=3)
    a0, a1, a2 = names
    claims, read = _claims_in(juju, a0, a1, rid=rid)  # no JUJU_REMOTE_UNIT
    assert set(read) <= {a0, juju.app}, read
    assert juju.kv(a0).get('tls.peers.bags')['bags'].keys() == {a1, a2}


def test_a_leadership_lost_and_regained_reads_every_bag_again(tmp_path):
    juju, rid, names = _model(tmp_path, units=3)
    a0, a1, a2 = names
    juju.set_leader(a1)
    juju.run_hook(a0, 'leader-settings-changed')
    assert juju.kv(a0).get('tls.peers.bags') is None
    juju.set_unit_data(rid, a2, **{'tls-hostnames': json.dumps(['moved.internal'])})
    juju.run_hook(a0, 'certificates-relation-changed', rid=rid, remote_unit=a2)
    juju.set_leader(a0)
    # first leader hook is about a1, not a2: a full read still sees a2's new names
    claims, read = _claims_in(juju, a0, a2, rid=rid, remote_unit=a1)
    assert claims == ['moved.internal'] and a2 in read


def test_a_peers_change_sets_the_changed_flags_in_the_hook_about_it(tmp_path):
    """charms.reactive's endpoint.<name>.changed[.<key>] flags: set in the hook about the
    peer whose bag changed (Juju runs one for every change), not in hooks about others."""
    juju, rid, (a0, a1, a2) = _model(tmp_path, units=3)
    flag = 'endpoint.certificates.changed.extra'
    juju.set_unit_data(rid, a1, extra='1')  # committed; its relation-changed comes next
    juju.run_hook(a2, 'certificates-relation-changed', rid=rid, remote_unit=a0)
    assert not juju.flag_set(a2, flag)
    juju.run_hook(a2, 'certificates-relation-changed', rid=rid, remote_unit=a1)
    assert juju.flag_set(a2, flag) and juju.flag_set(a2, 'endpoint.certificates.changed')
    juju.run_hook(a2, 'certificates-relation-changed', rid=rid, remote_unit=a1,
                  call=lambda: __import__('charms.reactive').reactive.clear_flag(flag))
    juju.run_hook(a2, 'certificates-relation-changed', rid=rid, remote_unit=a1)
    assert not juju.flag_set(a2, flag)  # unchanged data: not set again
    juju.set_unit_data(rid, a1, extra='2')
    juju.run_hook(a2, 'certificates-relation-changed', rid=rid, remote_unit=a1)
    assert juju.flag_set(a2, flag)


def test_the_first_look_reads_every_peer_and_sets_the_changed_flags(tmp_path):
    """Without the joined flag (a first join, or an upgrade from an interface that did not
    set it) every joined unit's bag is read once, as charms.reactive does."""
    juju, rid, (a0, a1, a2) = _model(tmp_path, units=3)
    juju.set_unit_data(rid, a1, extra='1')
    juju.run_hook(a2, 'update-status', call=lambda: __import__('charms.reactive').reactive
                  .clear_flag('endpoint.certificates.joined'))
    _, read = _reading(juju, a2, 'update-status')
    assert sorted(read) == sorted([a0, a1, a2, juju.app])
    assert juju.flag_set(a2, 'endpoint.certificates.changed.extra')
    assert juju.flag_set(a2, 'endpoint.certificates.joined')
    _, read = _reading(juju, a2, 'update-status')
    assert sorted(read) == sorted([a2, juju.app])


def _legacy_model(tmp_path):
    """tls/0 plays a legacy leader (certificates in its unit bag only), no handlers."""
    juju, rid, names = _model(tmp_path, units=3, handlers=False, enter=False)
    for unit in names:
        juju.enter(rid, unit, hooks=False)
    for unit in names[1:]:
        juju.set_unit_data(rid, unit, csr=fake_csr(unit))
        juju.run_hook(unit, 'certificates-relation-created', rid=rid)
    return juju, rid, names


def test_a_legacy_certificate_is_served_in_hooks_about_other_peers_too(tmp_path):
    juju, rid, (a0, a1, a2) = _legacy_model(tmp_path)
    csr = juju.unit_bag(rid, a1)['csr']
    cert = fake_cert(csr, 'legacy')
    juju.set_unit_data(rid, a0, **{a1 + '_signed_certificate': cert})
    juju.run_hook(a1, 'certificates-relation-changed', rid=rid, remote_unit=a0)
    assert juju.flag_set(a1, SIGNED)
    for kw in ({'rid': rid, 'remote_unit': a2}, {}):
        run, read = _reading(juju, a1, 'certificates-relation-changed' if kw
                             else 'update-status', **kw)
        assert a0 not in read
        assert SIGNED in run.flags
        assert _endpoint_call(juju, a1, 'get_signed_cert') == cert
    # withdrawn: seen in the hook about its owner
    juju.set_unit_data(rid, a0, **{a1 + '_signed_certificate': None})
    juju.run_hook(a1, 'certificates-relation-changed', rid=rid, remote_unit=a0)
    assert not juju.flag_set(a1, SIGNED)
    assert _endpoint_call(juju, a1, 'get_signed_cert') is None


def test_a_legacy_certificate_leaves_with_its_owner(tmp_path):
    juju, rid, (a0, a1, a2) = _legacy_model(tmp_path)
    cert = fake_cert(juju.unit_bag(rid, a1)['csr'], 'legacy')
    juju.set_unit_data(rid, a0, **{a1 + '_signed_certificate': cert})
    juju.run_hook(a1, 'certificates-relation-changed', rid=rid, remote_unit=a0)
    assert juju.flag_set(a1, SIGNED)
    juju.leave(rid, a0)
    assert not juju.flag_set(a1, SIGNED)
    assert _endpoint_call(juju, a1, 'get_signed_cert') is None


def test_after_an_upgrade_the_first_hook_finds_a_legacy_certificate(tmp_path):
    """A unit upgraded from a version that kept no record reads every bag once."""
    juju, rid, (a0, a1, a2) = _legacy_model(tmp_path)
    cert = fake_cert(juju.unit_bag(rid, a1)['csr'], 'legacy')
    juju.set_unit_data(rid, a0, **{a1 + '_signed_certificate': cert})
    juju.kv(a1).unset('tls.peers.legacy-offers')
    juju.kv(a1).flush()
    _, read = _reading(juju, a1, 'upgrade-charm')
    assert a0 in read and a2 in read
    assert juju.flag_set(a1, SIGNED)


def test_the_record_of_legacy_certificates_follows_while_the_app_bag_serves(tmp_path):
    """A peer's legacy offer withdrawn while the app bag served this unit is not used
    once the app bag stops serving it."""
    juju, rid, (a0, a1, a2) = _legacy_model(tmp_path)
    csr = juju.unit_bag(rid, a1)['csr']
    juju.set_unit_data(rid, a2, **{a1 + '_signed_certificate': fake_cert(csr, 'old')})
    juju.run_hook(a1, 'certificates-relation-changed', rid=rid, remote_unit=a2)
    juju.set_app_data(rid, certificates=json.dumps({a1: fake_cert(csr, 'new')}))
    juju.run_hook(a1, 'certificates-relation-changed', rid=rid)
    juju.set_unit_data(rid, a2, **{a1 + '_signed_certificate': None})
    juju.run_hook(a1, 'certificates-relation-changed', rid=rid, remote_unit=a2)
    juju.set_app_data(rid, certificates=None)
    juju.run_hook(a1, 'certificates-relation-changed', rid=rid)
    assert _endpoint_call(juju, a1, 'get_signed_cert') is None


# ---------------------------------------------------------------- flag reads


def _flags():
    from charms.reactive import get_flags

    return sorted(get_flags())


def _flag_writes_in_startup(monkeypatch):
    """Patch unitdata so each set_flag (``update`` of ``reactive.states.``) and clear_flag
    (``unset`` of one) made inside the peer interface's start-up (``_manage_flags`` of
    peers.py on the stack) is recorded; returns the record."""
    import sys

    from charmhelpers.core import unitdata

    writes = []

    def in_startup():
        frame = sys._getframe(2)
        while frame is not None:
            code = frame.f_code
            if code.co_name == '_manage_flags' and code.co_filename.endswith('peers.py'):
                return True
            frame = frame.f_back
        return False

    real_update, real_unset = unitdata.Storage.update, unitdata.Storage.unset

    def update(self, mapping, prefix=''):
        if prefix == 'reactive.states.' and in_startup():
            writes.extend(('set', flag) for flag in mapping)
        return real_update(self, mapping, prefix)

    def unset(self, key):
        if key.startswith('reactive.states.') and in_startup():
            writes.append(('clear', key[len('reactive.states.'):]))
        return real_unset(self, key)

    monkeypatch.setattr(unitdata.Storage, 'update', update)
    monkeypatch.setattr(unitdata.Storage, 'unset', unset)
    return writes


@pytest.mark.parametrize('who', ['leader', 'non-leader'])
def test_a_quiet_start_up_sets_and_clears_no_flag(tmp_path, monkeypatch, who):
    """In a hook where nothing changed, the start-up leaves every flag as it is without
    a set_flag or clear_flag call: each reads every flag from unitdata (charms.reactive),
    so a quiet hook reads them once instead."""
    juju, rid, (a0, a1) = _model(tmp_path)
    unit = a0 if who == 'leader' else a1
    juju.run_hook(unit, 'update-status')
    before = juju.run_hook(unit, 'update-status', call=_flags).result
    writes = _flag_writes_in_startup(monkeypatch)
    after = juju.run_hook(unit, 'update-status', call=_flags).result
    assert after == before
    assert SIGNED in after  # the start-up did recompute the flags: they are there
    assert writes == []
