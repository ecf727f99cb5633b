"""The application CA as an intermediate signed by a tls-certificates provider.

The leader asks the provider related on ``ca-certificates`` (interface
tls-certificates, requires) to sign a CA: a new CA key, a CSR for it (``"ca": true``,
app scope), the key and CSR kept in the CA request secret (``ca_request_store``). When
the provider answers, the certificate and its chain are verified
(``pki_provider.verify_provider_ca``) before use, then the application moves to it:

- under a root not published yet (the first time, or another provider): a CA rollover
  (``leader.start_rollover(..., new_ca=...)``), so every unit trusts the provider's root
  before any certificate from the intermediate is handed out, and mutual TLS never breaks;
- the same key, subject and root as the CA in use (a renewal): in place. The new
  certificate replaces the old one in the CA store and in ``ca-intermediates``; every
  certificate the old one signed verifies with it too (same issuer name, same key), so
  nothing is reissued.
- a new key under the same root (after a revocation): the same-root reissue of
  ``leader.start_rollover``: the new intermediate is published next to the old one, every
  leaf is reissued from it, then the old one goes (the root stays trusted throughout).

Renewal: at ``tls_ca_rollover_fraction`` of the intermediate's lifetime (on
update-status) the leader asks again with the **same key** (a new CSR). A revocation, a
new relation or an unusable answer asks with a **new key**. The provider's refusal
(``request_errors``) is shown in the leader's status; the current CA serves meanwhile, and
a config-changed hook asks again (new CSR, same key). When the relation goes away the
application keeps serving with what it has, and the leader's status says until when.

Everything read from the provider is hostile: the interface bounds and shape-checks it,
this module verifies it, and nothing here raises out of a hook for any provider data.
No key or PEM appears in a log line or a status.
"""
from __future__ import annotations

import time
from typing import Optional

from charmhelpers.core import hookenv, unitdata

from . import ca_request_store, ca_store, status, storage
from .settings import Settings

ENDPOINT = "ca-certificates"
JOINED_FLAG = f"endpoint.{ENDPOINT}.joined"
# interface:tls-certificates: the provider refused, or revoked, one of our requests
ERROR_FLAG = f"endpoint.{ENDPOINT}.request.error"
REVOKED_FLAG = f"endpoint.{ENDPOINT}.certificate.revoked"
CHANGED_FLAGS = (f"endpoint.{ENDPOINT}.changed", f"endpoint.{ENDPOINT}.changed.certificates",
                 f"endpoint.{ENDPOINT}.changed.request_errors")
# unitdata: the leader waits for something outside the provider's data (a running CA
# rollover, its own switch) and looks again in the first hook where no switch runs
RETRY = "layer.tls.ca-provider.retry"
RETRIED = "layer.tls.ca-provider.retried-csr"  # digest of the refused CSR asked again for
# {"due": epoch}: the provider's CA is in use and nothing is asked for; update-status
# need not look again before the renewal is due
SETTLED = "layer.tls.ca-provider.settled"
# A provider's CA is not taken when it ends in less than this
MIN_DAYS = 1.0
SOURCE = "ca-certificates"  # the CA store's record of where the CA came from
_LOOK_HOOKS = ("update-status", "config-changed", "leader-elected", "upgrade-charm")


def note(message: Optional[str], blocked: bool = False) -> None:
    """What the leader's status says of the provider (written only when it changed)."""
    value = {"blocked": blocked, "message": message[:300]} if message else None
    kv = unitdata.kv()
    if kv.get(status.LEADER_PROVIDER) != value:
        kv.set(status.LEADER_PROVIDER, value)
        if message:
            hookenv.log(f"layer:tls: CA provider: {message}",
                        hookenv.WARNING if blocked else hookenv.INFO)


