"""What the leader does: keep the application's one CA, sign every pending CSR in one batch,
and publish the CA bundle, the certificates and the rejections in one write.

Called from the reactive handlers with the interface:tls endpoint (``tls``).
"""
from __future__ import annotations

import base64
import binascii
import json
import time
from typing import Dict, List, NamedTuple, Optional

from charmhelpers.core import hookenv, unitdata

from . import ca_store, status, storage
from .settings import Settings

REJECTED_INPUTS = "layer.tls.leader.rejected-inputs"  # unit -> digest of what was refused
ROLLOVER_AT = "layer.tls.leader.ca-rollover-at"  # {"ca": digest of the CA PEM, "at": epoch}
ROLLOVER_WHY = "layer.tls.leader.ca-rollover-why"  # why the running rollover started
LEGACY_WRITTEN = "layer.tls.leader.legacy-ca-written"  # digest of the CA last leader-set
NAMESPACE_CHECKED = "layer.tls.leader.namespace-checked"  # digest of what check_namespace saw
# digest of the bundle and intermediates under which no same-root reissue was found to run
REISSUE_CHECKED = "layer.tls.leader.reissue-checked"
_BEGIN = "-----BEGIN CERTIFICATE-----"
_END = "-----END CERTIFICATE-----"


def _stored_here() -> set:
    """Digests of the CAs stored in this hook: with secrets they commit only when the hook
    succeeds, so nothing that outlives a failed hook (leader-set) may name them yet. Kept
    in charmhelpers' per-process hook cache."""
    return hookenv.cache.setdefault("layer.tls.leader.stored-here", set())


class RolloverError(Exception):
    """A CA rollover cannot start (one is running already)."""


class SigningOutcome(NamedTuple):
    signed: int
    rejections: Dict[str, str]   # unit -> reason
    blocked: Optional[str]       # why the leader cannot sign at all


def _pem_from_config(value: str) -> str:
    """``root_certificate`` is base64 of PEM in the legacy layer; raw PEM is accepted too."""
    value = value.strip()
    if "-----BEGIN" in value:
        return value
    try:
        return base64.b64decode(value, validate=True).decode("ascii")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise ca_store.CAUnavailable("root_certificate is neither PEM nor base64 PEM") from None


def _new_ca(settings: Settings, *, generated: bool = False):
    """The operator's CA of ``tls_ca_secret`` (``operator_ca``), else one from the
    ``root_certificate`` config (certificate and key), else (or when ``generated``, as in
    a rollover) a fresh one named after the application and the time: an intermediate
    under a new root whose key is discarded (``pki.create_ca_chain``)."""
    from . import pki

    if settings.ca_secret and not generated and ca_store.secrets_supported():
        from . import operator_ca

        try:
            return operator_ca.load(settings.ca_secret, settings)
        except operator_ca.OperatorCAProblem as exc:
            raise ca_store.CAUnavailable(f"tls_ca_secret: {exc}") from None
    if settings.root_certificate and not generated:
        text = _pem_from_config(settings.root_certificate)
        if "PRIVATE KEY-----" not in text:
            raise ca_store.CAUnavailable(
                "root_certificate holds no private key, so it cannot sign certificates")
        return _usable_ca(text, text, "root_certificate")
    name = f"{hookenv.application_name()} CA {time.strftime('%Y-%m-%d %H:%M:%S')}"
    return pki.create_ca_chain(name, lifetime_days=settings.ca_lifetime_days,
                               organization=f"Juju model {hookenv.model_name()}",
                               key_algorithm=settings.ca_key_algorithm,
                               name_constraints=settings.namespace)


def _usable_ca(cert_pem: str, key_pem: str, what: str, chain_pem: str = ""):
    """A CA that can sign here (the first certificate of ``cert_pem``, its key from
    ``key_pem``, the certificates of ``chain_pem`` up to its root), or CAUnavailable
    saying why ``what`` cannot be used."""
    from . import pki

    try:
        chain = pki.load_certificates(chain_pem) if chain_pem else []
        ca = pki.CertificateAuthority(pki.load_certificates(cert_pem)[0],
                                      pki.load_private_key(key_pem), chain)
    except pki.PKIError as exc:
        raise ca_store.CAUnavailable(f"{what} is unusable: {exc}") from None
    problem = pki.ca_problem(ca)
    if problem:
        raise ca_store.CAUnavailable(f"{what} cannot sign: {problem}")
    return ca


