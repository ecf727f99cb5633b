"""Where the leader keeps the CA: an application-owned Juju secret, else leader settings.

On Juju >= 3 the CA certificate and key live in an application-owned secret with a fixed
label, so any later leader finds them again by label. charmhelpers has no secret wrappers,
so the ``secret-*`` hook tools are called directly. On older Juju the key goes into leader
settings (readable by every unit of the application: the layer says so in its status).

The one rule that matters: never make a second CA while one exists or cannot be read. So a
failure to read the secret for any reason but "not found" raises CAUnavailable, and the
caller blocks instead of creating a CA. No key material in any message.
"""
from __future__ import annotations

import json
import os
import subprocess
import tempfile
from typing import List, NamedTuple, Optional

SECRET_LABEL = "layer-tls-ca"  # noqa: S105 - a label, not a secret
SECRET_CERT_FIELD = "certificate"  # noqa: S105
SECRET_KEY_FIELD = "private-key"  # noqa: S105
# the certificates above the signing CA, up to and including its root (issuer first);
# absent for a self-signed CA (every CA made before the root + intermediate shape)
SECRET_CHAIN_FIELD = "chain"  # noqa: S105
# where the CA came from: "tls_ca_secret" (the operator's CA), absent for a self-made one
SECRET_SOURCE_FIELD = "source"  # noqa: S105
LEADER_CA_CERT = "tls-ca-certificate"       # fallback (pre-secrets) store
LEADER_CA_KEY = "tls-ca-private-key"        # fallback (pre-secrets) store
LEADER_CA_CHAIN = "tls-ca-chain"            # fallback (pre-secrets) store
LEGACY_CA_SETTING = "certificate_authority"  # legacy leader setting: the CA certificate PEM


class CAUnavailable(Exception):
    """The CA exists (or may exist) but cannot be read: do not create another one."""


class CAMaterial(NamedTuple):
    certificate_pem: str
    private_key_pem: str
    chain_pem: str = ""  # the chain up to the root (public), "" for a self-signed CA
    source: str = ""  # "tls_ca_secret" for the operator's CA, "" for a self-made one

    def __repr__(self) -> str:  # never show the key
        return "CAMaterial(<certificate>, <private key>)"


def secrets_supported(juju_version: Optional[str] = None) -> bool:
    """Juju secrets exist from 3.0 on (JUJU_VERSION is set in every hook)."""
    version = juju_version if juju_version is not None else os.environ.get("JUJU_VERSION", "")
    try:
        return int(version.split(".")[0]) >= 3
    except ValueError:
        return False


def run_tool(argv: List[str]) -> subprocess.CompletedProcess:
    """Run a hook tool (the one seam tests replace: charmhelpers has no secret wrappers)."""
    return subprocess.run(argv, capture_output=True, text=True, timeout=120)


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0][:200]


def _load_from_secret() -> Optional[CAMaterial]:
    """The newest CA in the secret. ``--refresh``: every reader of a secret, the owner's
    leader included, gets the revision it read first until it asks for the latest
    (Juju's secretsmanager facade, getSecretContent), so without it the leader would go on
    reading the CA it replaced in a rollover; within the hook that stores a new CA, only
    ``--refresh`` (or ``--peek``) shows the pending content."""
    try:
        done = run_tool(["secret-get", "--label", SECRET_LABEL, "--refresh", "--format=json"])
    except (OSError, subprocess.SubprocessError) as exc:
        raise CAUnavailable(f"secret-get failed to run: {type(exc).__name__}") from None
    if done.returncode != 0:
        if "not found" in done.stderr:
            return None
        raise CAUnavailable(f"cannot read the CA secret: {_first_line(done.stderr)}")
    try:
        content = json.loads(done.stdout)
        chain = content.get(SECRET_CHAIN_FIELD) or ""
        source = content.get(SECRET_SOURCE_FIELD) or ""
        if not isinstance(chain, str) or not isinstance(source, str):
            raise TypeError
        return CAMaterial(content[SECRET_CERT_FIELD], content[SECRET_KEY_FIELD], chain,
                          source)
    except (ValueError, KeyError, TypeError, AttributeError):
        raise CAUnavailable("the CA secret does not hold a certificate and a key") from None


def _secret_uri() -> Optional[str]:
    """The URI of the CA secret (owner view), or None if there is none."""
    done = run_tool(["secret-info-get", "--label", SECRET_LABEL, "--format=json"])
    if done.returncode != 0:
        if "not found" in done.stderr:
            return None
        raise CAUnavailable(f"cannot look up the CA secret: {_first_line(done.stderr)}")
    try:
        (secret_id,) = json.loads(done.stdout)
    except (ValueError, TypeError):
        raise CAUnavailable("secret-info-get gave an unexpected answer") from None
    return secret_id if ":" in secret_id else f"secret:{secret_id}"


def _store_in_secret(material: CAMaterial) -> None:
    """Create the CA secret, or give the existing one a new revision (a CA rollover).
    The key goes through a 0600 temp file, never on a command line (visible in ps)."""
    uri = _secret_uri()
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as handle:
        content = {SECRET_CERT_FIELD: material.certificate_pem,
                   SECRET_KEY_FIELD: material.private_key_pem}
        if material.chain_pem:
            content[SECRET_CHAIN_FIELD] = material.chain_pem
        if material.source:
            content[SECRET_SOURCE_FIELD] = material.source
        json.dump(content, handle)  # JSON is YAML
        handle.flush()
        if uri is None:
            argv = ["secret-add", "--owner", "application", "--label", SECRET_LABEL,
                    "--description", "layer:tls certificate authority", "--file", handle.name]
        else:
            argv = ["secret-set", uri, "--file", handle.name]
        done = run_tool(argv)
    if done.returncode != 0:
        raise CAUnavailable(f"cannot store the CA secret: {_first_line(done.stderr)}")


def load_fallback(leader_get) -> Optional[CAMaterial]:
    """The CA kept in leader settings (Juju < 3, or before an upgrade to Juju 3)."""
    cert, key = leader_get(LEADER_CA_CERT), leader_get(LEADER_CA_KEY)
    if cert and key:
        return CAMaterial(cert, key, leader_get(LEADER_CA_CHAIN) or "")
    if cert or key:
        raise CAUnavailable("leader settings hold only half of the CA")
    return None


def load(leader_get) -> Optional[CAMaterial]:
    """The stored CA, or None when there is none. Raises CAUnavailable when it cannot be
    read. ``leader_get`` is charmhelpers' ``hookenv.leader_get`` (injected for tests)."""
    if secrets_supported():
        return _load_from_secret()
    return load_fallback(leader_get)


def forget_fallback(leader_get, leader_set) -> None:
    """Delete the leader-settings copy once the secret holds the CA (a later hook than the
    one that made the secret: leader-set is immediate, the secret commits at hook end)."""
    if leader_get(LEADER_CA_KEY) or leader_get(LEADER_CA_CERT):
        leader_set({LEADER_CA_KEY: None, LEADER_CA_CERT: None, LEADER_CA_CHAIN: None})


def store(material: CAMaterial, leader_set) -> None:
    """Keep a new CA (replacing the stored one in a rollover). With secrets the change
    commits when this hook succeeds, as the relation data that publishes the CA does, so a
    failed hook leaves neither behind."""
    if secrets_supported():
        _store_in_secret(material)
    else:
        leader_set({LEADER_CA_CERT: material.certificate_pem,
                    LEADER_CA_KEY: material.private_key_pem,
                    LEADER_CA_CHAIN: material.chain_pem or None})
