"""interface-tls-certificates (requires) on the real charms.reactive, in the in-memory Juju:
flags, leader-only writes, refusal of key material, and hostile provider data.

The provider's app bag here is written by hand (shapes the real provider never writes);
tests/test_root_ca_charm.py runs the real provider library instead.
"""
import ast
import json
import tempfile

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from interface_fixtures.pem import fake_cert, fake_csr
from tlscerts_harness import (
    ENDPOINT,
    INTERFACE,
    PROVIDER_APP,
    call,
    deploy,
    flag,
    key_pem,
    make_key,
    provider_writes,
    warnings,
)

AVAILABLE, REVOKED, ERROR, BROKEN = (flag("certificate.available"),
                                     flag("certificate.revoked"), flag("request.error"),
                                     flag("broken"))
CSR = fake_csr("tls/0")
OTHER_CSR = fake_csr("someone-else")
CERT, CA = fake_cert(CSR), fake_cert("root", issuer="root")


def requires():
    """The module under test, imported as in a built charm (by file, like the harness)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("tlscerts_requires",
                                                  INTERFACE / "requires.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def entry(csr=CSR, cert=CERT, ca=CA, chain=None, revoked=None):
    value = {"certificate_signing_request": csr, "certificate": cert, "ca": ca,
             "chain": [cert, ca] if chain is None else chain}
    if revoked is not None:
        value["revoked"] = revoked
    return value


def certificates(*entries):
    return json.dumps(list(entries))


def asked(tmp_path, units=1, csr=CSR, **kw):
    juju, rid, names = deploy(tmp_path, units=units)
    run = call(juju, names[0], lambda ep: ep.request(csr, **kw))
    assert run.ok and run.result is True
    return juju, rid, names


def app_writers(juju, rid):
    return {run.unit for run in juju.history for (r, owner, _) in run.relation_sets
            if r == rid and owner == juju.app}


# ---------------------------------------------------------------- writes


def test_the_leader_writes_an_app_scope_ca_request_in_the_library_format(tmp_path):
    juju, rid, (u0,) = asked(tmp_path)
    assert json.loads(juju.app_bag(rid)["certificate_signing_requests"]) == [
        {"certificate_signing_request": CSR.strip(), "ca": True}]
    assert "certificate_signing_requests" not in juju.unit_bag(rid, u0)
    # the same request again writes nothing (no relation-set: the provider is not woken)
    run = call(juju, u0, lambda ep: ep.request(CSR))
    assert run.result is False and not run.relation_sets


def test_only_the_leader_writes_app_data(tmp_path):
    juju, rid, names = deploy(tmp_path, units=2)
    run = call(juju, names[1], lambda ep: ep.request(CSR))
    assert run.ok and run.result is False
    assert any("only the leader" in m for m in warnings(run))
    assert app_writers(juju, rid) == set()
    # a unit-scope request is the unit's own: any unit writes it
    run = call(juju, names[1], lambda ep: ep.request(CSR, ca=False, scope="unit"))
    assert run.result is True
    assert json.loads(juju.unit_bag(rid, names[1])["certificate_signing_requests"]) == [
        {"certificate_signing_request": CSR.strip(), "ca": False}]
    # the non-leader's readers never touch the app bag (relation-get would be refused)
    run = call(juju, names[1], lambda ep: [r.scope for r in ep.requests()])
    assert run.ok and run.result == ["unit"]


def test_a_request_for_the_same_csr_is_replaced_and_withdraw_deletes_the_key(tmp_path):
    juju, rid, (u0,) = asked(tmp_path)
    call(juju, u0, lambda ep: ep.request(OTHER_CSR))
    call(juju, u0, lambda ep: ep.request(CSR.replace("\n", "\r\n"), ca=False))
    listed = json.loads(juju.app_bag(rid)["certificate_signing_requests"])
    assert [(e["certificate_signing_request"], e["ca"]) for e in listed] == [
        (OTHER_CSR.strip(), True), (CSR.replace("\n", "\r\n").strip(), False)]
    assert call(juju, u0, lambda ep: ep.withdraw(CSR)).result is True
    assert call(juju, u0, lambda ep: ep.withdraw(CSR)).result is False
    assert call(juju, u0, lambda ep: ep.withdraw(OTHER_CSR)).result is True
    assert "certificate_signing_requests" not in juju.app_bag(rid)


@pytest.mark.parametrize("value", [
    None, "", "not a pem", 42, CSR + CSR, CERT, "x" * 100_000,
    CSR.replace("CERTIFICATE REQUEST", "PRIVATE KEY"),
])
def test_a_value_that_is_not_one_csr_is_refused(tmp_path, value):
    juju, rid, (u0,) = deploy(tmp_path)
    run = call(juju, u0, lambda ep: ep.request(value))
    assert run.ok and run.result is False and not run.relation_sets


def test_a_private_key_is_never_published_nor_logged(tmp_path):
    juju, rid, (u0,) = deploy(tmp_path)
    pem = key_pem(make_key())
    body = pem.splitlines()[1]
    for value in (pem, CSR + pem, pem + CSR):
        run = call(juju, u0, lambda ep, v=value: ep.request(v))
        assert run.ok and run.result is False and not run.relation_sets
        assert any(level == "ERROR" and "private key" in m for level, m in run.logs)
        assert not any(body in m for _, m in run.logs)
    # a provider echoing a key back: never in what we read, never in a log line
    run = provider_writes(juju, rid, u0, certificates=certificates(entry(cert=pem)),
                          request_errors=json.dumps([{"csr": CSR, "error": {
                              "code": 999, "name": "OTHER", "message": pem}}]))
    assert run.ok and not any(body in m for _, m in run.logs)
    got = call(juju, u0, lambda ep: (ep.provider_certificates(),
                                     ep.request_error_for(CSR))).result
    assert got[0] == [] and got[1].message == ""


def test_garbage_in_our_own_bag_is_replaced(tmp_path):
    juju, rid, (u0,) = deploy(tmp_path)
    juju.set_app_data(rid, certificate_signing_requests="[" * 100_000)
    run = call(juju, u0, lambda ep: ep.request(CSR))
    assert run.ok and run.result is True
    assert json.loads(juju.app_bag(rid)["certificate_signing_requests"]) == [
        {"certificate_signing_request": CSR.strip(), "ca": True}]


# ---------------------------------------------------------------- flags and readers


def test_flags_follow_the_provider_answer(tmp_path):
    juju, rid, (u0,) = asked(tmp_path)
    assert juju.flag_set(u0, flag("joined"))
    assert not {AVAILABLE, REVOKED, ERROR, flag("changed")} & set(juju.flags(u0))
    # an answer for someone else's CSR: changed, but nothing for us
    provider_writes(juju, rid, u0, certificates=certificates(entry(csr=OTHER_CSR)))
    assert juju.flag_set(u0, flag("changed.certificates"))
    assert not juju.flag_set(u0, flag("changed.request_errors"))
    assert not juju.flag_set(u0, AVAILABLE)
    provider_writes(juju, rid, u0, certificates=certificates(entry(csr=OTHER_CSR), entry()))
    assert juju.flag_set(u0, AVAILABLE) and not juju.flag_set(u0, REVOKED)
    got = call(juju, u0, lambda ep: ep.certificate_for(CSR)).result
    assert (got.certificate, got.ca, got.chain, got.revoked) == (CERT, CA, (CERT, CA), False)
    provider_writes(juju, rid, u0, certificates=certificates(entry(revoked=True)))
    assert juju.flag_set(u0, REVOKED) and not juju.flag_set(u0, AVAILABLE)
    provider_writes(juju, rid, u0, certificates=None, request_errors=json.dumps(
        [{"csr": CSR, "error": {"code": 102, "name": "domain_not_allowed", "message": "no"}}]))
    assert juju.flag_set(u0, ERROR) and not {AVAILABLE, REVOKED} & set(juju.flags(u0))
    assert juju.flag_set(u0, flag("changed.request_errors"))
    # flags are recomputed in hooks of other endpoints too (nothing else changed)
    juju.run_hook(u0, "update-status")
    assert juju.flag_set(u0, ERROR)
    # our request withdrawn: the error is someone else's now
    call(juju, u0, lambda ep: ep.withdraw(CSR))
    assert not juju.flag_set(u0, ERROR)


def test_changed_is_set_only_when_the_provider_data_changes(tmp_path):
    from charms.reactive import clear_flag

    juju, rid, (u0,) = asked(tmp_path)
    body = certificates(entry())
    provider_writes(juju, rid, u0, certificates=body)
    assert juju.flag_set(u0, flag("changed.certificates"))
    call(juju, u0, lambda ep: [clear_flag(flag(n)) for n in
                               ("changed", "changed.certificates")])
    juju.run_hook(u0, "update-status")
    provider_writes(juju, rid, u0, certificates=body)  # the same text again
    assert not juju.flag_set(u0, flag("changed"))
    provider_writes(juju, rid, u0, certificates=certificates(entry(revoked=False)))
    assert juju.flag_set(u0, flag("changed")) and juju.flag_set(u0, AVAILABLE)


def test_with_two_providers_the_lowest_relation_id_is_used(tmp_path):
    juju, rid, (u0,) = deploy(tmp_path)
    rid2 = juju.add_relation(ENDPOINT, ["other-ca/0"])
    juju.enter(rid2, u0)
    run = call(juju, u0, lambda ep: ep.request(CSR))
    assert run.result is True and any("2 relations" in m for m in warnings(run))
    assert "certificate_signing_requests" in juju.app_bag(rid)
    assert "certificate_signing_requests" not in juju.app_bag(rid2)
    juju.set_app_data(rid2, app="other-ca", certificates=certificates(entry()))
    juju.run_hook(u0, "update-status")
    assert not juju.flag_set(u0, AVAILABLE)


@pytest.mark.parametrize("raw, expected", [
    # the library: csr, an error object, upper-case name
    ({"csr": CSR, "error": {"code": 101, "name": "IP_NOT_ALLOWED", "message": "m"}},
     (101, "IP_NOT_ALLOWED", "m", None)),
    # the spec's key for the CSR, a lower-case name, no code
    ({"certificate_signing_request": CSR, "error": {"name": "wildcard_not_allowed",
                                                   "message": "m", "reason": "r"}},
     (103, "WILDCARD_NOT_ALLOWED", "m", "r")),
    # flattened, code as a string, no name; control characters in the message
    ({"csr": CSR, "code": "201", "message": "down\nnow\x1b[31m"},
     (201, "SERVER_NOT_AVAILABLE", "down now [31m", None)),
    # unknown code and a name that is no identifier
    ({"csr": CSR, "error": {"code": 4242, "name": "a b; c", "message": 7}},
     (4242, None, "", None)),
    ({"csr": CSR, "error": {"code": True, "name": "x" * 65, "message": "m" * 1000}},
     (None, None, "m" * 200, None)),
])
def test_request_errors_are_read_tolerantly(raw, expected):
    error, problem = requires().parse_request_error(raw)
    assert problem is None
    assert (error.code, error.name, error.message, error.reason) == expected


@pytest.mark.parametrize("bad", [
    entry(revoked="true"), entry(revoked=1), entry(chain="x"), entry(chain=[CERT] * 17),
    entry(chain=[CERT, "junk"]), entry(chain=[CERT + CA]), entry(cert=CERT + CA),
    entry(cert=None), entry(ca=True), entry(csr=None), entry(csr=CERT), [entry()], "x",
])
def test_a_badly_shaped_certificate_entry_is_ignored_with_a_warning(tmp_path, bad):
    juju, rid, (u0,) = asked(tmp_path)
    run = provider_writes(juju, rid, u0, certificates=certificates(bad))
    assert run.ok and not juju.flag_set(u0, AVAILABLE) and not juju.flag_set(u0, REVOKED)
    assert any(PROVIDER_APP in m and "certificates" in m for m in warnings(run))
    assert all(len(m) < 300 for m in warnings(run))
    assert call(juju, u0, lambda ep: ep.certificate_for(CSR)).result is None


@pytest.mark.parametrize("raw", ["[" * 100_000, "{" * 10, "x" * (16 * 1024 * 1024 + 1),
                                 '{"a": 1}', "null", "true", '"text"'])
def test_hostile_provider_lists_never_fail_a_hook(tmp_path, raw):
    juju, rid, (u0,) = asked(tmp_path)
    run = provider_writes(juju, rid, u0, certificates=raw, request_errors=raw)
    assert run.ok and not {AVAILABLE, REVOKED, ERROR} & set(juju.flags(u0))
    assert all(len(m) < 300 for m in warnings(run))


def test_the_provider_going_away_sets_broken_until_a_new_relation(tmp_path):
    juju, rid, (u0,) = asked(tmp_path)
    provider_writes(juju, rid, u0, certificates=certificates(entry()))
    assert juju.flag_set(u0, AVAILABLE)
    juju.remove_relation(rid)
    assert juju.flag_set(u0, BROKEN)
    assert not {AVAILABLE, REVOKED, ERROR} & set(juju.flags(u0))
    juju.run_hook(u0, "update-status")  # the relation is gone now
    assert juju.flag_set(u0, BROKEN) and not juju.flag_set(u0, flag("joined"))
    assert not {AVAILABLE, REVOKED, ERROR} & set(juju.flags(u0))
    rid2 = juju.add_relation(ENDPOINT, [f"{PROVIDER_APP}/0"])
    juju.enter(rid2, u0)
    assert not juju.flag_set(u0, BROKEN) and juju.flag_set(u0, flag("joined"))


def test_before_a_provider_unit_joins_nothing_is_read_from_our_own_app(tmp_path):
    """relation-created, no remote unit yet: charms.reactive would name our own app as
    the remote one; the reader uses JUJU_REMOTE_APP and our app bag is never taken for
    the provider's."""
    from reactive_harness import FakeJuju
    from tlscerts_harness import METADATA

    juju = FakeJuju(tmp_path, metadata=METADATA, interfaces={"tls-certificates": INTERFACE})
    u0 = juju.add_unit()
    juju.set_leader(u0)
    rid = juju.add_relation(ENDPOINT, [f"{PROVIDER_APP}/0"])
    juju.enter(rid, u0, hooks=False)
    juju.set_app_data(rid, certificates=certificates(entry()))  # in OUR app bag
    run = call(juju, u0, lambda ep: (ep.provider_app, ep.provider_certificates()),
               hook=f"{ENDPOINT}-relation-created", rid=rid)
    assert run.ok and run.result == (PROVIDER_APP, [])


