"""The in-memory Juju of reactive_harness with layer:tls built in, an in-memory secret
store, and helpers shared by the layer handler and lifecycle tests (fixtures in conftest)."""
import json
import os
import pathlib
import subprocess

import yaml
from charms.layer.tls import ca_store, pki, storage
from reactive_harness import FakeJuju

ROOT = pathlib.Path(__file__).resolve().parent.parent
LAYER_TLS = ROOT / "layer-tls"
PRIVATE_KEY_MARK = "PRIVATE KEY-----"


class FakeSecrets:
    """secret-add/-set/-get/-info-get by label, as Juju 3 does them: changes commit only
    when the hook succeeds, and within the hook the pending content is seen."""

    ID = "d0a1b2c3d4e5f6g7h8i9"

    def __init__(self):
        self.committed = {}
        self.pending = {}
        self.unreadable = None  # a stderr line: every secret-get fails with it
        self.calls = []
        self.revisions = 0

    def _content(self, label):
        return self.pending.get(label) or self.committed.get(label)

    def _read_file(self, argv):
        with open(argv[argv.index("--file") + 1]) as handle:
            return yaml.safe_load(handle)

    def run(self, argv):
        self.calls.append(argv[0])
        ok = subprocess.CompletedProcess
        label = ca_store.SECRET_LABEL
        if argv[0] in ("secret-get", "secret-info-get"):
            asked = argv[argv.index("--label") + 1]
            if self.unreadable:
                return ok(argv, 1, "", self.unreadable)
            if self._content(asked) is None:
                return ok(argv, 1, "", f'ERROR secret "{asked}" not found')
            if argv[0] == "secret-info-get":
                return ok(argv, 0, json.dumps({self.ID: {"label": asked, "revision": 1}}), "")
            return ok(argv, 0, json.dumps(self._content(asked)), "")
        if argv[0] == "secret-add":
            assert argv[argv.index("--label") + 1] == label and self._content(label) is None
            self.pending[label] = self._read_file(argv)
            return ok(argv, 0, f"secret:{self.ID}\n", "")
        if argv[0] == "secret-set":
            assert argv[1] == f"secret:{self.ID}" and self._content(label) is not None
            self.pending[label] = self._read_file(argv)
            self.revisions += 1
            return ok(argv, 0, "", "")
        raise AssertionError(f"unexpected hook tool {argv}")


class TlsJuju(FakeJuju):
    """FakeJuju with the layer built in, secrets, and unit addresses 10.0.0.x."""

    def __init__(self, tmp_path, secrets, options=None, **kw):
        overlay = pathlib.Path(tmp_path) / "overlay-layer"
        overlay.mkdir()
        opts = {"certificate_path": "tls/server.crt", "key_path": "tls/server.key",
                "ca_path": "tls/ca.crt", "system_ca_dir": "trust",
                "system_ca_update_command": ""}
        opts.update(options or {})
        (overlay / "layer.yaml").write_text(yaml.safe_dump({"options": {"tls": opts}}))
        super().__init__(tmp_path / "model", layers=[overlay, LAYER_TLS],
                         fresh_modules=("charms.layer.options",), **kw)
        self.secrets = secrets

    def _new_process(self, u):
        super()._new_process(u)
        self.secrets.pending = {}
        from charms.layer import options

        options._CACHE.clear()

    def _commit(self, ctx):
        super()._commit(ctx)
        self.secrets.committed.update(self.secrets.pending)
        self.secrets.pending = {}


def unit_host(unit):
    """A unit's FQDN in the harness: an LXD machine's (``<host>.lxd``, inside the default
    ``tls_permitted_names``)."""
    return "host-" + unit.replace("/", "-") + ".lxd"


def unit_host_names():
    """Each unit its own host name and FQDN (the tests run every unit in one process), as
    on an LXD machine: the single-label host name is outside ``tls_permitted_names`` and
    left out of the CSR, the FQDN is in."""
    fqdn = unit_host(os.environ["JUJU_UNIT_NAME"])
    return [fqdn.split(".")[0], fqdn]


def deploy(tmp_path, secrets, units=3, **kw):
    juju = TlsJuju(tmp_path, secrets, **kw)
    names = [juju.add_unit() for _ in range(units)]
    juju.set_leader(names[0])
    rid = juju.add_peer_relation()
    for unit in names:
        juju.run_hook(unit, "install")
        juju.enter(rid, unit)
        juju.run_hook(unit, "leader-elected" if unit == names[0] else "leader-settings-changed")
        juju.run_hook(unit, "config-changed")
        juju.run_hook(unit, "start")
    juju.settle()
    return juju, rid, names


def run_action(juju, unit, name, params=None, check=True):
    """A layer:tls action the way ``actions/<name>`` runs it on Juju (empty JUJU_HOOK_NAME,
    ``charms.layer.tls.actions.main``, no reactive dispatch)."""
    def entry():
        from charms.layer.tls import actions

        actions.main()

    return juju.run_action(unit, name, entry, params, check=check)


def installed(juju, unit):
    kv = juju.kv(unit)
    return kv.get(storage.INSTALLED_CERT), kv.get(storage.INSTALLED_BUNDLE)


def assert_unit_has_valid_certificate(juju, unit):
    cert_pem, bundle_pem = installed(juju, unit)
    assert cert_pem and bundle_pem, f"{unit} has no certificate"
    cert = pki.load_certificate(cert_pem)
    host = unit_host(unit)
    pki.verify_certificate(cert, pki.load_certificates(bundle_pem), dns_name=host)
    pki.verify_certificate(cert, pki.load_certificates(bundle_pem), purpose="client")
    key = pki.load_private_key(juju.kv(unit).get(storage.INSTALLED_KEY))
    assert pki.certificate_matches_key(cert, key)
    return cert


def charm_file(juju, unit, relative):
    return juju.units[unit].charm_dir / relative


def all_published_text(juju, rid):
    rel = juju.relations[rid]
    return json.dumps([rel.unit_bags, rel.app_bags, juju.leader_settings])