def _keep(ca, source: str = "") -> None:
    """Store ``ca`` (certificate, key and chain) in the CA store, replacing the stored
    one, with where it came from (``source``: "" for a self-made or legacy CA).
    ``_stored_here`` names it by its anchor, the certificate the bundle publishes."""
    from . import pki

    cert_pem = pki.certificate_to_pem(ca.certificate)
    ca_store.store(ca_store.CAMaterial(cert_pem, pki.private_key_to_pem(ca.private_key).decode(),
                                       pki.certificates_to_pem(ca.chain), source),
                   hookenv.leader_set)
    if ca_store.secrets_supported():
        _stored_here().add(storage.digest(pki.certificate_to_pem(ca.anchor)))


def ensure_ca(tls, settings: Settings):
    """The application's CA: the stored one, else a new one stored now.

    Never makes a second CA while the store cannot be read (CAUnavailable: the leader
    blocks). When the store answers but its CA cannot sign any more (expired, unreadable
    content) or has no CA while one is published (its key is gone), a new CA replaces it
    through a rollover (``_replace_ca``): the application is never left without a CA.
    """
    from . import pki

    material = ca_store.load(hookenv.leader_get)
    if material is not None and ca_store.secrets_supported():
        ca_store.forget_fallback(hookenv.leader_get, hookenv.leader_set)
    elif ca_store.secrets_supported():
        material = ca_store.load_fallback(hookenv.leader_get)  # Juju upgraded from 2.9
        if material is not None:
            ca_store.store(material, hookenv.leader_set)
            hookenv.log("layer:tls: moved the CA from leader settings into a Juju secret")
    if material is None:
        if tls.get_ca_bundle() or hookenv.leader_get(ca_store.LEGACY_CA_SETTING):
            if not _legacy_adoption_done():
                raise ca_store.CAUnavailable(
                    "a CA is published but its key is not in the CA store (a legacy PKI "
                    "is not adopted yet); not making a second CA")
            return _replace_ca(tls, settings, "the published CA's key is not in the CA store")
        ca = _new_ca(settings)
        _keep(ca, "tls_ca_secret" if settings.ca_secret and ca_store.secrets_supported()
              else "")
        hookenv.log("layer:tls: created the application CA")
        return ca
    try:
        return _usable_ca(material.certificate_pem, material.private_key_pem, "the stored CA",
                          material.chain_pem)
    except ca_store.CAUnavailable as exc:
        why = str(exc)
        try:
            stored = pki.load_certificates(material.certificate_pem)[0]
        except pki.PKIError:
            stored = None
        if stored is not None and stored.not_valid_before_utc > pki.utcnow():
            raise  # this unit's clock is behind: a new CA would not help the others
        if stored is not None and stored.not_valid_after_utc <= pki.utcnow():
            why = f"the stored CA expired on {stored.not_valid_after_utc:%Y-%m-%d %H:%M:%S} UTC"
        return _replace_ca(tls, settings, why)


def _legacy_adoption_done() -> bool:
    """The legacy PKI handler (hook phase, before any flag handler) found nothing left to
    adopt here; until then a CA published without a stored key may be the legacy one."""
    from charms.reactive import is_flag_set

    return is_flag_set("tls.legacy.adopted")


