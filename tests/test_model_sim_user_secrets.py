"""User secrets in the simulator: what ``juju add-secret``, ``update-secret``,
``grant-secret``, ``revoke-secret`` and ``remove-secret`` do, and what the units of an
application see of a model-owned secret (each rule cites the Juju source in
tests/jujurules/secrets.py and the conformance table of tests/model/README.md)."""
import json

import pytest
from jujurules.secrets import UserSecretError
from test_model_sim import model  # noqa: F401 - the fixture

ENV_DUMP = ('env | grep -E "^JUJU_(HOOK_NAME|SECRET_)" | sort '
            '> "$SIM_UNIT_ROOT/env-$JUJU_DISPATCH_PATH" 2>/dev/null || true\n'
            'mkdir -p "$SIM_UNIT_ROOT/hooks" && env | grep -E "^JUJU_(HOOK_NAME|SECRET_)" '
            '| sort > "$SIM_UNIT_ROOT/env-hooks-$JUJU_HOOK_NAME"\n')


def test_add_user_secret_makes_a_model_owned_secret_with_a_short_uri(model):  # noqa: F811
    m = model(units=1)
    uri = m.add_user_secret({"certificate": "c", "private-key": "k"}, label="ca")
    xid = uri[len("secret:"):]
    assert uri.startswith("secret:") and not uri.startswith("secret://")
    (secret,) = m.secrets().values()
    assert secret["owner"] == "model" and secret["owner_id"] == m.uuid
    assert secret["label"] == "ca" and secret["revision"] == 1
    assert secret["content"] == {"certificate": "c", "private-key": "k"}
    assert xid in m.secrets()


def test_add_user_secret_refuses_what_juju_refuses(model):  # noqa: F811
    m = model(units=0)
    with pytest.raises(UserSecretError, match='key "Cert" not valid'):
        m.add_user_secret({"Cert": "x"})
    with pytest.raises(UserSecretError, match='key "ab" not valid'):
        m.add_user_secret({"ab": "x"})  # three characters at least
    with pytest.raises(UserSecretError, match="too large: 8193 bytes"):
        m.add_user_secret({"big": "x" * 8193})
    with pytest.raises(UserSecretError, match="secret content too large"):
        m.add_user_secret({f"key{i}": "x" * 8000 for i in range(9)})
    with pytest.raises(UserSecretError, match="empty secret value"):
        m.add_user_secret({})
    m.add_user_secret({"key": "x"}, label="one")
    with pytest.raises(UserSecretError, match='secret with name "one" already exists'):
        m.add_user_secret({"key": "y"}, label="one")
    assert len(m.secrets()) == 1


def test_an_ungranted_application_gets_permission_denied(model):  # noqa: F811
    m = model(units=2)
    uri = m.add_user_secret({"token": "s3cr3t"}, label="tok")
    with m.hook_context("fake/1") as tool:
        denied = tool("secret-get", uri)
        assert (denied.returncode, denied.stderr) == (1, "ERROR permission denied\n")
        # the owner's label is the model's, not the unit's
        assert tool("secret-get", "--label", "tok").returncode == 1
    m.grant_user_secret(uri, "fake")
    with m.hook_context("fake/1") as tool:
        assert json.loads(tool("secret-get", uri, "--format=json").stdout) == {"token": "s3cr3t"}
        assert tool("secret-get", uri, "token").stdout == "s3cr3t\n"
    m.revoke_user_secret(uri, "fake")
    with m.hook_context("fake/1") as tool:
        denied = tool("secret-get", uri)
        assert (denied.returncode, denied.stderr) == (1, "ERROR permission denied\n")


def test_a_unit_does_not_manage_or_see_the_metadata_of_a_user_secret(model):  # noqa: F811
    m = model(units=1)
    uri = m.add_user_secret({"token": "a"})
    m.grant_user_secret(uri, "fake")
    xid = uri[len("secret:"):]
    with m.hook_context("fake/0") as tool:  # the leader, yet not an owner
        info = tool("secret-info-get", uri)
        assert (info.returncode, info.stderr) == (1, f'ERROR secret "{xid}" not found\n')
        assert tool("secret-ids", "--format=json").stdout == "null\n"
        for argv in (("secret-set", uri, "token=b"), ("secret-remove", uri),
                     ("secret-revoke", uri, "--app", "fake")):
            done = tool(*argv)
            assert (done.returncode, done.stderr) == (1, "ERROR permission denied\n"), argv
    assert m.secrets()[xid]["revision"] == 1


