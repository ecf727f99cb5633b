"""Revocation on the leader: revoke a unit's certificates and bar it, lift the bar, and keep
one CRL per CA of the bundle published and fresh.

The state is the application data (``barred``, ``revoked``, ``crl``: see the interface
README), so any later leader carries on. ``cryptography`` is loaded only when a CRL must be
(re)built: ``maintain_crls`` compares texts and a time from unitdata first.
"""
from __future__ import annotations

import datetime
import json
import time
from typing import Dict, List, Optional

from charmhelpers.core import hookenv, unitdata

from . import ca_store, storage
from .settings import Settings

# The interface keeps at most this many revoked records (interface-tls MAX_REVOKED); a
# revocation that would need more is refused rather than dropping a still-valid one.
MAX_REVOKED_RECORDS = 1000

ISSUED = "layer.tls.leader.issued"  # unit -> [[serial hex, CA key id hex, notAfter], ...]
CRL_STATE = "layer.tls.leader.crl-state"  # {"inputs": digest, "renew-at": epoch seconds}
MAX_ISSUED_PER_UNIT = 8
BARRED_CODE = "barred"
BARRED_REASON = ("barred: the operator revoked this unit's certificate "
                 "(revoke-certificate); unbar-unit lifts the bar")


class RevocationError(Exception):
    """The action cannot do what was asked (unknown unit, the leader itself...)."""


def record_issued(certificates: Dict[str, str], now: Optional[float] = None) -> None:
    """Remember the serials this leader issued (a few per unit, until they expire), so that
    revoking a unit also revokes the certificates it was given before its current one."""
    from . import pki

    now = now if now is not None else time.time()
    kv = unitdata.kv()
    issued = kv.get(ISSUED) or {}
    if not isinstance(issued, dict):
        issued = {}
    for unit, pem in certificates.items():
        try:
            entry = _describe(pki.load_certificate(pem))
        except pki.PKIError:
            continue
        kept = [e for e in issued.get(unit) or [] if isinstance(e, list) and len(e) == 3
                and isinstance(e[2], (int, float)) and e[2] > now and e != entry]
        issued[unit] = (kept + [entry])[-MAX_ISSUED_PER_UNIT:]
    kv.set(ISSUED, issued)


def _describe(cert) -> list:
    from . import pki

    aki = pki.authority_key_id(cert)
    return [format(cert.serial_number, "x"), aki.hex() if aki else "",
            int(cert.not_valid_after_utc.timestamp())]


def revoke(tls, settings: Settings, unit: str, reason: str) -> dict:
    """Revoke every certificate of ``unit`` the leader knows (the published one and those
    this leader issued before), remove its certificate from the application data, bar it
    (its CSRs are refused with ``barred``, and the names it claimed are free for the
    others) and publish new CRLs. Raises RevocationError for a unit it cannot revoke."""
    from . import crl, pki

    problem = crl.reason_problem(reason)
    if problem:
        raise RevocationError(problem)
    if unit == tls.local_unit_name:
        raise RevocationError("the leader cannot revoke its own certificate (it holds the "
                              "CA key: move leadership away first, then rotate-ca)")
    certificates = tls.get_certificates()
    known = set(tls.peer_units()) | set(certificates) | set(tls.get_barred())
    if unit not in known:
        raise RevocationError(f"{unit} is not a unit of this application")
    entries = {}
    if unit in certificates:
        try:
            described = _describe(pki.load_certificate(certificates[unit]))
            entries[(described[0], described[1])] = described
        except pki.PKIError:
            pass
    now = time.time()
    for entry in (unitdata.kv().get(ISSUED) or {}).get(unit) or []:
        if (isinstance(entry, list) and len(entry) == 3 and isinstance(entry[0], str)
                and isinstance(entry[1], str) and isinstance(entry[2], (int, float))
                and entry[2] > now):
            entries.setdefault((entry[0], entry[1]), entry)
    records = [r for r in tls.get_revoked() if r["not-after"] > now]
    listed = {(r["serial"], r["issuer"]) for r in records}
    new = [{"serial": s, "issuer": i, "unit": unit, "reason": reason, "date": int(now),
            "not-after": int(n)} for (s, i), (_, _, n) in sorted(entries.items())
           if (s, i) not in listed and i]
    limit = MAX_REVOKED_RECORDS
    if len(records) + len(new) > limit:
        # never drop a revoked certificate that is still valid: that would un-revoke it
        raise RevocationError(
            f"the revoked list is full: it would hold {len(records) + len(new)} unexpired "
            f"certificates, over {limit} (records leave it when their certificates expire)")
    tls.set_revoked(records + new)
    tls.set_barred(tls.get_barred() + [unit])
    tls.remove_unit(unit)
    csr = tls.get_csr_map().get(unit)
    if csr:
        tls.update_rejections({unit: {"reason": BARRED_REASON,
                                      "csr-sha256": storage.digest(csr)}})
    hookenv.log(f"layer:tls: revoked {len(new)} certificate(s) of {unit} ({reason}); "
                f"{unit} is barred", hookenv.WARNING)
    maintain_crls(tls, settings, force=True)
    return {"unit": unit, "revoked": ",".join(s for s, _ in sorted(entries)) or "none",
            "message": f"{unit} is barred until unbar-unit; its certificates are in the CRL"}


def unbar(tls, unit: str) -> dict:
    """Lift the bar on ``unit``: its next CSR is signed normally (what was revoked stays
    revoked)."""
    barred = tls.get_barred()
    if unit not in barred:
        raise RevocationError(f"{unit} is not barred")
    tls.set_barred([u for u in barred if u != unit])
    hookenv.log(f"layer:tls: the bar on {unit} was lifted")
    return {"unit": unit, "message": f"{unit} may get a certificate again"}