def _replace_ca(tls, settings: Settings, why: str):
    """A new CA, stored and published in front of the CAs already published (the legacy
    setting's when the bundle is empty): a CA rollover, so every unit trusts it before
    certificates are reissued from it, and the old CAs leave the bundle once every unit
    uses a certificate from it. Expired CAs stay behind it until then (they verify
    nothing), so that the rollover reissues every certificate."""
    from . import pki

    published = tls.get_ca_bundle() or hookenv.leader_get(ca_store.LEGACY_CA_SETTING) or ""
    try:
        behind = "".join(pki.certificate_to_pem(c) for c in pki.load_certificates(published))
    except pki.PKIError:
        behind = ""
    new = _new_ca(settings, generated=True)
    _keep(new)
    tls.set_ca_bundle(behind)
    publish_ca(tls, new, settings)
    why = f"{why[:160]}; a new CA replaces it"
    unitdata.kv().set(ROLLOVER_WHY, why)
    hookenv.log(f"layer:tls: {why}: CA rollover started", hookenv.WARNING)
    return new


def publish_ca(tls, ca, settings: Settings) -> None:
    """Publish the CA: its anchor (root) first in the bundle (app data; CAs already there
    stay behind it until a rollover ends), its intermediates in ``ca-intermediates`` and
    the anchor as the legacy ``certificate_authority`` leader setting, each only when it
    changed; remember when this CA is due for a rollover."""
    from . import pki

    ca_pem = pki.certificate_to_pem(ca.anchor)
    published = tls.get_ca_bundle() or ""
    if not published.startswith(ca_pem):
        tls.set_ca_bundle(ca_pem + published.replace(ca_pem, ""))
    publish_intermediates(tls, ca)
    publish_legacy_setting(tls, ca_pem)
    end = ca.certificate.not_valid_after_utc.timestamp()
    # notBefore is backdated: count the lifetime from the creation time
    start = min(ca.certificate.not_valid_before_utc.timestamp() + pki.BACKDATE.total_seconds(),
                end)
    unitdata.kv().set(ROLLOVER_AT, {"ca": storage.digest(ca_pem),
                                    "at": start + (end - start) * settings.ca_rollover_fraction})


def publish_intermediates(tls, ca, final: bool = False) -> None:
    """Publish ``ca``'s intermediates first, then those already published that a root of
    the published bundle issued (the previous CA's during a rollover, also under the
    same root); the others (their root left the bundle) go, and with ``final`` (a
    rollover's end) every one but ``ca``'s. Written only when the text changes."""
    from . import pki

    published = tls.get_ca_intermediates()
    if not published and not ca.intermediates:
        return
    if final:
        text = pki.certificates_to_pem(ca.intermediates)
        if text != published:
            tls.set_ca_intermediates(text)
        return
    try:
        anchors = pki.load_certificates(tls.get_ca_bundle() or "")
        before = pki.load_certificates(published) if published else []
    except pki.PKIError:
        anchors, before = [ca.anchor], []
    wanted = list(ca.intermediates)
    # the leader's own data (only the leader writes the app bag): key ids suffice
    roots = {pki.subject_key_id(a) for a in anchors}
    by_key = {pki.subject_key_id(c): c for c in before}
    for cert in before:
        above, hops = cert, 0
        while hops < 5 and pki.authority_key_id(above) not in roots:
            above, hops = by_key.get(pki.authority_key_id(above)), hops + 1
            if above is None:
                break
        if above is not None and hops < 5 and cert not in wanted and cert not in anchors:
            wanted.append(cert)
    text = pki.certificates_to_pem(wanted)
    if text != published:
        tls.set_ca_intermediates(text)


def _first_ca(bundle: Optional[str]) -> str:
    """The first certificate PEM of a bundle (text only)."""
    bundle = bundle or ""
    end = bundle.find(_END)
    return bundle[:end + len(_END)] + "\n" if bundle.startswith(_BEGIN) and end >= 0 else ""


