"""Where the leader keeps its request to a CA provider: the key of the CA it asked for,
the CSR, and the CSR it replaces.

The key is the future CA key, so it is kept as the CA is (``ca_store``): in an
application-owned Juju secret with its own label (found again by any later leader), else
(Juju < 3) in leader settings. Never in relation data or a log. The secret commits when
the hook succeeds, as the relation data that publishes the CSR does, so a failed hook
leaves neither; leader-set is immediate, so with leader settings a failed hook may leave
a request that was never published (the next hook then makes a new one).
"""
from __future__ import annotations

import json
import subprocess
import tempfile
from typing import NamedTuple, Optional

from . import ca_store

SECRET_LABEL = "layer-tls-ca-request"  # noqa: S105 - a label, not a secret
KEY_FIELD = "private-key"
CSR_FIELD = "csr"
PREVIOUS_FIELD = "previous-csr"
LEADER_PREFIX = "tls-ca-request-"  # fallback: tls-ca-request-private-key, ...
MAX_FIELD_CHARS = 65536


class CARequest(NamedTuple):
    private_key_pem: str
    csr_pem: str
    previous_csr_pem: str = ""  # the request whose certificate is in use, until replaced

    def __repr__(self) -> str:  # never show the key
        return "CARequest(<private key>, <csr>)"


def _fields(request: CARequest) -> dict:
    fields = {KEY_FIELD: request.private_key_pem, CSR_FIELD: request.csr_pem}
    if request.previous_csr_pem:
        fields[PREVIOUS_FIELD] = request.previous_csr_pem
    return fields


def _from_fields(content) -> Optional[CARequest]:
    """A request from stored fields, or None when they do not hold one (treated as no
    request: a new one is made; nothing published depends on a broken record)."""
    if not isinstance(content, dict):
        return None
    key, csr = content.get(KEY_FIELD), content.get(CSR_FIELD)
    previous = content.get(PREVIOUS_FIELD) or ""
    for value in (key, csr, previous):
        if not isinstance(value, str) or len(value) > MAX_FIELD_CHARS:
            return None
    if not key or not csr:
        return None
    return CARequest(key, csr, previous)


def load(leader_get) -> Optional[CARequest]:
    """The stored request, or None. Raises ca_store.CAUnavailable when the secret exists
    but cannot be read (then nothing new is asked for)."""
    if not ca_store.secrets_supported():
        return _from_fields({f: leader_get(LEADER_PREFIX + f)
                             for f in (KEY_FIELD, CSR_FIELD, PREVIOUS_FIELD)})
    try:
        done = ca_store.run_tool(["secret-get", "--label", SECRET_LABEL, "--refresh",
                                  "--format=json"])
    except (OSError, subprocess.SubprocessError) as exc:
        raise ca_store.CAUnavailable(f"secret-get failed to run: {type(exc).__name__}") \
            from None
    if done.returncode != 0:
        if "not found" in done.stderr:
            return None
        raise ca_store.CAUnavailable("cannot read the CA request secret: "
                                     f"{ca_store._first_line(done.stderr)}")
    try:
        return _from_fields(json.loads(done.stdout))
    except ValueError:
        return None


def _uri() -> Optional[str]:
    done = ca_store.run_tool(["secret-info-get", "--label", SECRET_LABEL, "--format=json"])
    if done.returncode != 0:
        if "not found" in done.stderr:
            return None
        raise ca_store.CAUnavailable("cannot look up the CA request secret: "
                                     f"{ca_store._first_line(done.stderr)}")
    try:
        (secret_id,) = json.loads(done.stdout)
    except (ValueError, TypeError):
        raise ca_store.CAUnavailable("secret-info-get gave an unexpected answer") from None
    return secret_id if ":" in secret_id else f"secret:{secret_id}"


def store(request: CARequest, leader_set) -> None:
    """Keep ``request`` (replacing the stored one). The key goes through a 0600 temp
    file, never on a command line."""
    if not ca_store.secrets_supported():
        values = {LEADER_PREFIX + f: None for f in (KEY_FIELD, CSR_FIELD, PREVIOUS_FIELD)}
        values.update({LEADER_PREFIX + f: v for f, v in _fields(request).items()})
        leader_set(values)
        return
    uri = _uri()
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as handle:
        json.dump(_fields(request), handle)  # JSON is YAML
        handle.flush()
        if uri is None:
            argv = ["secret-add", "--owner", "application", "--label", SECRET_LABEL,
                    "--description", "layer:tls CA request to a CA provider",
                    "--file", handle.name]
        else:
            argv = ["secret-set", uri, "--file", handle.name]
        done = ca_store.run_tool(argv)
    if done.returncode != 0:
        raise ca_store.CAUnavailable("cannot store the CA request secret: "
                                     f"{ca_store._first_line(done.stderr)}")
