"""Send the CA bundle the units trust to related applications (certificate_transfer).

What is sent is the bundle the leader publishes on the peer relation (``ca-bundle``): the
application's CA, and during a CA rollover the new and the old CA together, from the hook
that adds the new CA (before any unit can switch to a certificate from it) to the hook
that drops the old one (once no unit uses a certificate from it). Public certificates
only, split from the bundle as text: no ``cryptography`` here.

Cheap on a quiet hook: what this unit last wrote per relation is remembered as a digest
in unitdata, with the version each requirer speaks (read again only in a hook of the
endpoint, the only hooks in which it can have changed), so a hook where nothing changed
compares one digest per relation and writes nothing.
"""
from __future__ import annotations

import hashlib
import json
from typing import Dict, List, Optional

from charmhelpers.core import hookenv, unitdata

SENT = "layer.tls.transfer.sent"          # {relation id: digest of what this unit wrote}
VERSIONS = "layer.tls.transfer.versions"  # {relation id: 0 or 1, the requirer's version}
PEER_ENDPOINT = "certificates"


def _digest(leader: bool, version: int, certificates: List[str]) -> str:
    return hashlib.sha256(json.dumps([leader, version, certificates]).encode()).hexdigest()


def _int_map(value) -> Dict[str, int]:
    if not isinstance(value, dict):
        return {}
    return {k: v for k, v in value.items() if isinstance(k, str) and v in (0, 1)}


def _str_map(value) -> Dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, str)}


def send_trust_bundle(endpoint_name: Optional[str] = None) -> int:
    """Publish the trust bundle on every relation of the transfer endpoint where it is not
    published as it should be; returns how many relations were written. No endpoint (the
    option is empty, or the charm declares none), no peer relation: nothing happens."""
    from charms.reactive import endpoint_from_name

    if endpoint_name is None:
        from . import settings

        endpoint_name = settings.load().transfer_endpoint
    if not endpoint_name:
        return 0
    transfer = endpoint_from_name(endpoint_name)
    tls = endpoint_from_name(PEER_ENDPOINT)
    if transfer is None or tls is None or not tls.has_peer_relation:
        return 0
    if not callable(getattr(transfer, "publish", None)):
        hookenv.log(f"layer:tls: transfer_endpoint {endpoint_name!r} is not a "
                    "certificate_transfer provides endpoint; nothing sent", hookenv.ERROR)
        return 0
    kv = unitdata.kv()
    sent, versions = _str_map(kv.get(SENT)), _int_map(kv.get(VERSIONS))
    hook = hookenv.hook_name()
    own_hook = hook.startswith(f"{endpoint_name}-relation-")
    breaking = hookenv.relation_id() if hook == f"{endpoint_name}-relation-broken" else None
    certificates = transfer.split_certificates(tls.get_ca_bundle() or "")
    leader = tls.is_leader
    new_sent: Dict[str, str] = {}
    new_versions: Dict[str, int] = {}
    written = 0
    for relation in transfer.relations:
        rid = relation.relation_id
        if rid == breaking:
            continue  # the relation is going away: nothing to send, nothing to remember
        version = versions.get(rid)
        if own_hook or version is None:
            version = transfer.requirer_version(relation)
            if version is None:
                continue  # no requirer unit yet: decided when one joins
        digest = _digest(leader, version, certificates)
        if sent.get(rid) != digest:
            if transfer.publish(relation, certificates, leader=leader, version=version):
                written += 1
                hookenv.log(f"layer:tls: sent {len(certificates)} CA certificate(s) on "
                            f"{rid} (certificate_transfer v{version})")
        new_sent[rid], new_versions[rid] = digest, version
    if new_sent != sent:
        kv.set(SENT, new_sent)
    if new_versions != versions:
        kv.set(VERSIONS, new_versions)
    return written