def test_readers_track_their_revision_and_get_secret_changed(model):  # noqa: F811
    m = model(on_hook=ENV_DUMP, units=2)
    uri = m.add_user_secret({"key": "v1"})
    xid = uri[len("secret:"):]
    m.grant_user_secret(uri, "fake")
    with m.hook_context("fake/0") as tool:
        assert tool("secret-get", uri, "key").stdout == "v1\n"
    assert m.update_user_secret(uri, {"key": "v1"}) == 1  # same content: no new revision
    assert m.pending() == {}
    assert m.update_user_secret(uri, {"key": "v2"}) == 2
    # only the unit that read it is told; fake/1 never read it
    assert m.pending() == {"fake/0": "secret-changed"}
    m.settle()
    env = (m.unit("fake/0").root / "env-hooks-secret-changed").read_text().splitlines()
    assert env == ["JUJU_HOOK_NAME=secret-changed", f"JUJU_SECRET_ID=secret:{xid}",
                   "JUJU_SECRET_LABEL="]
    with m.hook_context("fake/0") as tool:
        assert tool("secret-get", uri, "key").stdout == "v1\n"  # tracks revision 1
        assert tool("secret-get", uri, "key", "--peek").stdout == "v2\n"
        assert tool("secret-get", uri, "key").stdout == "v1\n"
        assert tool("secret-get", uri, "key", "--refresh").stdout == "v2\n"
        assert tool("secret-get", uri, "key").stdout == "v2\n"
    with m.hook_context("fake/1") as tool:  # a first read: the latest
        assert tool("secret-get", uri, "key").stdout == "v2\n"
    m.update_user_secret(uri, {"key": "v3"})
    assert m.pending() == {"fake/0": "secret-changed", "fake/1": "secret-changed"}
    m.settle()
    # no secret-remove: the model owns it, no unit is told of obsolete revisions
    assert "secret-remove" not in m.hook_counts()
    assert sorted(m.secrets()[xid]["revisions"]) == [1, 2, 3]


def test_a_consumer_label_names_the_secret_in_its_hooks(model):  # noqa: F811
    m = model(on_hook=ENV_DUMP, units=1)
    uri = m.add_user_secret({"key": "v1"}, label="operator-name")
    m.grant_user_secret(uri, "fake")
    with m.hook_context("fake/0") as tool:
        assert tool("secret-get", uri, "--label", "mine", "key").stdout == "v1\n"
    with m.hook_context("fake/0") as tool:
        # by its consumer label alone (the first positional would be a URI)
        assert json.loads(tool("secret-get", "--label", "mine", "--format=json").stdout) \
            == {"key": "v1"}
    m.update_user_secret(uri, {"key": "v2"})
    m.settle()
    env = (m.unit("fake/0").root / "env-hooks-secret-changed").read_text().splitlines()
    assert "JUJU_SECRET_LABEL=mine" in env


def test_remove_user_secret_is_not_found_afterwards_and_runs_no_hook(model):  # noqa: F811
    m = model(units=1)
    uri = m.add_user_secret({"key": "v1"})
    xid = uri[len("secret:"):]
    m.grant_user_secret(uri, "fake")
    with m.hook_context("fake/0") as tool:
        tool("secret-get", uri)
    m.remove_user_secret(uri)
    assert m.pending() == {}
    with m.hook_context("fake/0") as tool:
        gone = tool("secret-get", uri)
        assert (gone.returncode, gone.stderr) == (1, f'ERROR secret "{xid}" not found\n')
    with pytest.raises(UserSecretError, match="not found"):
        m.update_user_secret(uri, {"key": "v2"})


def test_user_secret_commands_refuse_a_secret_the_model_does_not_own(model):  # noqa: F811
    m = model(units=1)
    with m.hook_context("fake/0") as tool:
        uri = tool("secret-add", "key=v1").stdout.strip()
    for call in (lambda: m.update_user_secret(uri, {"key": "v2"}),
                 lambda: m.grant_user_secret(uri, "fake"),
                 lambda: m.remove_user_secret(uri)):
        with pytest.raises(UserSecretError, match="permission denied"):
            call()


def test_a_secret_config_option_takes_a_uri_and_reads_as_that_string(tmp_path):
    from model import Model
    from test_model_sim import make_charm

    charm = make_charm(tmp_path / "charm")
    (charm / "config.yaml").write_text(
        "options:\n  ca: {type: secret, description: d}\n")
    m = Model(charm, tmp_path, first_leader="first")
    m.deploy(1)
    m.settle()
    uri = m.add_user_secret({"key": "v"})
    with pytest.raises(UserSecretError, match='invalid secret URI for option "ca"'):
        m.set_config({"ca": "not-a-uri"})
    m.set_config({"ca": uri})
    m.settle()
    with m.hook_context("fake/0") as tool:
        assert tool("config-get", "ca").stdout == f"{uri}\n"
    m.set_config({"ca": ""})  # cleared