def renews_ca(settings: Settings) -> bool:
    """True while a related provider renews the CA in use, so the leader does not start a
    self-made CA rollover when the CA reaches its rollover fraction: its CA is the one in
    use, it has neither refused nor revoked our request, and its renewal is not overdue
    (``pki_provider.renewal_overdue``). Otherwise the self-made rollover runs, so the CA in
    use never runs out. Called on update-status once the rollover is due only (one read of
    the CA store)."""
    from charms.reactive import is_flag_set

    if (not is_flag_set(JOINED_FLAG) or settings.ca_secret or is_flag_set(ERROR_FLAG)
            or is_flag_set(REVOKED_FLAG)):
        return False
    material = ca_store.load(hookenv.leader_get)
    if material is None or material.source != SOURCE:
        return False
    from . import pki_provider

    overdue = pki_provider.renewal_overdue(material.certificate_pem,
                                           settings.ca_rollover_fraction)
    if overdue:
        hookenv.log("layer:tls: the CA provider has not renewed the CA in time; a self-made "
                    "CA replaces it", hookenv.WARNING)
    return not overdue


def worth_looking(tls) -> bool:
    """Whether this hook may change anything: the provider's data changed, a hook that
    re-checks (update-status, config-changed, leader-elected, upgrade-charm, any hook of
    the relation), or the leader waits for a rollover that has finished. Flags, the hook
    name and the bundle text only."""
    from charms.reactive import is_flag_set

    hook = hookenv.hook_name()
    if any(is_flag_set(f) for f in CHANGED_FLAGS):
        return True
    settled = unitdata.kv().get(SETTLED)
    if (hook == "update-status" and isinstance(settled, dict)
            and time.time() < settled.get("due", 0)):
        return False
    if hook in _LOOK_HOOKS:
        return True
    if hook.startswith(f"{ENDPOINT}-relation-"):
        return True
    from . import leader

    return bool(unitdata.kv().get(RETRY)) and not leader.switch_running(tls)


def _same_pem(one: str, other: str) -> bool:
    return "".join((one or "").split()) == "".join((other or "").split())


def _published(ep, csr_pem: str) -> bool:
    return any(_same_pem(r.csr, csr_pem) for r in ep.requests("app"))


def _provider_name(ep) -> str:
    name = ep.provider_app
    return name if isinstance(name, str) and name else "the CA provider"


def reconcile(tls, ep, settings: Settings) -> None:
    """Leader, while the provider is related: ask, check, switch, renew (see the module
    docstring). Never raises for anything the provider sent; a CA store that cannot be
    read blocks (nothing new is asked for then)."""
    kv = unitdata.kv()
    kv.unset(RETRY)
    kv.unset(SETTLED)
    try:
        _reconcile(tls, ep, settings)
    except ca_store.CAUnavailable as exc:
        note(f"CA provider: {exc}", blocked=True)


def _reconcile(tls, ep, settings: Settings) -> None:
    app = _provider_name(ep)
    if settings.ca_secret:
        for request in ep.requests("app"):
            ep.withdraw(request.csr)
        note(f"tls_ca_secret is set: the CA from {app} is not used")
        return
    if settings.problem():
        return  # the lifetimes are needed; the status shows the config problem
    request = ca_request_store.load(hookenv.leader_get)
    if request is None or not _published(ep, request.csr_pem):
        # a new relation (or none asked yet): a new key, asked for in this relation only
        _ask(ep, settings, None, request, f"asked {app} to sign the CA")
        return
    issued = ep.certificate_for(request.csr_pem)
    material = ca_store.load(hookenv.leader_get)
    current_pem = material.certificate_pem if material is not None else ""
    if issued is None:
        _unanswered(ep, settings, request, app)
        return
    in_use = _same_pem(issued.certificate, current_pem)
    if issued.revoked:
        previous = request.csr_pem if in_use else request.previous_csr_pem
        _ask(ep, settings, None, request._replace(previous_csr_pem=previous),
             f"{app} revoked the CA certificate; asked for a new one (new key); the "
             "current CA serves meanwhile", blocked=True)
        return
    if in_use:
        _in_use(ep, settings, request, material, app)
        return
    from . import pki_provider

    checked = pki_provider.verify_provider_ca(
        request.private_key_pem, issued.certificate, issued.ca, issued.chain,
        min_days=MIN_DAYS)
    if checked.problem:
        note(f"the CA certificate from {app} is unusable: {checked.problem}; the current "
             "CA serves meanwhile", blocked=True)
        return
    _switch(tls, settings, checked.ca, app, checked.notes)


