"""The in-memory Juju of reactive_harness with layer:tls built in, an in-memory secret
store, and helpers shared by the layer handler and lifecycle tests (fixtures in conftest)."""
import base64
import json
import os
import pathlib
import subprocess

import yaml
from charms.layer.tls import ca_store, pki, storage
from jujurules import secrets as _rules
from jujurules.commit import commit_context
from jujurules.secrets import apply_secret_op, new_secret_id
from jujurules.tools import Call, run_tool
from reactive_harness import FakeJuju

ROOT = pathlib.Path(__file__).resolve().parent.parent
LAYER_TLS = ROOT / "layer-tls"
PRIVATE_KEY_MARK = "PRIVATE KEY-----"


class FakeSecrets:
    """Juju 3's secrets for the harness: the hook tools the layer calls (secret-add, -set,
    -get, -info-get) answered by ``jujurules``' secret tools, the process model's rules
    (owner and leader checks, revision tracking, pending content seen only in the hook
    that made it), on a small state that commits only when the hook succeeds.

    Test-facing views: ``committed`` ({label: content} of the committed secrets; a test
    may plant or clear entries: the next hook sees them as new revisions), ``pending``
    ({label: content} this hook would commit; set it to {} to drop it), ``unreadable`` (a
    stderr line: every secret-get and secret-info-get fails with it), ``calls`` (tool
    names; ``argvs`` the command lines), ``revisions`` (secret-set calls). The operator's
    user secrets (``juju add-secret`` ...): ``add_user_secret``, ``update_user_secret``,
    ``grant_user_secret``, ``revoke_user_secret``, ``remove_user_secret`` (jujurules'
    rules, as in the model); they are not in ``committed``."""

    UUID = "00000000-0000-4000-8000-000000000000"  # the harness's JUJU_MODEL_UUID

    def __init__(self):
        self.committed = {}
        self.unreadable = None  # a stderr line: every secret-get fails with it
        self.calls = []
        self.argvs = []  # the full command lines
        self.revisions = 0
        self._st = {"app": "tls", "uuid": self.UUID, "juju_version": "3.6.0",
                    "leader": None, "secrets": {}, "relations": {}, "contexts": {}}
        self._ctx_id = None
        self._cwd = ""

    # ---------------------------------------------------------------- hook life

    def begin(self, app, unit, leader, cwd):
        """A hook starts on ``unit``: a fresh context; secrets planted in ``committed``
        by the test become the committed state."""
        st = self._st
        st["app"], st["leader"] = app, leader
        self._sync_committed()
        self._ctx_id = f"{unit}-{len(self.calls)}"
        self._cwd = cwd
        st["contexts"] = {self._ctx_id: {
            "unit": unit, "rid": None, "known_relations": [],
            "pending": {"unit": {}, "app": {}, "ports": [], "secrets": []}}}

    def commit(self):
        """The hook succeeded: its secret operations commit (jujurules.commit)."""
        ctx = self._st["contexts"].pop(self._ctx_id, None)
        if ctx is not None:
            st_units = {ctx["unit"]: {"ports": []}}
            self._st["units"] = st_units
            commit_context(self._st, ctx)
        self.committed = self._labelled(self._st["secrets"])

    @property
    def pending(self):
        ctx = self._st["contexts"].get(self._ctx_id)
        if ctx is None or not ctx["pending"]["secrets"]:
            return {}
        view = {k: json.loads(json.dumps(v)) for k, v in self._st["secrets"].items()}
        for op in ctx["pending"]["secrets"]:
            apply_secret_op(view, op)
        return {label: content for label, content in self._labelled(view).items()
                if self.committed.get(label) != content}

    @pending.setter
    def pending(self, value):
        ctx = self._st["contexts"].get(self._ctx_id)
        if ctx is not None and not value:
            ctx["pending"]["secrets"] = []

    # ---------------------------------------------------------------- the tools

    def run(self, argv):
        self.calls.append(argv[0])
        self.argvs.append(list(argv))
        if argv[0] not in ("secret-add", "secret-set", "secret-get", "secret-info-get"):
            raise AssertionError(f"unexpected hook tool {argv}")
        if self.unreadable and argv[0] in ("secret-get", "secret-info-get"):
            return subprocess.CompletedProcess(argv, 1, "", self.unreadable)
        if argv[0] == "secret-set":
            self.revisions += 1
        rc, out, err = run_tool(self._st, self._ctx_id, argv[0], argv[1:], Call(self._cwd))
        return subprocess.CompletedProcess(argv, rc, out, err)

    # ---------------------------------------------------------------- user secrets

    def add_user_secret(self, content, label=None):
        return _rules.add_user_secret(self._st, content, label)

    def update_user_secret(self, uri, content):
        return _rules.update_user_secret(self._st, uri, content)

    def grant_user_secret(self, uri, app):
        _rules.grant_user_secret(self._st, uri, app)

    def revoke_user_secret(self, uri, app):
        _rules.revoke_user_secret(self._st, uri, app)

    def remove_user_secret(self, uri):
        _rules.remove_user_secret(self._st, uri)

    def consumers(self, uri):
        """{unit: {"revision": tracked, ...}} of a secret."""
        return json.loads(json.dumps(self._st["secrets"][uri.split(":")[-1]]["consumers"]))

    # ---------------------------------------------------------------- internals

    @staticmethod
    def _labelled(secrets):
        return {s["label"]: {k: base64.b64decode(v).decode("utf-8") for k, v in
                             s["revisions"][str(s["revision"])].items()}
                for s in secrets.values() if s["label"] and s["owner"] != "model"}

    def _sync_committed(self):
        secrets = self._st["secrets"]
        have = self._labelled(secrets)
        by_label = {s["label"]: xid for xid, s in secrets.items() if s["owner"] != "model"}
        for label in set(have) - set(self.committed):
            secrets.pop(by_label[label])
        for label, content in self.committed.items():
            if have.get(label) == content:
                continue
            encoded = {k: base64.b64encode(str(v).encode("utf-8")).decode("ascii")
                       for k, v in content.items()}
            if label in by_label:
                apply_secret_op(secrets, {"op": "set", "id": by_label[label],
                                          "content": encoded})
            else:
                xid = new_secret_id(self._st)
                apply_secret_op(secrets, {"op": "add", "id": xid, "owner": "application",
                                          "owner_id": self._st["app"], "label": label,
                                          "content": encoded})