def test_no_crypto_import_in_the_interface():
    tree = ast.parse((INTERFACE / "requires.py").read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert not imported & {"cryptography", "OpenSSL", "ops", "pydantic"}


# ---------------------------------------------------------------- fuzzing

PEMS = st.sampled_from([CSR, CERT, CA, OTHER_CSR, "", "-----BEGIN CERTIFICATE-----", "x"])
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=20)
    | PEMS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["certificate_signing_request", "csr", "certificate", "ca", "chain",
                         "revoked", "error", "code", "name", "message", "reason", "x"]),
        inner, max_size=6),
    max_leaves=25)
RAW = (st.builds(json.dumps, st.lists(JSONISH, max_size=5)) | st.builds(json.dumps, JSONISH)
       | st.text(max_size=50) | st.none())


@pytest.fixture(scope="module")
def fuzz_model():
    with tempfile.TemporaryDirectory() as tmp:
        juju, rid, names = deploy(tmp, units=2)
        call(juju, names[0], lambda ep: ep.request(CSR))
        call(juju, names[1], lambda ep: ep.request(OTHER_CSR, ca=False, scope="unit"))
        yield juju, rid, names


@hsettings(max_examples=60, deadline=None, database=None,
           suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(certs=RAW, errors=RAW, unit=st.sampled_from([0, 1]))
def test_fuzzed_provider_data_never_fails_a_hook(fuzz_model, certs, errors, unit):
    juju, rid, names = fuzz_model
    run = provider_writes(juju, rid, names[unit], certificates=certs, request_errors=errors)
    assert run.ok, run.traceback
    run = call(juju, names[unit], lambda ep: (ep.certificate_for(CSR),
                                              ep.request_error_for(OTHER_CSR),
                                              ep.provider_certificates(), ep.request_errors()))
    assert run.ok, run.traceback
    issued, error, every, errors_read = run.result
    for cert in every + ([issued] if issued else []):
        assert isinstance(cert.revoked, bool) and isinstance(cert.chain, tuple)
        assert all(isinstance(p, str) and "PRIVATE KEY" not in p
                   for p in (cert.certificate, cert.ca) + cert.chain)
    for err in errors_read + ([error] if error else []):
        assert isinstance(err.message, str) and len(err.message) <= 200
        assert err.code is None or isinstance(err.code, int)
    assert all(len(m) < 300 for m in warnings(run))


# ---------------------------------------------------------------- one implementation


def test_the_harness_answers_hook_tools_with_jujurules_run_tool(tmp_path, capsys):
    """Juju's rules are written once (tests/jujurules): in a harness hook charmhelpers'
    own relation_get runs, and the tool it calls is jujurules.tools.run_tool, the model's.
    A non-leader reading its own application's bag in a relation with another application
    is refused (apiserver/facades/agent/uniter/uniter.go readLocalApplicationSettings):
    the same exit code and stderr as run_tool gives on a state built the model's way; and
    FakeJuju keeps no hook-tool function of its own."""
    import subprocess

    from charmhelpers.core import hookenv
    from jujurules.state import new_relation, new_state, new_unit, open_context
    from jujurules.tools import Call, run_tool
    from reactive_harness import FakeJuju

    juju, rid, (_a0, a1) = deploy(tmp_path, units=2)

    def read_own_app_bag(_endpoint):
        try:
            hookenv.relation_get(app='tls', rid=rid)
        except subprocess.CalledProcessError as exc:
            return exc.returncode
        return 0

    capsys.readouterr()
    run = call(juju, a1, read_own_app_bag)
    harness_err = capsys.readouterr().err
    st = new_state('tls', 'uuid', '3.6.0', relations={'0': new_relation(
        ENDPOINT, 'tls-certificates', {'tls': ENDPOINT, PROVIDER_APP: ENDPOINT},
        peer=False)})
    st['units']['tls/1'] = new_unit(1, '10.0.0.11', 'host')
    open_context(st, 'c', 'tls/1', 'tls', 'update-status')
    rc, out, err = run_tool(st, 'c', 'relation-get',
                            ['--format=json', '--app', '-r', rid, '-', 'tls'], Call())
    assert (rc, out, err) == (1, '', 'ERROR permission denied\n')
    assert run.result == rc and err in harness_err
    assert not [name for name in dir(FakeJuju) if name.startswith('_tool_')]