def publish_legacy_setting(tls, ca_pem: Optional[str] = None) -> None:
    """Set the legacy ``certificate_authority`` leader setting to the CA in use (default:
    the first of the published bundle). leader-set is applied at once and survives a
    failed hook, while the secret and the relation data that make a CA commit only when
    the hook succeeds: so a CA stored in this hook is left for the next hook (the app-bag
    write wakes the leader too). Without it a failed CA-creating hook would leave a
    published CA with no key. A leader-get only when the CA changed since the last write."""
    ca_pem = ca_pem or _first_ca(tls.get_ca_bundle())
    if not ca_pem or storage.digest(ca_pem) in _stored_here():
        return
    kv = unitdata.kv()
    if kv.get(LEGACY_WRITTEN) == storage.digest(ca_pem):
        return
    if hookenv.leader_get(ca_store.LEGACY_CA_SETTING) != ca_pem:
        hookenv.leader_set({ca_store.LEGACY_CA_SETTING: ca_pem})
    kv.set(LEGACY_WRITTEN, storage.digest(ca_pem))


def check_namespace(tls, settings: Settings) -> Optional[str]:
    """Note (for the leader's status) when ``tls_permitted_names`` permits names that the
    name constraints of the CA in use exclude: the operator widened it after the CA was
    made. The signer refuses those names (clients would refuse the whole certificate)
    until the rotate-ca action makes a CA for the current namespace; a CA is never
    replaced for this on its own. Judged again only when the config or the CA changed."""
    ca_pem = _first_ca(tls.get_ca_bundle())
    intermediates = tls.get_ca_intermediates()
    seen = storage.digest(json.dumps([settings.permitted_names_text, ca_pem, intermediates]))
    kv = unitdata.kv()
    if kv.get(NAMESPACE_CHECKED) == seen:
        return kv.get(status.LEADER_NAMESPACE)
    note = None
    if ca_pem:
        from . import pki

        try:  # the signing CA's: the intermediate under the first root, if any
            signing = pki.issuing_cas([pki.load_certificate(ca_pem)], pki.load_certificates(
                intermediates) if intermediates else [])[0]
            constraints = pki.name_constraints_of(signing)
        except pki.PKIError:
            constraints = None
        outside = settings.namespace.not_within(constraints) if constraints else []
        if outside:
            shown = ", ".join(outside[:3]) + (f" and {len(outside) - 3} more"
                                               if len(outside) > 3 else "")
            note = (f"tls_permitted_names permits {shown}, outside the CA's name "
                    "constraints: run the rotate-ca action for a CA that covers it")
            hookenv.log(f"layer:tls: {note}", hookenv.WARNING)
    kv.set(status.LEADER_NAMESPACE, note)
    kv.set(NAMESPACE_CHECKED, seen)
    return note


def rollover_running(tls) -> bool:
    """A CA rollover runs while the published bundle holds more than one CA."""
    return (tls.get_ca_bundle() or "").count(_BEGIN) > 1


def switch_running(tls) -> bool:
    """A CA rollover (two roots) or a same-root reissue runs."""
    return rollover_running(tls) or reissue_running(tls)


def reissue_running(tls) -> bool:
    """A same-root rollover runs: the signing CA changed under the root already trusted
    (an operator's or a provider's new intermediate), and ``ca-intermediates`` still holds
    an intermediate that is not the stored CA's, or a unit's published certificate was
    not issued by the stored CA. Judged from the CA store and the published data, so a
    later leader finds it again; text only (unitdata) while the bundle and intermediates
    are those last judged quiet."""
    bundle = tls.get_ca_bundle() or ""
    if bundle.count(_BEGIN) != 1:
        return False  # no CA yet, or a rollover between two roots
    intermediates = tls.get_ca_intermediates() or ""
    seen = storage.digest(json.dumps([bundle, intermediates]))
    kv = unitdata.kv()
    if kv.get(REISSUE_CHECKED) == seen:
        return False
    from . import pki

    material = ca_store.load(hookenv.leader_get)
    if material is None:
        return False
    try:
        stored = pki.load_certificates(material.certificate_pem)[0]
        chain = pki.load_certificates(material.chain_pem) if material.chain_pem else []
        published = pki.load_certificates(intermediates) if intermediates else []
    except pki.PKIError:
        return False  # ensure_ca replaces an unreadable CA; bad relation data is rewritten
    own = [stored, *chain[:-1]] if chain else []
    ski = pki.subject_key_id(stored)
    barred = set(tls.get_barred())
    running = (any(c not in own for c in published)
               or any(aki is not None and aki != ski  # legacy leaves may have no AKI
                      for aki in (_issuer_key_id(pem) for u, pem in
                                  tls.get_certificates().items() if u not in barred)))
    if not running:
        kv.set(REISSUE_CHECKED, seen)
    return running


