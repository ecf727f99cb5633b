"""The workload status layer:tls shows, computed from unitdata and the relation (no crypto).

Set at the end of every hook, and only when it changed (status-set is a hook tool call).
"""
from __future__ import annotations

import time
from typing import Optional, Tuple

from charmhelpers.core import hookenv, unitdata

from . import ca_store, storage
from .sans import MAX_CSR_BYTES

PEER_ENDPOINT = "certificates"


CONFIG_PROBLEM = "layer.tls.config-problem"  # set on config-changed (settings.problem())
LEADER_BLOCKED = "layer.tls.leader.blocked"  # why the leader cannot sign, or None
# A certificate published for this unit that it cannot install because of its validity
# dates: {"certificate": digest, "reason": text, "asked": new requests made for it}
RECEIVED_PROBLEM = "layer.tls.received-problem"
MAX_ASKS = 2  # new requests after certificates born expired, then wait (clocks skewed?)
LEADER_ROLLOVER = "layer.tls.leader.rollover"  # a running CA rollover's phase, or None
# tls_permitted_names permits names the CA's name constraints exclude (leader.check_namespace)
LEADER_NAMESPACE = "layer.tls.leader.namespace"
# what the leader says of its CA provider (ca_provider): {"blocked": bool, "message": str}
LEADER_PROVIDER = "layer.tls.leader.ca-provider"
# the operator's CA (operator_ca): why the secret of tls_ca_secret is not used, or None;
# and a note when the CA in use from it nears its end
OPERATOR_CA_PROBLEM = "layer.tls.leader.operator-ca-problem"
OPERATOR_CA_NOTE = "layer.tls.leader.operator-ca-note"


def compute(tls, is_leader: bool, leader_blocked: Optional[str]) -> Tuple[str, str]:
    """(state, message) for this unit now."""
    kv = unitdata.kv()
    if kv.get(CONFIG_PROBLEM):
        return "blocked", kv.get(CONFIG_PROBLEM)
    if is_leader and leader_blocked:
        return "blocked", f"cannot sign certificates: {leader_blocked}"
    if is_leader and kv.get(OPERATOR_CA_PROBLEM):
        return "blocked", kv.get(OPERATOR_CA_PROBLEM)
    if is_leader and kv.get(LEADER_NAMESPACE):
        return "blocked", kv.get(LEADER_NAMESPACE)
    provider = (kv.get(LEADER_PROVIDER) or {}) if is_leader else {}
    if provider.get("blocked") and provider.get("message"):
        return "blocked", provider["message"]
    # The CSR as published (what the leader judged), not unitdata's copy.
    own_csr = tls.own_csr() if tls is not None else None
    if own_csr and kv.get(storage.CSR_NAMES) == {"dns": [], "ips": []}:
        return "blocked", ("none of this unit's addresses and host names is inside "
                           "tls_permitted_names")
    rejection = tls.get_rejection() if tls is not None else None
    if rejection and own_csr and rejection.get("csr-sha256") == storage.digest(own_csr):
        return "blocked", f"certificate request refused: {rejection.get('reason')}"
    file_problems = kv.get(storage.FILE_PROBLEMS)
    if file_problems:
        path, reason = file_problems[0]
        return "blocked", f"cannot install {path}: {reason}"
    received = kv.get(RECEIVED_PROBLEM)
    if received:
        asked = received.get("asked", 0)
        then = ("waiting for the leader to replace it" if not asked
                else "asked for a new one" if asked <= MAX_ASKS
                else "not asking again: check the clocks of this unit and the leader")
        return "blocked", f"{received.get('reason')}; {then}"
    if own_csr and len(own_csr) > MAX_CSR_BYTES and not tls.signed_cert_is_current():
        return "blocked", (f"this unit's certificate request is {len(own_csr)} bytes, over the "
                           f"signer's limit of {MAX_CSR_BYTES}: too many names (extra_sans)")
    validity = kv.get(storage.INSTALLED_VALIDITY)
    if validity:
        now = time.time()
        expiry = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(validity[1]))
        if now >= validity[1]:
            return "blocked", f"certificate expired on {expiry}; renewal requested, not signed yet"
        message = f"certificate valid until {expiry}"
        renew_at = kv.get(storage.RENEW_AT) or validity[1]
        if kv.get(storage.RENEWING) and now > renew_at + (validity[1] - renew_at) / 2:
            message += "; WARNING: close to expiry and the renewal is not signed yet"
        if is_leader and not ca_store.secrets_supported():
            message += " (CA key kept in leader settings: this Juju has no secrets)"
        if is_leader and kv.get(LEADER_ROLLOVER):
            message += f"; {kv.get(LEADER_ROLLOVER)}"
        if provider.get("message"):
            message += f"; {provider['message']}"
        if is_leader and kv.get(OPERATOR_CA_NOTE):
            message += f"; {kv.get(OPERATOR_CA_NOTE)}"
        barred = tls.get_barred() if is_leader and tls is not None else []
        if barred:
            shown = ", ".join(barred[:3]) + (f" and {len(barred) - 3} more"
                                             if len(barred) > 3 else "")
            message += f"; barred: {shown}"
        return "active", message
    if tls is None or not own_csr:
        return "waiting", "waiting for the peer relation to request a certificate"
    if not tls.get_ca_bundle():
        return "waiting", "waiting for the leader to create the CA"
    return "waiting", "waiting for the leader to sign the certificate request"


