"""Upgrading a deployment of the legacy easy-rsa layer:tls to the built tls-demo charm, in
the simulated model (tests/model), then real mutual TLS between the units.

The legacy state comes first: the application is deployed with a stand-in for the legacy
charm (same metadata and config, no hooks), then the legacy layer's state is laid out as it
left it: easy-rsa trees made by the real easy-rsa in each unit's charm dir, the ``csr`` and
``<unit>_signed_certificate`` relation keys, unitdata ``tls.server.certificate``, leader
setting ``certificate_authority``. Then ``juju upgrade-charm`` to the real built charm.
"""
import pathlib
import shutil

import pytest
from charmhelpers.core import unitdata
from charms.layer.tls import legacy, pki
from legacy_pki import LegacyUnit, make_legacy_pki, unavailable_reason
from model import Model, build_charm, ensure_charm_venv
from model_checks import DEMO_LAYER, check_all, free_port, stop_services, unit_files

pytestmark = [pytest.mark.model, pytest.mark.slow,
              pytest.mark.skipif(unavailable_reason() is not None,
                                 reason=str(unavailable_reason()))]


def stand_in_for_the_legacy_charm(built: pathlib.Path, dest: pathlib.Path) -> pathlib.Path:
    """Same name, peer endpoint and config as the new charm; every hook missing (a
    missing hook succeeds), so nothing of the new charm runs before the upgrade."""
    dest.mkdir(parents=True)
    for name in ("metadata.yaml", "config.yaml"):
        shutil.copy(built / name, dest / name)
    return dest


def lay_out_legacy_state(model, state):
    for unit, values in state.relation_data().items():
        with model.hook_context(unit, relation="certificates") as tool:
            done = tool("relation-set", *[f"{k}={v}" for k, v in values.items()])
            assert done.returncode == 0, done.stderr
    with model.hook_context(state.leader) as tool:
        done = tool("leader-set", f"certificate_authority={state.ca_certificate}")
        assert done.returncode == 0, done.stderr
    model.settle()
    for name in model.unit_names:
        charm_dir = model.unit(name).charm_dir
        kv = unitdata.Storage(str(charm_dir / ".unit-state.db"))
        for key, value in state.unitdata(name).items():
            kv.set(key, value)
        for flag in state.flags(name):
            kv.set("reactive.states." + flag, None)
        kv.flush()
        kv.close()


def public_key(pem: str) -> str:
    if "PRIVATE KEY" in pem:
        return pki.public_key_fingerprint(pki.load_private_key(pem))
    return pki.public_key_fingerprint(
        pki.load_certificate(legacy.certificate_block(pem)).public_key())


def test_upgrade_from_the_legacy_layer_keeps_keys_and_ca(tmp_path):
    charm = build_charm(DEMO_LAYER)
    stand_in = stand_in_for_the_legacy_charm(charm, tmp_path / "legacy-charm")
    port = free_port()
    model = Model(stand_in, tmp_path / "model", seed=5, config={"echo_port": port},
                  venv=ensure_charm_venv(charm))
    try:
        model.deploy(3)
        model.settle()
        units = [LegacyUnit(n, model.unit(n).charm_dir, model.unit(n).address,
                            model.unit(n).hostname) for n in model.unit_names]
        state = make_legacy_pki(units, model.leader)
        lay_out_legacy_state(model, state)

        model.upgrade_charm(charm)
        # Juju (and the simulator) keep files the old charm made in the charm dir
        for name in model.unit_names:
            assert (model.unit(name).charm_dir / "easy-rsa" / "easyrsa3" / "pki").is_dir()
        stats = model.settle()
        result = check_all(model, port)
        assert len(result["matrix"]) == 9

        bundle = pki.load_certificates(model.app_data("certificates")["ca-bundle"])
        assert len(bundle) == 1, "the legacy CA was kept: no rollover"
        assert pki.public_key_fingerprint(bundle[0].public_key()) == public_key(
            state.ca_certificate)
        for name in model.unit_names:
            files = unit_files(model, name)
            assert public_key(files["key"].read_text()) == public_key(state.keys[name]), \
                f"{name} lost its legacy key"
            cert = pki.load_certificate(files["cert"].read_bytes())
            assert pki.authority_key_id(cert) == pki.subject_key_id(bundle[0])
        print(f"upgrade from the legacy layer settled in {stats.hooks} hooks")
    finally:
        stop_services(model)
