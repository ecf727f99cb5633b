"""The operator's CA: a Juju user secret named by the ``tls_ca_secret`` config option.

The operator makes the secret (``juju add-secret``), grants it to the application
(``juju grant-secret``) and sets ``tls_ca_secret`` to its URI. Its content: ``certificate``
(the CA the application signs with, PEM), ``private-key`` (its key, PEM) and, when that CA
is not itself a root, ``chain`` (PEM: the certificates above it, issuer first, up to and
including the self-signed root). The root is the trust anchor the units and the clients get.

The secret is read by the leader only, and only when something may have changed (the
option changed, Juju said the secret has a new revision, leadership or the charm changed,
a refused secret is retried on update-status, a switch waits for a running rollover to
end): ``wanted`` decides with flags, unitdata and the hook's environment, so a quiet hook
reads nothing and loads no ``cryptography``. A CA that passes every check is kept in the
application's own CA store (``ca_store``, with source ``tls_ca_secret``) and reached
through a CA rollover (``leader.start_rollover``), so mutual TLS never breaks; one that
fails any check changes nothing: the application keeps its current CA and the leader's
status names the problem. Messages never hold key material.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
from typing import Optional

from charmhelpers.core import hookenv, unitdata

from . import ca_store, status
from .settings import Settings

SOURCE = "tls_ca_secret"  # the CA store's source of a CA from this option
CERT_FIELD, KEY_FIELD, CHAIN_FIELD = "certificate", "private-key", "chain"
# Juju refuses a user-secret value over 8 KiB (core/secrets/createsecret.go
# maxValueSizeBytes); nothing bigger is read here whatever a backend hands over.
MAX_VALUE_BYTES = 8 * 1024
MAX_CHAIN = 4  # certificates above the CA; the signer presents at most four
PROBLEM = status.OPERATOR_CA_PROBLEM  # why the secret's CA is not used, or None
NOTE = status.OPERATOR_CA_NOTE        # the operator's CA nears its end
PENDING = "layer.tls.leader.operator-ca-pending"  # a switch waits (rollover, bad config)
SEEN = "layer.tls.leader.operator-ca-seen"  # the tls_ca_secret value last acted on
NOTED_FOR = "layer.tls.leader.operator-ca-noted-for"  # the published CA NOTE was made for
_XID = re.compile(r"[0-9a-v]{20}")
_BEGIN_CERT = "-----BEGIN CERTIFICATE-----"


class OperatorCAProblem(Exception):
    """Why the secret's CA cannot be used (a message for the status: no key material)."""


def secret_xid(uri: str) -> Optional[str]:
    """The secret id of ``secret:<xid>``, ``secret://<model>/<xid>`` or a bare xid; None
    for anything else."""
    text = uri.strip()
    if text.startswith("secret://"):
        text = text.rsplit("/", 1)[-1]
    elif text.startswith("secret:"):
        text = text[len("secret:"):]
    return text if _XID.fullmatch(text) else None


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0][:160]


def read_content(uri: str) -> dict:
    """The latest content of the secret (``--refresh``: the leader tracks the newest
    revision, so Juju tells it of the next one with secret-changed). Juju's refusals as
    the operator should read them."""
    xid = secret_xid(uri)
    if xid is None:
        raise OperatorCAProblem("tls_ca_secret is not a secret URI (secret:...)")
    try:
        done = ca_store.run_tool(["secret-get", f"secret:{xid}", "--refresh",
                                  "--format=json"])
    except (OSError, subprocess.SubprocessError) as exc:
        raise OperatorCAProblem(f"secret-get failed to run: {type(exc).__name__}") from None
    if done.returncode != 0:
        err = done.stderr or ""
        if "permission denied" in err:
            raise OperatorCAProblem(
                "secret not granted to this application (juju grant-secret)")
        if "not found" in err:
            raise OperatorCAProblem("secret not found")
        raise OperatorCAProblem(f"cannot read the secret: {_first_line(err)}")
    try:
        content = json.loads(done.stdout)
    except ValueError:
        raise OperatorCAProblem("secret-get gave an unreadable answer") from None
    if not isinstance(content, dict):
        raise OperatorCAProblem("secret-get gave an unreadable answer")
    return content


def _field(content: dict, name: str, required: bool) -> str:
    value = content.get(name)
    if value is None or value == "":
        if required:
            raise OperatorCAProblem(f"the secret has no {name}")
        return ""
    if not isinstance(value, str):
        raise OperatorCAProblem(f"the secret's {name} is not text")
    if len(value.encode("utf-8", "replace")) > MAX_VALUE_BYTES:
        raise OperatorCAProblem(f"the secret's {name} is over {MAX_VALUE_BYTES} bytes")
    return value


