"""ca_request_store: the leader's CA request (the future CA key and its CSR) in its own
application secret (Juju >= 3) or in leader settings (Juju < 3); what it reads back is
checked, and nothing stored there ever shows the key."""
import json
import subprocess

import pytest
from charms.layer.tls import ca_request_store as store
from charms.layer.tls import ca_store

KEY = "-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----\n"
CSR = "-----BEGIN CERTIFICATE REQUEST-----\nMIHa\n-----END CERTIFICATE REQUEST-----\n"


class Tools:
    """secret-add/-set/-get/-info-get by label, as the layer calls them."""

    def __init__(self):
        self.secrets = {}  # label -> content
        self.argvs = []
        self.fail_get = None

    def run(self, argv):
        self.argvs.append(argv)
        label = argv[argv.index("--label") + 1] if "--label" in argv else None
        if argv[0] == "secret-get":
            if self.fail_get:
                return subprocess.CompletedProcess(argv, 1, "", self.fail_get)
            if label not in self.secrets:
                return subprocess.CompletedProcess(argv, 1, "", "ERROR secret not found")
            return subprocess.CompletedProcess(argv, 0, json.dumps(self.secrets[label]), "")
        if argv[0] == "secret-info-get":
            if label not in self.secrets:
                return subprocess.CompletedProcess(argv, 1, "", "ERROR secret not found")
            return subprocess.CompletedProcess(argv, 0, json.dumps([f"id-{label}"]), "")
        path = argv[argv.index("--file") + 1]
        with open(path, encoding="utf-8") as f:
            content = json.load(f)
        if argv[0] == "secret-add":
            self.secrets[label] = content
        else:  # secret-set id-<label>
            self.secrets[argv[1].split("id-", 1)[1]] = content
        return subprocess.CompletedProcess(argv, 0, "", "")


@pytest.fixture
def tools(monkeypatch):
    fake = Tools()
    monkeypatch.setattr(ca_store, "run_tool", fake.run)
    monkeypatch.setenv("JUJU_VERSION", "3.6.0")
    return fake


def test_a_request_round_trips_through_its_own_secret_and_the_key_is_never_argv(tools):
    assert store.load(lambda k: None) is None
    store.store(store.CARequest(KEY, CSR), None)
    assert store.load(lambda k: None) == store.CARequest(KEY, CSR, "")
    store.store(store.CARequest(KEY, CSR, CSR), None)  # a new revision of the same secret
    assert list(tools.secrets) == [store.SECRET_LABEL] != [ca_store.SECRET_LABEL]
    assert store.load(lambda k: None).previous_csr_pem == CSR
    assert all("PRIVATE KEY" not in " ".join(a) for a in tools.argvs)
    assert "private key" not in repr(store.load(lambda k: None)).replace("<private key>", "")


@pytest.mark.parametrize("content", [[], "x", {"csr": CSR}, {"private-key": KEY},
                                     {"private-key": KEY, "csr": 5},
                                     {"private-key": "x" * 70000, "csr": CSR}])
def test_a_broken_record_reads_as_none(tools, content):
    tools.secrets[store.SECRET_LABEL] = content
    assert store.load(lambda k: None) is None


def test_an_unreadable_secret_raises_ca_unavailable_without_the_key(tools):
    tools.secrets[store.SECRET_LABEL] = {"private-key": KEY, "csr": CSR}
    tools.fail_get = "ERROR permission denied"
    with pytest.raises(ca_store.CAUnavailable) as caught:
        store.load(lambda k: None)
    assert "permission denied" in str(caught.value) and "PRIVATE" not in str(caught.value)


def test_without_secrets_it_is_kept_in_leader_settings(monkeypatch):
    monkeypatch.setenv("JUJU_VERSION", "2.9.42")
    settings = {}
    store.store(store.CARequest(KEY, CSR, CSR), settings.update)
    assert settings == {"tls-ca-request-private-key": KEY, "tls-ca-request-csr": CSR,
                        "tls-ca-request-previous-csr": CSR}
    assert store.load(settings.get) == store.CARequest(KEY, CSR, CSR)
    store.store(store.CARequest(KEY, CSR), settings.update)  # previous cleared
    assert settings["tls-ca-request-previous-csr"] is None
    assert store.load(settings.get) == store.CARequest(KEY, CSR, "")