def forget_departed(tls, units: List[str]) -> None:
    """A departed unit's name never comes back: its bar goes (its revocations stay)."""
    barred = tls.get_barred()
    if any(u in barred for u in units):
        tls.set_barred([u for u in barred if u not in units])


def _inputs(bundle: str, revoked: list, crls: dict, intermediates: str = "") -> str:
    return storage.digest(json.dumps([bundle, revoked, crls, intermediates], sort_keys=True))


def maintain_crls(tls, settings: Settings, *, force: bool = False,
                  final_for=None) -> None:
    """Publish one CRL per CA of the bundle, each listing the revoked serials it issued.

    A CRL is rebuilt when the revoked list or the bundle changed, when it does not verify,
    or once ``tls_renew_fraction`` of its validity passed (on update-status, or any hook
    after that time). Only the signing CA's CRL can be rebuilt: an older CA's CRL (during
    a rollover) is kept as it was published. ``final_for``: a CA about to be replaced,
    whose CRL is rebuilt now to last until it expires (its key goes with the rollover).
    Text comparisons only unless something changed or is due."""
    bundle = tls.get_ca_bundle()
    if not bundle:
        return
    kv = unitdata.kv()
    revoked, published = tls.get_revoked(), tls.get_crls()
    intermediates = tls.get_ca_intermediates()
    state = kv.get(CRL_STATE) or {}
    if (not force and final_for is None and isinstance(state, dict)
            and state.get("inputs") == _inputs(bundle, revoked, published, intermediates)
            and time.time() < (state.get("renew-at") or 0)):
        return
    from . import crl, leader, pki

    try:  # one CRL per CA that issues leaves: a root's intermediate, else the root itself
        cas = pki.issuing_cas(pki.load_certificates(bundle), pki.load_certificates(
            intermediates) if intermediates else [])
    except pki.PKIError:
        return  # the leader's own bundle: the signing path replaces it
    ca = final_for
    if ca is None:
        # read only: making or replacing a CA is the signing path's job (ensure_ca)
        try:
            material = ca_store.load(hookenv.leader_get)
            if material is not None:
                ca = leader._usable_ca(material.certificate_pem, material.private_key_pem,
                                       "the stored CA", material.chain_pem)
        except ca_store.CAUnavailable as exc:
            hookenv.log(f"layer:tls: the CRLs are not renewed: {exc}", hookenv.WARNING)
    signer_id = crl.key_id_hex(ca.certificate) if ca is not None else None
    try:  # a bad value blocks through settings.problem(); the CRLs still get renewed
        fraction = min(max(float(settings.renew_fraction), 0.1), 0.95)
    except (TypeError, ValueError):
        fraction = 0.67
    now = pki.utcnow()
    result: Dict[str, str] = {}
    renew_at = float("inf")
    for cert in cas:
        kid = crl.key_id_hex(cert)
        if kid is None:
            continue
        want = sorted(int(r["serial"], 16) for r in revoked if r["issuer"] == kid)
        try:
            current = crl.load_crl(published[kid]) if kid in published else None
        except pki.PKIError:
            current = None
        usable = current is not None and crl.crl_problem(current, cert, now=now) is None
        if (usable and crl.revoked_serials(current) == want and final_for is None
                and not crl.renewal_due(current, fraction, now=now)):
            result[kid] = published[kid]
            renew_at = min(renew_at, crl.renew_at(current, fraction))
            continue
        if kid != signer_id:
            if usable:
                result[kid] = published[kid]  # another CA's: no key for it here, keep it
                if crl.revoked_serials(current) != want:
                    hookenv.log(f"layer:tls: the CRL of the previous CA {kid[:16]} cannot "
                                "list new revocations (its key left with the rollover)",
                                hookenv.WARNING)
            else:
                hookenv.log(f"layer:tls: no CRL for the CA {kid[:16]}: its key is not here",
                            hookenv.WARNING)
            continue
        dates = {int(r["serial"], 16): r["date"] for r in revoked if r["issuer"] == kid}
        reasons = {int(r["serial"], 16): r["reason"] for r in revoked if r["issuer"] == kid}
        entries = [crl.Revoked(s, datetime.datetime.fromtimestamp(
            dates[s], datetime.timezone.utc), reasons[s]) for s in want]
        lifetime = (cert.not_valid_after_utc - now if final_for is not None
                    else crl.LIFETIME)
        number = crl.crl_number(current) + 1 if current is not None else 1
        try:
            built = crl.build_crl(ca, entries, number, now=now, lifetime=lifetime)
        except pki.PKIError as exc:
            hookenv.log(f"layer:tls: cannot build the CRL: {exc}", hookenv.ERROR)
            continue
        result[kid] = crl.crl_to_pem(built)
        renew_at = min(renew_at, crl.renew_at(built, fraction))
        hookenv.log(f"layer:tls: published CRL number {number} ({len(entries)} revoked) "
                    f"for the CA {kid[:16]}")
    tls.set_crls(result)
    if ca is None:  # no usable CA now (being made, or unreadable): look again in an hour
        renew_at = min(renew_at, time.time() + 3600)
    kv.set(CRL_STATE, {"inputs": _inputs(bundle, revoked, tls.get_crls(), intermediates),
                       # nothing renewable here (no CA key for any): look again in a day
                       "renew-at": renew_at if renew_at != float("inf")
                       else time.time() + 86400})