def check_content(content: dict, settings: Settings, now=None):
    """The ``pki.CertificateAuthority`` of a secret's content, or OperatorCAProblem.

    Exactly one CA certificate, a private key that matches it, the CA flag and keyCertSign,
    valid now and for at least twice ``tls_certificate_lifetime`` (with its chain), a
    chain (``chain``, at most MAX_CHAIN certificates) that certifies it up to a
    self-signed root, or a self-signed certificate when there is no chain."""
    from . import leader, pki

    if not isinstance(content, dict):
        raise OperatorCAProblem("the secret does not hold keys and values")
    cert_pem = _field(content, CERT_FIELD, True)
    key_pem = _field(content, KEY_FIELD, True)
    chain_pem = _field(content, CHAIN_FIELD, False)
    if "PRIVATE KEY-----" in cert_pem or "PRIVATE KEY-----" in chain_pem:
        raise OperatorCAProblem(f"a private key is in the secret's {CERT_FIELD} or "
                                f"{CHAIN_FIELD}: it belongs in {KEY_FIELD} only")
    if cert_pem.count(_BEGIN_CERT) != 1:
        raise OperatorCAProblem(f"the secret's {CERT_FIELD} must be exactly one PEM "
                                "certificate (the CA; the certificates above it go in "
                                f"{CHAIN_FIELD})")
    if key_pem.count("-----BEGIN") != 1:
        raise OperatorCAProblem(f"the secret's {KEY_FIELD} must be exactly one PEM key")
    try:
        (cert,) = pki.load_certificates(cert_pem)
        chain = pki.load_certificates(chain_pem) if chain_pem else []
    except (pki.PKIError, ValueError):
        raise OperatorCAProblem(f"the secret's {CERT_FIELD} or {CHAIN_FIELD} is not "
                                "readable PEM certificates") from None
    if len(chain) > MAX_CHAIN:
        raise OperatorCAProblem(f"the secret's {CHAIN_FIELD} holds more than {MAX_CHAIN} "
                                "certificates")
    try:
        key = pki.load_private_key(key_pem)
    except pki.PKIError as exc:
        raise OperatorCAProblem(f"the secret's {KEY_FIELD}: {exc}") from None
    if not pki.certificate_matches_key(cert, key):
        raise OperatorCAProblem(f"the secret's {KEY_FIELD} does not match its {CERT_FIELD}")
    now = now or pki.utcnow()
    if cert.not_valid_after_utc <= now:
        raise OperatorCAProblem(
            f"certificate expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC")
    if cert.not_valid_before_utc > now:
        raise OperatorCAProblem(
            f"certificate not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC")
    _check_ca_extensions(cert)
    if not chain:
        if cert.issuer != cert.subject or not _self_signed(cert):
            raise OperatorCAProblem(f"the certificate is not self-signed and the secret has "
                                    f"no {CHAIN_FIELD} up to its root")
    elif not _self_signed(chain[-1]):
        raise OperatorCAProblem(f"the secret's {CHAIN_FIELD} does not end with a "
                                "self-signed root")
    try:
        ca = leader._usable_ca(cert_pem, key_pem, "the CA", chain_pem)
    except ca_store.CAUnavailable as exc:
        raise OperatorCAProblem(str(exc)) from None
    try:
        lifetime = settings.certificate_lifetime_days
    except ValueError:
        lifetime = 0.0  # settings.problem() blocks on it; the CA itself is checked
    ends = min(c.not_valid_after_utc for c in (cert, *chain))
    left = (ends - now).total_seconds() / 86400
    if left < 2 * lifetime:
        raise OperatorCAProblem(
            f"the CA (with its chain) is valid until {ends:%Y-%m-%d %H:%M} UTC, less "
            f"than twice tls_certificate_lifetime ({2 * lifetime:g} days) from now")
    return ca


def _check_ca_extensions(cert) -> None:
    from cryptography import x509

    try:
        basic = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        raise OperatorCAProblem("the certificate has no basicConstraints: not a CA") from None
    except Exception:  # noqa: BLE001 - a malformed extension of a hostile certificate
        raise OperatorCAProblem("the certificate's extensions are unreadable") from None
    if not basic.ca:
        raise OperatorCAProblem("the certificate is not a CA (basicConstraints CA:FALSE)")
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        raise OperatorCAProblem("the certificate has no keyUsage (keyCertSign)") from None
    except Exception:  # noqa: BLE001
        raise OperatorCAProblem("the certificate's extensions are unreadable") from None
    if not usage.key_cert_sign:
        raise OperatorCAProblem("the certificate's keyUsage lacks keyCertSign")


def _self_signed(cert) -> bool:
    try:
        cert.verify_directly_issued_by(cert)
    except Exception:  # noqa: BLE001 - any mismatch: not self-signed
        return False
    return True


def load(uri: str, settings: Settings):
    """The CA of the secret ``uri`` (read and checked), or OperatorCAProblem."""
    return check_content(read_content(uri), settings)