def root_switch_problem(current, new) -> Optional[str]:
    """Why the application cannot switch from ``current`` to ``new`` (both
    ``pki.CertificateAuthority``), or None. Under one root, the same-root switch moves the
    leaves from one intermediate to another; a root and a CA under it (a self-signed
    operator CA, then an intermediate it signed, or back) is not such a switch: the root
    signs leaves without any intermediate, so neither its CRL nor the units'
    acknowledgements follow it through the switch."""
    if current.anchor != new.anchor or (current.chain and new.chain):
        return None
    return ("the new CA and the one in use share their root and one of them is that root "
            "itself: switch through another CA (clear tls_ca_secret, or relate no "
            "provider, until a self-made CA serves), then to the new one")


def keep_ca(ca, source: str) -> None:
    """Store ``ca`` with ``source`` without publishing it: the CA in use newly named by
    the operator, a provider's renewal in place, or a provider's first CA."""
    _keep(ca, source)


def stored_source() -> str:
    """Where the stored CA came from ("" when self-made or legacy, or none stored)."""
    material = ca_store.load(hookenv.leader_get)
    return material.source if material is not None else ""


def start_rollover(tls, settings: Settings, why: str, new_ca=None, source: str = "") -> None:
    """Keep a new CA and publish it in front of the old one: ``new_ca`` (a
    ``pki.CertificateAuthority`` that passed ``_usable_ca``: an operator's CA, an
    intermediate signed by a provider; ``source`` says which) or, by default, a fresh
    self-made one. The phases that follow run in ``rollover_step``. Raises RolloverError
    when one is already running (unless the stored CA cannot sign any more: then
    ``ensure_ca`` replaces it). A new CA under another root is trusted next to the old
    root first (the bundle holds two roots); one under the root already trusted (a new
    intermediate) is published next to the old intermediate, so that every unit can
    present its chain while the leaves are reissued from it (``reissue_running``)."""
    from . import pki

    running = switch_running(tls)
    current = ensure_ca(tls, settings)  # must be readable: never fork an unknown CA
    if storage.digest(pki.certificate_to_pem(current.anchor)) in _stored_here():
        return  # the stored CA could not sign any more: ensure_ca started a rollover
    if running:
        raise RolloverError("a CA rollover is already in progress")
    from . import revocation

    # the old CA's key leaves the store now: its last CRL must last until it expires
    revocation.maintain_crls(tls, settings, final_for=current)
    new = new_ca if new_ca is not None else _new_ca(settings, generated=True)
    _keep(new, source)
    publish_ca(tls, new, settings)
    unitdata.kv().set(ROLLOVER_WHY, why)
    unitdata.kv().unset(REISSUE_CHECKED)
    hookenv.log(f"layer:tls: CA rollover started ({why}): the new CA is trusted next to the "
                "old one; certificates are reissued once every unit trusts it")


def rollover_due(tls, now: Optional[float] = None) -> bool:
    """True when the CA has lived its configured fraction. Reads unitdata and the bundle
    text only; a time remembered for another CA (leadership moved meanwhile) is ignored."""
    due = unitdata.kv().get(ROLLOVER_AT)
    current = _first_ca(tls.get_ca_bundle())
    return (isinstance(due, dict) and due.get("ca") == storage.digest(current)
            and (now if now is not None else time.time()) >= due.get("at", float("inf")))


