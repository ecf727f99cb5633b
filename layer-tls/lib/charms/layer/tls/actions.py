"""The layer's actions: show-certificate, get-ca-certificate, rotate-certificate, rotate-ca,
revoke-certificate, unbar-unit.

Results never contain a private key. Wrong use (rotate-ca on a non-leader, no certificate
yet) fails the action with a clear message.

An action is not a hook. Juju exports ``JUJU_HOOK_NAME`` empty for an action (the unit
agent's ``HookVars`` always sets it and an action context has no hook name), so a reactive
``@hook("<action>")`` handler would never fire; and running charms.reactive's dispatch in an
action would run every handler whose flags are set (signing, installing) inside it. So
``main`` runs only the action: it loads the endpoints the way a hook starts (relation data
read, flags managed), runs the action's function, and publishes what the action wrote
(relation data, unitdata) the way a hook ends.
"""
from __future__ import annotations

import os
import sys
from typing import Optional

from charmhelpers.core import hookenv, unitdata

from . import storage
from .settings import Settings


def _endpoint():
    from charms.reactive import endpoint_from_name

    tls = endpoint_from_name("certificates")
    if tls is None or not tls.has_peer_relation:
        raise ActionFailed("the certificates peer relation does not exist yet")
    return tls


class ActionFailed(Exception):
    pass


def show_certificate(settings: Settings) -> dict:
    from . import pki

    cert_pem = unitdata.kv().get(storage.INSTALLED_CERT)
    if not cert_pem:
        raise ActionFailed("this unit has no certificate yet")
    cert = pki.load_certificate(cert_pem)
    dns_names, ips = pki.certificate_names(cert)
    return {"subject": cert.subject.rfc4514_string(), "issuer": cert.issuer.rfc4514_string(),
            "serial": format(cert.serial_number, "x"), "dns-names": ",".join(dns_names),
            "ip-addresses": ",".join(ips),
            "not-before": cert.not_valid_before_utc.isoformat(),
            "not-after": cert.not_valid_after_utc.isoformat(),
            "days-left": f"{pki.days_to_expiry(cert):.1f}",
            "certificate": cert_pem, "path": settings.paths.certificate,
            # the intermediates presented after it ("" under a self-signed CA): the
            # certificate file holds certificate + chain
            "chain": unitdata.kv().get(storage.INSTALLED_CHAIN) or ""}


def get_ca_certificate(settings: Settings) -> dict:
    bundle = unitdata.kv().get(storage.INSTALLED_BUNDLE) or _endpoint().get_ca_bundle()
    if not bundle:
        raise ActionFailed("the CA is not known on this unit yet")
    return {"ca-certificate": bundle, "count": str(bundle.count("BEGIN CERTIFICATE"))}


def rotate_certificate(settings: Settings) -> dict:
    from . import unit

    unit.request_certificate(_endpoint(), settings, new_key=True)
    return {"message": "a new key and certificate request were made; the current "
                       "certificate stays in use until the new one is signed"}


def rotate_ca(settings: Settings) -> dict:
    from . import leader

    tls = _endpoint()
    if not tls.is_leader:
        raise ActionFailed("rotate-ca runs on the leader unit only")
    if settings.ca_secret:
        # the operator's CA is theirs to renew: a self-made CA would replace it
        raise ActionFailed("the CA comes from tls_ca_secret: put a new CA in that secret "
                           "(juju update-secret), or clear tls_ca_secret to return to a "
                           "self-made CA")
    problem = settings.problem()
    if problem:  # the new CA's lifetime comes from the config: never start on a bad one
        raise ActionFailed(f"rotate-ca cannot start while the config is invalid: {problem}")
    try:
        leader.start_rollover(tls, settings, "rotate-ca action")
    except (leader.RolloverError, leader.ca_store.CAUnavailable) as exc:
        raise ActionFailed(str(exc)) from None
    return {"message": "CA rollover started: the new CA is trusted next to the old one, "
                       "then every certificate is reissued, then the old CA is dropped"}


def _leader_endpoint(action: str):
    tls = _endpoint()
    if not tls.is_leader:
        raise ActionFailed(f"{action} runs on the leader unit only")
    return tls


def _unit_param() -> str:
    unit = hookenv.action_get("unit")
    if not isinstance(unit, str) or not unit.strip() or len(unit) > 253:
        raise ActionFailed("unit must name a unit, e.g. app/2")
    return unit.strip()


def revoke_certificate(settings: Settings) -> dict:
    from . import revocation

    tls = _leader_endpoint("revoke-certificate")
    unit = _unit_param()
    reason = hookenv.action_get("reason") or "unspecified"
    try:
        return revocation.revoke(tls, settings, unit, reason)
    except revocation.RevocationError as exc:
        raise ActionFailed(str(exc)) from None


def unbar_unit(settings: Settings) -> dict:
    from . import revocation

    tls = _leader_endpoint("unbar-unit")
    try:
        return revocation.unbar(tls, _unit_param())
    except revocation.RevocationError as exc:
        raise ActionFailed(str(exc)) from None


ACTIONS = {"show-certificate": show_certificate, "get-ca-certificate": get_ca_certificate,
           "rotate-certificate": rotate_certificate, "rotate-ca": rotate_ca,
           "revoke-certificate": revoke_certificate, "unbar-unit": unbar_unit}


CHANGES_STATE = ("rotate-certificate", "rotate-ca", "revoke-certificate", "unbar-unit")


def run(name: str, settings: Settings) -> None:
    """Run action ``name`` and report through action-set / action-fail."""
    action = ACTIONS.get(name)
    if action is None:
        hookenv.action_fail(f"layer:tls has no action named {name!r}")
        return
    try:
        results = action(settings)
    except ActionFailed as exc:
        hookenv.action_fail(str(exc))
        return
    except Exception as exc:  # noqa: BLE001 - an action fails with one line, never a traceback
        message = one_line(exc)
        hookenv.log(f"layer:tls: action {name} failed: {message}", hookenv.ERROR)
        hookenv.action_fail(f"{name} failed: {message}")
        return
    hookenv.action_set(results)


def one_line(exc: BaseException) -> str:
    """``Type: first line of the message`` (at most 200 characters), and only the type if
    the message could hold key material."""
    text = (str(exc).strip().splitlines() or [""])[0][:200]
    if not text or "PRIVATE KEY" in str(exc):
        return type(exc).__name__
    return f"{type(exc).__name__}: {text}"


def action_name(argv0: str) -> str:
    """The running action: ``JUJU_ACTION_NAME`` (always set by Juju for an action), else the
    script's own name (``actions/<name>``)."""
    return hookenv.action_name() or os.path.basename(argv0)


def main(name: Optional[str] = None) -> None:
    """Entry point of ``actions/<name>``: run that action and nothing else.

    The steps are those of charms.reactive's ``main`` without its dispatch: ``discover``
    loads the handler modules (which registers the interface's endpoint class), the
    ``atstart`` callbacks create the endpoints from the relations Juju lists, the action
    runs, and the ``atexit`` callbacks publish relation data before unitdata is saved.
    """
    from charms.reactive import bus

    from . import settings as settings_module

    name = name or action_name(sys.argv[0])
    bus.discover()
    hookenv._run_atstart()
    run(name, settings_module.load())
    if name in CHANGES_STATE:
        from . import status, transfer

        transfer.send_trust_bundle()  # rotate-ca put a new CA in the bundle
        status.update()
    hookenv._run_atexit()
    unitdata.kv().flush()