def wanted(settings: Settings) -> bool:
    """Whether the leader should look at the secret in this hook (no tool call, no crypto):
    the option changed, Juju said the configured secret has a new revision, leadership
    or the charm changed, a switch waits, or (on update-status) a refused secret is
    tried again (granting a secret runs no hook)."""
    hook = hookenv.hook_name()
    kv = unitdata.kv()
    # the value acted on last, compared here (not layer:basic's config.changed flags: a
    # new leader, or one whose last attempt failed, must look too)
    if kv.get(PENDING) or kv.get(SEEN) != settings.ca_secret:
        return True
    if hook in ("leader-elected", "upgrade-charm"):
        return True
    if hook == "secret-changed":
        changed = secret_xid(os.environ.get("JUJU_SECRET_ID", ""))
        return changed is not None and changed == secret_xid(settings.ca_secret)
    return hook == "update-status" and bool(kv.get(PROBLEM))


def _set(key: str, value) -> None:
    kv = unitdata.kv()
    if kv.get(key) != value:
        kv.set(key, value)


def same_ca(one, other) -> bool:
    """The same signing CA: certificate, key and chain."""
    return (one.certificate == other.certificate and one.chain == other.chain
            and one.key_fingerprint == other.key_fingerprint)


def reconcile(tls, settings: Settings) -> Optional[str]:
    """Leader: move the application to the CA ``tls_ca_secret`` names, or back to a
    self-made CA when it was cleared, through a CA rollover (``leader.start_rollover``:
    a new root is trusted first; under the same root the leaves are reissued from the
    new CA while both intermediates are published). Returns what to say in the status
    of a rollover it started, or None. A secret that fails a check changes nothing (the
    problem is kept for the status). Raises ca_store.CAUnavailable when the CA store
    cannot be read."""
    from . import leader

    uri = settings.ca_secret
    _set(SEEN, uri)  # with unitdata, kept only when the hook succeeds
    if uri and not ca_store.secrets_supported():
        _set(PROBLEM, "tls_ca_secret needs Juju secrets (Juju 3.1 or later)")
        return None
    material = ca_store.load(hookenv.leader_get)
    if material is None:
        # no CA yet: the signing path makes the first one from tls_ca_secret
        _set(PENDING, None)
        return None
    if not uri:
        _set(PROBLEM, None)
        if material.source != SOURCE:
            _set(PENDING, None)
            return None
        return _switch(tls, settings, None, "tls_ca_secret was cleared")
    try:
        ca = load(uri, settings)
    except OperatorCAProblem as exc:
        return _refuse(str(exc))
    _set(PROBLEM, None)
    current = leader.ensure_ca(tls, settings)
    if same_ca(ca, current):
        _set(PENDING, None)
        if material.source != SOURCE:  # e.g. the CA of root_certificate, now the secret's
            leader.keep_ca(ca, SOURCE)
        return None
    problem = leader.root_switch_problem(current, ca)
    if problem:
        return _refuse(problem)
    why = ("tls_ca_secret set" if material.source != SOURCE
           else "a new CA in tls_ca_secret")
    return _switch(tls, settings, ca, why)


def _refuse(problem: str) -> None:
    """The secret's CA is not used: keep ``problem`` for the leader's status (logged
    once), and nothing waits."""
    message = f"tls_ca_secret: {problem}; the application keeps its current CA"
    if unitdata.kv().get(PROBLEM) != message:
        hookenv.log(f"layer:tls: {message}", hookenv.WARNING)
    _set(PROBLEM, message)
    _set(PENDING, None)


def _switch(tls, settings: Settings, ca, why: str) -> Optional[str]:
    """Start the rollover to ``ca`` (None: a new self-made CA), or wait for the running
    one to end first (PENDING: ``wanted`` brings the leader back)."""
    from . import leader

    if leader.switch_running(tls):
        _set(PENDING, True)
        return f"{why}: waiting for the running CA rollover to end"
    _set(PENDING, None)
    _set(NOTE, None)
    _set(NOTED_FOR, None)
    leader.start_rollover(tls, settings, why, new_ca=ca,
                          source=SOURCE if ca is not None else "")
    return leader.rollover_status("started")


def note_near_end(tls, settings: Settings) -> None:
    """The age-based rollover came due while the operator's CA is in use: the layer does
    not replace the operator's CA behind their back (a self-made CA would take over); the
    status says when it ends instead, until the operator puts a new CA in the secret."""
    from . import leader

    ca = leader.ensure_ca(tls, settings)
    ends = min(c.not_valid_after_utc for c in (ca.certificate, *ca.chain))
    note = (f"the CA of tls_ca_secret expires on {ends:%Y-%m-%d} UTC: put a renewed CA "
            "in the secret (juju update-secret)")
    if unitdata.kv().get(NOTE) != note:
        hookenv.log(f"layer:tls: {note}", hookenv.WARNING)
    _set(NOTE, note)
    _set(NOTED_FOR, _published_digest(tls))


def _published_digest(tls) -> str:
    from . import storage

    return storage.digest(json.dumps([tls.get_ca_bundle() or "",
                                      tls.get_ca_intermediates() or ""]))


def noted(tls) -> bool:
    """The CA published now is the one ``note_near_end`` judged (text only)."""
    return unitdata.kv().get(NOTED_FOR) == _published_digest(tls)