def rollover_step(tls, settings: Settings) -> str:
    """Advance a running CA rollover as far as the units allow; returns where it stands.

    1. every unit trusts the bundle new+old (its ``tls-installed`` names the bundle);
    2. then every certificate not issued by the new CA is reissued from its unit's CSR;
    3. once every unit uses a certificate from the new CA, the old CA leaves the bundle.
    The state is the published data itself, so a crash between phases resumes here.
    Under the same root (``reissue_running``) the same phases run on what changed, the
    intermediates: 1. every unit installed them and the CRLs they verify (a workload
    that checks CRLs refuses a leaf whose issuer has none); 3. the old intermediate (and
    its CRL) leaves ``ca-intermediates`` once every unit uses its new certificate.
    """
    from . import pki, unit

    ca = ensure_ca(tls, settings)
    publish_ca(tls, ca, settings)
    unit.install_certificate(tls, settings)  # the leader's own, as any unit would
    certs = tls.get_certificates()
    acks = tls.installed_acks()
    # a barred unit gets no certificate from the new CA: the rollover does not wait for it
    units = sorted((set(tls.peer_units()) | {tls.local_unit_name}) - set(tls.get_barred()))
    serving = [u for u in units if u in certs]
    untrusting = _untrusting(tls)
    if untrusting:
        return _rollover_log(f"waiting for {_names(untrusting)} to trust the new CA")
    ca_ski = pki.subject_key_id(ca.certificate)
    # Every unit must hold a certificate from the new CA before the old CA may go: also
    # units with none in the app data yet (e.g. still on a legacy certificate). One that
    # cannot get one keeps the old CA trusted: the safe side (its refusal is recorded and
    # not retried until something it depends on changes).
    stale = [u for u in units if u not in certs or _issuer_key_id(certs[u]) != ca_ski]
    if stale:
        csrs = tls.get_csr_map()
        outcome = _sign_batch(tls, settings, ca, {u: csrs[u] for u in stale if u in csrs})
        if not outcome.signed:
            return _rollover_log(f"waiting for {_names(stale)} to get a certificate "
                                 "from the new CA")
        unit.install_certificate(tls, settings)
        return _rollover_log(f"reissued {outcome.signed} certificate(s) from the new CA")
    not_using = [u for u in serving
                 if acks.get(u, {}).get("certificate") != storage.digest(certs[u])]
    if not_using:
        return _rollover_log(f"waiting for {_names(not_using)} to use their new "
                             "certificate")
    tls.set_ca_bundle(pki.certificate_to_pem(ca.anchor))
    publish_intermediates(tls, ca, final=True)
    unit.install_certificate(tls, settings)
    unitdata.kv().unset(ROLLOVER_WHY)
    return _rollover_log(FINISHED)


FINISHED = "finished: the old CA left the bundle"


def rollover_status(phase: Optional[str]) -> Optional[str]:
    """What the leader's status says of a running rollover: why it started (when this
    leader knows) and the phase it waits in, which names the units it waits for."""
    if not phase or phase == FINISHED:
        return None
    why = unitdata.kv().get(ROLLOVER_WHY)
    return f"CA rollover ({why}): {phase}" if why else f"CA rollover: {phase}"


def _names(units: List[str]) -> str:
    shown = ", ".join(units[:3])
    return shown + (f" and {len(units) - 3} more" if len(units) > 3 else "")


def _untrusting(tls) -> List[str]:
    """Units holding a certificate that have not acknowledged the published bundle and
    intermediates (``unit.trust_digest``)."""
    from . import unit

    certs, acks = tls.get_certificates(), tls.installed_acks()
    bundle_digest = unit.trust_digest(tls.get_ca_bundle(), tls.get_ca_intermediates())
    units = set(tls.peer_units()) | {tls.local_unit_name}
    return sorted(u for u in units if u in certs
                  and acks.get(u, {}).get("ca-bundle") != bundle_digest)


def _issuer_key_id(cert_pem: str) -> Optional[bytes]:
    """The authority key id of a published certificate; None if it cannot be read."""
    from . import pki

    try:
        return pki.authority_key_id(pki.load_certificate(cert_pem))
    except Exception:  # noqa: BLE001 - relation data: an unreadable one counts as stale
        return None


def _rollover_log(state: str) -> str:
    hookenv.log(f"layer:tls: CA rollover: {state}")
    return state