def _unanswered(ep, settings: Settings, request, app: str) -> None:
    error = ep.request_error_for(request.csr_pem)
    if error is None:
        before = (ep.certificate_for(request.previous_csr_pem)
                  if request.previous_csr_pem else None)
        if before is not None and before.revoked:  # still serving with a revoked CA
            note(f"{app} revoked the CA certificate; waiting for it to sign a new one "
                 "(new key); the current CA serves meanwhile", blocked=True)
        else:
            note(f"waiting for {app} to sign the CA; the current CA serves meanwhile")
        return
    kv = unitdata.kv()
    if hookenv.hook_name() == "config-changed" and kv.get(RETRIED) != storage.digest(
            request.csr_pem):
        kv.set(RETRIED, storage.digest(request.csr_pem))
        _ask(ep, settings, request.private_key_pem, request,
             f"asked {app} again to sign the CA (it refused the last request)")
        return
    what = " ".join(p for p in (error.name, str(error.code) if error.code is not None
                                else None) if p) or "an error"
    detail = ": ".join(p for p in (error.message, error.reason) if p)
    note(f"{app} refused the CA request ({what}{': ' + detail if detail else ''}); the "
         "current CA serves meanwhile", blocked=True)


def _ask(ep, settings: Settings, key_pem: Optional[str], replaced, message: str,
         blocked: bool = False) -> None:
    """Store and publish a new CA request: for ``key_pem`` (a renewal or a retry) or a
    new key. The request it replaces is withdrawn now unless its certificate is in use
    (``previous_csr_pem``: withdrawn once the new one is)."""
    from . import pki, pki_provider

    key = None
    if key_pem:
        try:
            key = pki.load_private_key(key_pem)
        except pki.PKIError:  # our own record, but read back from a secret: a new key
            hookenv.log("layer:tls: the stored CA request key is unusable; asking with a "
                        "new key", hookenv.WARNING)
    if key is None:
        key = pki.generate_private_key(settings.ca_key_algorithm)
    csr_pem = pki_provider.ca_csr(
        key, f"{hookenv.application_name()} CA",
        organization=f"Juju model {hookenv.model_name()}", namespace=settings.namespace,
        request_id=f"{time.time():.6f}")
    previous = replaced.previous_csr_pem if replaced is not None else ""
    new = ca_request_store.CARequest(pki.private_key_to_pem(key).decode(), csr_pem, previous)
    ca_request_store.store(new, hookenv.leader_set)
    for request in ep.requests("app"):  # anything else of ours: a request replaced
        if not _same_pem(request.csr, previous):
            ep.withdraw(request.csr)
    ep.request(csr_pem, ca=True, scope="app")
    note(message, blocked)


def _in_use(ep, settings: Settings, request, material, app: str) -> None:
    """The provider's certificate for our request is the CA in use: withdraw the request
    it replaced, and ask for a renewal (same key) once the CA reached its rollover
    fraction (checked on update-status)."""
    if request.previous_csr_pem:
        ep.withdraw(request.previous_csr_pem)
        request = request._replace(previous_csr_pem="")
        ca_request_store.store(request, hookenv.leader_set)
    from . import pki

    try:
        cert = pki.load_certificate(material.certificate_pem)
    except pki.PKIError:
        return
    start = cert.not_valid_before_utc.timestamp()
    end = cert.not_valid_after_utc.timestamp()
    due = start + (end - start) * settings.ca_rollover_fraction
    until = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(end))
    if hookenv.hook_name() == "update-status" and time.time() >= due:
        _ask(ep, settings, request.private_key_pem,
             request._replace(previous_csr_pem=request.csr_pem),
             f"asked {app} to renew the CA (valid until {until})")
        return
    notes = _path_length_note(cert)
    note(f"CA signed by {app}, valid until {until}" + (f" ({notes})" if notes else ""))
    unitdata.kv().set(SETTLED, {"due": due})


def _path_length_note(cert) -> str:
    """The notes on a CA in use (its path length), as one text."""
    from cryptography import x509

    try:
        length = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except Exception:  # noqa: BLE001 - a certificate that passed the checks: no note
        return ""
    if length.path_length is None:
        return "the provider set no path length on it"
    return "" if length.path_length == 0 else f"path length {length.path_length}"