class TlsJuju(FakeJuju):
    """FakeJuju with the layer built in, secrets, and unit addresses 10.0.0.x."""

    def __init__(self, tmp_path, secrets, options=None, **kw):
        overlay = pathlib.Path(tmp_path) / "overlay-layer"
        overlay.mkdir()
        opts = {"certificate_path": "tls/server.crt", "key_path": "tls/server.key",
                "ca_path": "tls/ca.crt", "crl_path": "tls/ca.crl", "system_ca_dir": "trust",
                "system_ca_update_command": ""}
        opts.update(options or {})
        (overlay / "layer.yaml").write_text(yaml.safe_dump({"options": {"tls": opts}}))
        super().__init__(tmp_path / "model", layers=[overlay, LAYER_TLS],
                         fresh_modules=("charms.layer.options",), **kw)
        self.secrets = secrets
        self.secret_event = {}  # JUJU_SECRET_ID / JUJU_SECRET_LABEL of a secret hook

    def _environment(self, u, hook, rid, remote_unit, departing):
        env = super()._environment(u, hook, rid, remote_unit, departing)
        for key in ("JUJU_SECRET_ID", "JUJU_SECRET_LABEL"):
            os.environ.pop(key, None)
        if hook.startswith("secret-"):
            env.update(self.secret_event)
        return env

    @property
    def network_gets(self):
        """How many ``network-get`` calls the hooks made (the layer runs it itself)."""
        return self.tool_counts["network-get"]

    def _new_process(self, u):
        super()._new_process(u)
        self.secrets.begin(self.app, u.name, self.leader, str(u.charm_dir))
        from charms.layer import options

        options._CACHE.clear()

    def _commit(self, ctx):
        super()._commit(ctx)
        self.secrets.commit()


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


def installed_chain(juju, unit):
    """The intermediates this unit presents after its certificate (certificates)."""
    chain = juju.kv(unit).get(storage.INSTALLED_CHAIN)
    return pki.load_certificates(chain) if chain else []


def assert_unit_has_valid_certificate(juju, unit):
    cert_pem, bundle_pem = installed(juju, unit)
    assert cert_pem and bundle_pem, f"{unit} has no certificate"
    cert = pki.load_certificate(cert_pem)
    host = unit_host(unit)
    # what the unit presents: its certificate, then the intermediates (a fullchain file)
    presented = pki.load_certificates(charm_file(juju, unit, "tls/server.crt").read_text())
    assert presented[0] == cert, f"{unit}: the certificate file does not start with it"
    chain = presented[1:]
    pki.verify_certificate(cert, pki.load_certificates(bundle_pem), dns_name=host,
                           intermediates=chain)
    pki.verify_certificate(cert, pki.load_certificates(bundle_pem), purpose="client",
                           intermediates=chain)
    key = pki.load_private_key(juju.kv(unit).get(storage.INSTALLED_KEY))
    assert pki.certificate_matches_key(cert, key)
    return cert


def signing_ca(juju, rid, bundle=None):
    """The CA that signs the leaves under the first root of the published bundle: its
    intermediate (``ca-intermediates``), or the root itself when it is self-signed."""
    bag = juju.app_bag(rid)
    intermediates = bag.get("ca-intermediates")
    return pki.issuing_cas(pki.load_certificates(bundle or bag["ca-bundle"])[:1],
                           pki.load_certificates(intermediates) if intermediates else [])[0]


def secret_anchor(content):
    """The trust anchor of the CA kept in a CA secret's content: the root at the end of
    its chain, or the CA itself when it is self-signed (no chain)."""
    return pki.certificate_to_pem(pki.load_certificates(
        content.get(ca_store.SECRET_CHAIN_FIELD) or content["certificate"])[-1])


def secret_ca(content):
    """The signing CA of a CA secret's content (certificate, key and chain)."""
    chain = content.get(ca_store.SECRET_CHAIN_FIELD)
    return pki.CertificateAuthority(pki.load_certificate(content["certificate"]),
                                    pki.load_private_key(content["private-key"]),
                                    pki.load_certificates(chain) if chain else ())


def charm_file(juju, unit, relative):
    return juju.units[unit].charm_dir / relative


def all_published_text(juju, rid):
    rel = juju.relations[rid]
    return json.dumps([rel.unit_bags, rel.app_bags, juju.leader_settings])