def requests_outstanding(tls) -> List[str]:
    """Units Juju is bringing up (goal-state) that have not published a CSR yet.

    While a deploy or a scale-out is under way, the leader waits for them and signs
    everything in one batch: each publication wakes every peer, so signing per arriving
    CSR would cost about N publications x N wake-ups. update-status signs regardless, so
    a unit that never asks delays the others by one update-status interval at most."""
    try:
        goal = hookenv.goal_state()
    except Exception:  # noqa: BLE001 - no goal-state (Juju < 2.4) or an odd answer: no wait
        return []
    units = (goal or {}).get("units") or {}
    expected = {name for name, info in units.items()
                if (info or {}).get("status") not in ("dying", "dead")}
    return sorted(expected - set(tls.get_csr_map()))


def _input_digest(csr: str, unit_claims: dict, context: str, settings: Settings) -> str:
    """What a refusal depended on: the CSR, the unit's claims, the extra SANs, the
    permitted names and ``context`` (the CA, every unit's claims and the certificates
    issued: a name or key held by another unit can be freed), so a refused CSR is tried
    again once any of them changed."""
    return storage.digest(json.dumps([csr, unit_claims, context, settings.extra_sans,
                                      settings.namespace.describe()], sort_keys=True))


def _sign_batch(tls, settings: Settings, ca, pending: Dict[str, str]) -> SigningOutcome:
    """Check and sign ``pending`` (unit -> CSR) with ``ca`` and publish the certificates
    and the refusals, each in one write. A CSR refused before is skipped until what the
    refusal depended on changed, so a hostile unit costs nothing per hook."""
    from . import revocation, signer

    # A barred unit (revoke-certificate) holds no name: what it claimed is free for the others.
    barred = set(tls.get_barred())
    units = sorted((set(tls.peer_units()) | {tls.local_unit_name}) - barred)
    claims = {unit: tls.unit_claims(unit) for unit in units}
    issued = {u: c for u, c in tls.get_certificates().items() if u not in barred}
    from . import pki

    ca_pem = pki.certificate_to_pem(ca.certificate)
    context = storage.digest(json.dumps([claims, issued, sorted(barred), ca_pem],
                                        sort_keys=True))
    kv = unitdata.kv()
    refused_before = kv.get(REJECTED_INPUTS) or {}
    digests = {u: _input_digest(csr, claims.get(u, {}), context, settings)
               for u, csr in pending.items()}
    todo = {u: csr for u, csr in pending.items() if refused_before.get(u) != digests[u]}
    if not todo:
        return SigningOutcome(0, {}, None)
    result = signer.sign_batch(ca, {u: c for u, c in todo.items() if u not in barred},
                               claims, issued, settings.extra_sans,
                               namespace=settings.namespace,
                               lifetime_days=settings.certificate_lifetime_days)
    if result.certificates:
        tls.set_certs(result.certificates)
        revocation.record_issued(result.certificates)
        hookenv.log(f"layer:tls: signed {len(result.certificates)} certificate(s)")
    rejections = {u: f"{r.code}: {r.reason}" for u, r in result.rejections.items()}
    rejections.update({u: revocation.BARRED_REASON for u in todo if u in barred})
    for unit, reason in rejections.items():
        hookenv.log(f"layer:tls: refused the CSR of {unit}: {reason}", hookenv.WARNING)
    tls.update_rejections({u: {"reason": reason, "csr-sha256": storage.digest(todo[u])}
                           for u, reason in rejections.items()},
                          cleared=list(result.certificates))
    refused_now = {u: d for u, d in refused_before.items() if u in pending and u not in todo}
    refused_now.update({u: digests[u] for u in rejections})
    kv.set(REJECTED_INPUTS, refused_now)
    return SigningOutcome(len(result.certificates), rejections, None)