def _switch(tls, settings: Settings, ca, app: str, notes) -> None:
    """Move the application to the verified provider CA ``ca``."""
    from . import leader, pki

    if leader.switch_running(tls):
        unitdata.kv().set(RETRY, True)
        note(f"the CA from {app} is verified; waiting for the running CA rollover to end")
        return
    if not tls.get_ca_bundle() and ca_store.load(hookenv.leader_get) is None:
        # no CA yet (the provider answered before the first CA was made): nothing trusts
        # anything yet, so the provider's CA is the first CA, no rollover needed
        leader.keep_ca(ca, SOURCE)
        leader.publish_ca(tls, ca, settings)
        hookenv.log(f"layer:tls: the application CA is the one {app} signed")
        note(f"CA signed by {app}" + (f" ({'; '.join(notes)})" if notes else ""))
        return
    current = leader.ensure_ca(tls, settings)
    same_root = pki.certificate_to_pem(current.anchor) == pki.certificate_to_pem(ca.anchor)
    if (same_root and current.key_fingerprint == ca.key_fingerprint
            and current.certificate.subject == ca.certificate.subject
            and pki.subject_key_id(current.certificate) == pki.subject_key_id(
                ca.certificate)):  # the old leaves' AKI must name the renewed CA
        leader.keep_ca(ca, SOURCE)
        text = pki.certificates_to_pem(ca.intermediates)
        if tls.get_ca_intermediates() != text:
            tls.set_ca_intermediates(text)
        leader.publish_ca(tls, ca, settings)
        until = f"{ca.certificate.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"
        hookenv.log(f"layer:tls: the CA certificate renewed by {app} replaces the old one "
                    f"(same key), valid until {until}")
        note(f"CA signed by {app}, valid until {until}")
        unitdata.kv().set(RETRY, True)  # the next hook withdraws the request replaced
        return
    problem = leader.root_switch_problem(current, ca)
    if problem:
        note(f"the CA from {app} cannot replace the CA in use: {problem}", blocked=True)
        hookenv.log(f"layer:tls: the CA from {app} is not used: {problem}", hookenv.WARNING)
        return
    # another root: both roots are trusted first; the same root (a new key after a
    # revocation): the new intermediate is published next to the old one (same-root
    # reissue). Either way every leaf is reissued before the old CA goes.
    leader.start_rollover(tls, settings, f"{app} signed a CA", new_ca=ca, source=SOURCE)
    unitdata.kv().set(status.LEADER_ROLLOVER, leader.rollover_status("started"))
    unitdata.kv().set(RETRY, True)  # once it ended: withdraw the request it replaced
    note(f"moving to the CA signed by {app}" + (f" ({'; '.join(notes)})" if notes else ""))


def provider_gone(tls, settings: Settings) -> None:
    """Leader, once the relation broke: keep serving with the CA in use, and say (in the
    status) that the provider cannot renew it any more and when it ends."""
    try:
        request = ca_request_store.load(hookenv.leader_get)
        material = ca_store.load(hookenv.leader_get)
    except ca_store.CAUnavailable as exc:
        note(f"CA provider gone; {exc}", blocked=True)
        return
    if request is None or material is None:
        note(None)
        return
    from . import pki

    try:
        cert = pki.load_certificate(material.certificate_pem)
        ours = pki.certificate_matches_key(cert, pki.load_private_key(request.private_key_pem))
    except pki.PKIError:
        ours = False
    if not ours:
        note(None)  # the CA in use is not one a provider signed
        return
    start, end = cert.not_valid_before_utc.timestamp(), cert.not_valid_after_utc.timestamp()
    switch = start + (end - start) * settings.ca_rollover_fraction
    fmt = "%Y-%m-%d %H:%M UTC"
    note(f"the CA provider is gone: the CA it signed cannot be renewed; it ends "
         f"{time.strftime(fmt, time.gmtime(end))} (a self-made CA replaces it from "
         f"{time.strftime(fmt, time.gmtime(switch))} unless a provider is related)")
