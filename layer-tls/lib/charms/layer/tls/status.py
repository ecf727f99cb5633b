"""The workload status layer:tls shows, computed from unitdata and the relation (no crypto).

Set at the end of every hook, and only when it changed (status-set is a hook tool call).
"""
from __future__ import annotations

import time
from typing import Optional, Tuple

from charmhelpers.core import hookenv, unitdata

from . import ca_store, storage

PEER_ENDPOINT = "certificates"


CONFIG_PROBLEM = "layer.tls.config-problem"  # set on config-changed (settings.problem())
LEADER_BLOCKED = "layer.tls.leader.blocked"  # why the leader cannot sign, or None
LEADER_ROLLOVER = "layer.tls.leader.rollover"  # a running CA rollover's phase, or None


def compute(tls, is_leader: bool, leader_blocked: Optional[str]) -> Tuple[str, str]:
    """(state, message) for this unit now."""
    kv = unitdata.kv()
    if kv.get(CONFIG_PROBLEM):
        return "blocked", kv.get(CONFIG_PROBLEM)
    if is_leader and leader_blocked:
        return "blocked", f"cannot sign certificates: {leader_blocked}"
    # The CSR as published (what the leader judged), not unitdata's copy.
    own_csr = tls.own_csr() if tls is not None else None
    rejection = tls.get_rejection() if tls is not None else None
    if rejection and own_csr and rejection.get("csr-sha256") == storage.digest(own_csr):
        return "blocked", f"certificate request refused: {rejection.get('reason')}"
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