def sign_pending(tls, settings: Settings) -> SigningOutcome:
    """Check and sign every pending CSR (this unit's included) in one batch and publish.

    Waits while goal-state still expects units that have not asked (one batch for a
    deploy) and, during a CA rollover, until every unit trusts the new CA.
    """
    pending = tls.pending_csrs()
    if not pending and tls.get_ca_bundle():
        return SigningOutcome(0, {}, None)
    problem = settings.problem()
    if problem:
        return SigningOutcome(0, {}, problem)
    if pending and hookenv.hook_name() != "update-status":
        missing = requests_outstanding(tls)
        if missing:
            hookenv.log(f"layer:tls: {len(pending)} request(s) wait until {len(missing)} "
                        "more unit(s) ask, to sign them in one batch (at the latest on "
                        "update-status)")
            return SigningOutcome(0, {}, None)
    if rollover_running(tls) and _untrusting(tls):
        # A certificate from the new CA would not be trusted yet: a unit that has one keeps
        # it until every unit trusts the new CA; a unit with none (a new unit) loses nothing.
        issued = tls.get_certificates()
        pending = {u: csr for u, csr in pending.items() if u not in issued}
        if not pending:
            return SigningOutcome(0, {}, None)
    try:
        ca = ensure_ca(tls, settings)
    except ca_store.CAUnavailable as exc:
        hookenv.log(f"layer:tls: cannot sign: {exc}", hookenv.ERROR)
        return SigningOutcome(0, {}, str(exc))
    publish_ca(tls, ca, settings)
    return _sign_batch(tls, settings, ca, pending)


def adopt_ca(tls, settings: Settings, ca_cert_pem: str, ca_key_pem: Optional[str],
             legacy_certificates: Dict[str, str]) -> str:
    """Take over an existing PKI (the legacy easy-rsa layer's) without forcing rotation.

    With the old CA's key, that CA becomes the application's CA. Without it (lost on a
    legacy leader change) a new CA is made and the old CA certificate stays in the bundle
    behind it: a CA rollover, so the old certificates keep working until each unit has one
    from the new CA. Either way, each unit's existing certificate (``legacy_certificates``:
    unit -> PEM) is published as its current one when it is still valid, was issued by
    the old CA and certifies the key of the unit's current CSR; the others are signed
    normally. Never replaces a CA that is already stored. Returns what was done.
    """
    from . import pki

    if ca_store.load(hookenv.leader_get) is not None:
        return "an application CA exists already; nothing adopted"
    old_ca_cert = pki.load_certificate(ca_cert_pem)
    if ca_key_pem:
        ca = pki.CertificateAuthority(old_ca_cert, pki.load_private_key(ca_key_pem))
        ca_store.store(ca_store.CAMaterial(ca_cert_pem, ca_key_pem), hookenv.leader_set)
        if ca_store.secrets_supported():
            _stored_here().add(storage.digest(pki.certificate_to_pem(old_ca_cert)))
        publish_ca(tls, ca, settings)
        what = "adopted the existing CA"
    else:
        ca = _new_ca(settings, generated=True)
        _keep(ca)
        tls.set_ca_bundle(pki.certificate_to_pem(old_ca_cert))
        publish_ca(tls, ca, settings)  # new CA first, the old one behind it: a rollover
        what = "made a new CA (the old CA key is gone); the old CA stays trusted meanwhile"
    csrs = tls.get_csr_map()
    kept = {}
    for unit_name, cert_pem in legacy_certificates.items():
        try:
            cert = pki.load_certificate(cert_pem)
            csr_key = pki.load_csr_public_key(csrs[unit_name])
            pki.verify_certificate(cert, [old_ca_cert], purpose="client")
        except (KeyError, pki.PKIError):
            continue
        if pki.public_key_fingerprint(cert.public_key()) == pki.public_key_fingerprint(csr_key):
            kept[unit_name] = cert_pem
    tls.set_certs(kept)
    hookenv.log(f"layer:tls: {what}; kept {len(kept)} existing certificate(s)")
    return what


def drop_departed(tls) -> None:
    """Remove departed units' certificates, CSR digests and rejections from the app data."""
    from . import revocation

    departed = tls.departed_units()
    for unit in departed:
        tls.remove_unit(unit)
        hookenv.log(f"layer:tls: removed the certificate of departed unit {unit}")
    revocation.forget_departed(tls, departed)