def update() -> None:
    """Compute and set the status if it changed and the charm lets the layer manage it."""
    from charms.reactive import endpoint_from_name

    kv = unitdata.kv()
    _note_file_problems(kv)
    tls = endpoint_from_name(PEER_ENDPOINT)
    is_leader = tls.is_leader if tls is not None else hookenv.is_leader()  # cached per hook
    state, message = compute(tls, is_leader, kv.get(LEADER_BLOCKED))
    if kv.get(storage.LAST_STATUS) == [state, message]:
        return
    from . import settings

    if not settings.load().manage_status:
        return
    hookenv.status_set(state, message)
    kv.set(storage.LAST_STATUS, [state, message])


def _note_file_problems(kv) -> None:
    """Keep what the last file sync of this hook could not write (logged once when it
    changes), so that every later hook shows it until a sync succeeds."""
    problems = storage.take_sync_problems()
    if problems is None:
        return  # no sync in this hook: the last known state stands
    problems = [list(p) for p in problems] or None
    if problems != kv.get(storage.FILE_PROBLEMS):
        for path, reason in problems or ():
            hookenv.log(f"layer:tls: cannot install {path}: {reason}", hookenv.ERROR)
        if not problems:
            hookenv.log("layer:tls: the certificate, key and CA files are in place again")
        kv.set(storage.FILE_PROBLEMS, problems)


def check_received(tls, settings) -> None:
    """After ``unit.install_certificate``: when the certificate published for this unit's
    current request was not installed because it is expired (or not valid yet), say so
    (ERROR log, blocked status) and ask for a new one with a new key, at most MAX_ASKS
    times in a row, instead of waiting silently for a certificate that never comes (the
    leader counts it as issued). Judged by what is installed, not by the install's outcome
    (a refused certificate may still come with a new CA bundle that was installed). Text
    comparisons only unless a certificate was refused."""
    kv = unitdata.kv()
    cert_pem = tls.get_signed_cert() if tls.signed_cert_is_current() else None
    if not cert_pem or kv.get(storage.INSTALLED_CERT) == cert_pem:
        if kv.get(RECEIVED_PROBLEM):
            kv.unset(RECEIVED_PROBLEM)
        return
    record = kv.get(RECEIVED_PROBLEM) or {}
    digest = storage.digest(cert_pem)
    if record.get("certificate") == digest:
        return  # judged already
    from . import pki

    try:
        cert = pki.load_certificate(cert_pem)
    except pki.PKIError:
        return  # unreadable: install_certificate logged it, the leader's policy is at fault
    now = pki.utcnow()
    if cert.not_valid_after_utc <= now:
        reason = (f"the certificate published for this unit expired on "
                  f"{cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC")
    elif cert.not_valid_before_utc > now:
        reason = (f"the certificate published for this unit is not valid before "
                  f"{cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC")
    else:
        return
    if tls.get_signed_csrs().get(tls.local_unit_name) is None:
        # a legacy leader's (or a legacy key's) certificate: no claim that it was issued
        # for this request, and the leader replaces it on adoption; the key stays
        kv.set(RECEIVED_PROBLEM, {"certificate": digest, "reason": reason, "asked": 0})
        hookenv.log(f"layer:tls: {reason}; waiting for the leader to replace it",
                    hookenv.ERROR)
        return
    asked = int(record.get("asked", 0)) + 1
    kv.set(RECEIVED_PROBLEM, {"certificate": digest, "reason": reason, "asked": asked})
    if asked > MAX_ASKS:
        hookenv.log(f"layer:tls: {reason}; not asking again (clocks skewed?)", hookenv.ERROR)
        return
    hookenv.log(f"layer:tls: {reason}; asking for a new one", hookenv.ERROR)
    from . import unit

    unit.request_certificate(tls, settings, new_key=True)
