"""What every unit does: keep its key, publish a CSR, install the certificate it receives.

Called from the reactive handlers with the interface:tls endpoint (``tls``) and the layer
settings. ``cryptography`` is imported only inside the functions that need it, so a hook
with nothing to do never loads it.
"""
from __future__ import annotations

import hashlib
import json
import subprocess
import time
from typing import Optional

from charmhelpers.core import hookenv, unitdata

from . import storage
from .settings import Settings

PEER_ENDPOINT = "certificates"
# Flags for upper layers (the legacy names too), set once the material is installed.
CERT_FLAGS = (
    "tls.certificate.available",
    "tls.server.certificate available",
    "tls.client.certificate available",
    "client certificate available",
    "server certificate available",
)
CA_FLAGS = (
    "tls.ca.available",
    "certificate authority available",
    "tls.certificate.authority available",
)
CHANGED_FLAG = "tls.certificate.changed"


def unit_addresses(*, refresh: bool = True) -> list:
    """This unit's network addresses. ``refresh=False`` answers from the addresses of the
    last look-up (kept in unitdata) and runs no hook tool: Juju runs config-changed
    whenever the machine's addresses change (worker/uniter/resolver.go: a new addresses
    hash runs config-changed), so a hook other than config-changed, install or
    upgrade-charm need not run ``network-get`` and ``unit-get`` to notice a change."""
    from . import names

    kv = unitdata.kv()
    if not refresh:
        cached = kv.get(storage.ADDRESSES)
        if isinstance(cached, list) and all(isinstance(a, str) for a in cached):
            return cached
    found = names.network_addresses(PEER_ENDPOINT)
    if kv.get(storage.ADDRESSES) != found:
        kv.set(storage.ADDRESSES, found)
    return found


def current_names(settings: Settings, *, refresh_addresses: bool = True):
    """This unit's names now (sorted): network addresses, host names and extra SANs."""
    from . import names

    extra = unitdata.kv().get(storage.LEGACY_EXTRA_SANS) or []
    if not isinstance(extra, list):
        hookenv.log("layer:tls: unitdata extra_sans is not a list; ignored", hookenv.WARNING)
        extra = []
    return names.unit_names(unit_addresses(refresh=refresh_addresses), names.host_names(),
                            [str(e) for e in extra], settings.extra_sans,
                            permits=settings.namespace.permits)


def request_certificate(tls, settings: Settings, *, new_key: bool = False) -> None:
    """Publish a CSR with this unit's current names and the names it claims.

    The unit's key is made once and kept in unitdata (only on this unit); ``new_key``
    replaces it (rotation). The installed certificate stays in use until the new one
    arrives.
    """
    from . import pki

    kv = unitdata.kv()
    key_pem = None if new_key else kv.get(storage.PENDING_KEY)
    if key_pem:
        key = pki.load_private_key(key_pem)
    else:
        key = pki.generate_private_key(settings.key_algorithm)
        kv.set(storage.PENDING_KEY, pki.private_key_to_pem(key).decode("ascii"))
    unit_names = current_names(settings)
    csr_pem = pki.csr_to_pem(pki.build_csr(
        key, hookenv.local_unit(), dns_names=unit_names.dns_names,
        ip_addresses=unit_names.ip_addresses))
    kv.set(storage.CSR, csr_pem)
    kv.set(storage.CSR_NAMES, unit_names.as_dict)
    tls.publish_claims(unit_names.dns_names, unit_names.ip_addresses)
    tls.set_csr(csr_pem)
    count = f"{len(unit_names.dns_names)} DNS name(s), {len(unit_names.ip_addresses)} address(es)"
    hookenv.log(f"layer:tls: published a CSR for {count}")


def adopt_key(key_pem: str) -> bool:
    """Keep an existing private key (a legacy PKI's) as this unit's key, so that its
    existing certificate stays usable; False when the unit has a key already."""
    from . import pki

    kv = unitdata.kv()
    if kv.get(storage.PENDING_KEY):
        return False
    kv.set(storage.PENDING_KEY, pki.private_key_to_pem(pki.load_private_key(key_pem)).decode())
    return True


def names_changed(settings: Settings, *, refresh_addresses: bool = True) -> bool:
    """True when the names of the published CSR differ from the unit's names now
    (``refresh_addresses``: see ``unit_addresses``)."""
    published = unitdata.kv().get(storage.CSR_NAMES)
    return published is not None and published != current_names(
        settings, refresh_addresses=refresh_addresses).as_dict


def install_certificate(tls, settings: Settings) -> Optional[str]:
    """Install this unit's certificate and the CA bundle from the relation, and set the
    flags for upper layers (``tls.certificate.changed`` when something new was installed).

    Returns "changed" when a new certificate or bundle was installed, "unchanged" when
    everything was already in place (files repaired if needed), None when there is nothing
    usable yet (the reason is logged). Checks before installing: the certificate matches the
    unit's key and verifies against the bundle for the unit's first name.
    """
    outcome = _install(tls, settings)
    if outcome is not None:
        from charms.reactive import get_unset_flags, set_flag
        from charms.reactive.flags import _get_flag_value

        flags = CERT_FLAGS + CA_FLAGS
        # charms.reactive reads every flag from unitdata for each set_flag: in the common
        # case (all set already, with no value) one read says there is nothing to set
        if get_unset_flags(*flags) or any(_get_flag_value(f) is not None for f in flags):
            for flag in flags:
                set_flag(flag)
        if outcome == "changed":
            set_flag(CHANGED_FLAG)
    return outcome


def _install(tls, settings: Settings) -> Optional[str]:
    cert_pem, bundle_pem = tls.get_signed_cert(), tls.get_ca_bundle()
    if not bundle_pem:
        return None
    kv = unitdata.kv()
    if not cert_pem:
        return _install_bundle(tls, settings, bundle_pem)
    intermediates = tls.get_ca_intermediates()
    if (kv.get(storage.INSTALLED_CERT) == cert_pem and
            kv.get(storage.INSTALLED_BUNDLE) == bundle_pem and
            (kv.get(storage.INSTALLED_INTERMEDIATES) or "") == intermediates):
        _sync(settings, full_chain(), kv.get(storage.INSTALLED_KEY), bundle_pem)
        # unitdata survives a failed hook, relation data does not: re-state the
        # acknowledgement (a no-op write when it is published already)
        acknowledge_installed(tls, cert_pem, bundle_pem)
        return "unchanged"
    problem, validity, chain_pem = _check_received(cert_pem, bundle_pem,
                                                   kv.get(storage.PENDING_KEY), intermediates)
    if problem:
        hookenv.log("layer:tls: not installing the received certificate: " + problem,
                    hookenv.WARNING)
        return _install_bundle(tls, settings, bundle_pem)
    key_pem = kv.get(storage.PENDING_KEY)
    if kv.get(storage.INSTALLED_CERT) != cert_pem:
        kv.set(storage.INSTALLED_VALIDITY, validity)
        kv.set(storage.RENEW_AT, renew_at(validity, settings.renew_fraction))
        kv.unset(storage.RENEWING)
    kv.set(storage.INSTALLED_CERT, cert_pem)
    kv.set(storage.INSTALLED_CHAIN, chain_pem)
    kv.set(storage.INSTALLED_INTERMEDIATES, intermediates)
    kv.set(storage.INSTALLED_KEY, key_pem)
    kv.set(storage.INSTALLED_BUNDLE, bundle_pem)
    # the legacy layer keys: what the unit presents (its certificate, then the
    # intermediates under the root; a reader that loads one certificate gets the unit's,
    # as before); the legacy interface key stays the certificate the leader published
    presented = full_chain()
    kv.set(storage.LEGACY_SERVER_CERT, presented)
    kv.set(storage.LEGACY_CLIENT_CERT, presented)
    kv.set(storage.legacy_unit_cert_key(hookenv.local_unit()), cert_pem)
    _sync(settings, presented, key_pem, bundle_pem)
    hookenv.log("layer:tls: installed a new certificate and CA bundle")
    acknowledge_installed(tls, cert_pem, bundle_pem)
    return "changed"


def full_chain() -> str:
    """The installed certificate followed by its intermediates (none under a self-signed
    CA): what ``certificate_path`` holds and the unit presents. From unitdata: no crypto."""
    kv = unitdata.kv()
    return (kv.get(storage.INSTALLED_CERT) or "") + (kv.get(storage.INSTALLED_CHAIN) or "")


def _install_bundle(tls, settings: Settings, bundle_pem: str) -> Optional[str]:
    """Keep the installed certificate and take the published CA bundle. A unit whose new
    certificate is not signed yet (a renewal or a rotation with a new key) must still
    trust a new CA and say so: in a CA rollover the leader reissues nothing until every
    unit does. The bundle is not checked against the installed certificate (which may
    have expired, the reason for its renewal): it only decides whom this unit trusts, and
    the leader drops a CA only once every unit uses a certificate from the new one.
    None when no certificate is installed yet or the bundle is not certificates."""
    from . import pki

    kv = unitdata.kv()
    cert_pem, key_pem = kv.get(storage.INSTALLED_CERT), kv.get(storage.INSTALLED_KEY)
    if not cert_pem or not key_pem:
        return None
    outcome = "unchanged"
    intermediates = tls.get_ca_intermediates()
    if (kv.get(storage.INSTALLED_BUNDLE) != bundle_pem
            or (kv.get(storage.INSTALLED_INTERMEDIATES) or "") != intermediates):
        try:
            pki.load_certificates(bundle_pem)
        except Exception as exc:  # noqa: BLE001 - relation data: never a hook crash loop
            hookenv.log(f"layer:tls: not installing the CA bundle ({type(exc).__name__})",
                        hookenv.WARNING)
            return None
        kv.set(storage.INSTALLED_BUNDLE, bundle_pem)
        # the CRLs of the bundle's CAs are checked with the intermediates that came with
        # it; the installed certificate keeps its own chain (INSTALLED_CHAIN)
        kv.set(storage.INSTALLED_INTERMEDIATES, intermediates)
        hookenv.log("layer:tls: installed a new CA bundle (the certificate stays until "
                    "the new one is signed)")
        outcome = "changed"
    _sync(settings, full_chain(), key_pem, bundle_pem)
    acknowledge_installed(tls, cert_pem, bundle_pem)
    return outcome


def bundle_to_install(tls) -> bool:
    """True when the published CA bundle is not the installed one, or a CA rollover runs
    (whose acknowledgement a failed hook may have discarded). Text only: no crypto."""
    bundle_pem = tls.get_ca_bundle()
    return bool(bundle_pem) and (bundle_pem != unitdata.kv().get(storage.INSTALLED_BUNDLE)
                                 or bundle_pem.count("BEGIN CERTIFICATE") > 1)


def trust_digest(bundle_pem: str, intermediates_pem: str) -> str:
    """What a unit acknowledges in a CA rollover: the bundle it trusts and the
    intermediates it installed with it (and the CRLs they verify): a switch under the
    same root changes only those. The bundle's digest alone when there are none."""
    return storage.digest((bundle_pem or "") + (intermediates_pem or ""))


def acknowledge_installed(tls, cert_pem: str, bundle_pem: str) -> None:
    """During a CA rollover (the bundle holds more than one CA, or ``ca-intermediates``
    more than one certificate: a switch under the same root, or an operator's chain of
    several levels) tell the leader which bundle, intermediates and certificate are in use
    here, so it moves to the next phase only once every unit is there; afterwards
    withdraw the acknowledgement. Otherwise nothing is written (a unit-data write wakes
    every peer)."""
    intermediates = unitdata.kv().get(storage.INSTALLED_INTERMEDIATES) or ""
    if bundle_pem.count("BEGIN CERTIFICATE") > 1 or intermediates.count(
            "BEGIN CERTIFICATE") > 1:
        tls.publish_installed(trust_digest(bundle_pem, intermediates),
                              storage.digest(cert_pem))
    else:
        tls.publish_installed(None, None)


def renew_at(validity: tuple[float, float], fraction: float) -> float:
    """When to ask for a new certificate (epoch seconds): ``fraction`` of the lifetime,
    moved by a jitter in [-0.05, 0.05] that differs per unit and per certificate, so that
    the units of an application do not all renew in the same hook."""
    not_before, not_after = validity
    seed = f"{hookenv.local_unit()} {not_before}".encode()
    jitter = (int(hashlib.sha256(seed).hexdigest()[:8], 16) / 0xFFFFFFFF - 0.5) / 10
    share = min(max(fraction + jitter, 0.05), 0.97)
    return not_before + (not_after - not_before) * share


def update_renewal_time(settings: Settings) -> None:
    """Recompute when to renew (the renew fraction may have changed)."""
    kv = unitdata.kv()
    validity = kv.get(storage.INSTALLED_VALIDITY)
    if validity:
        kv.set(storage.RENEW_AT, renew_at(tuple(validity), settings.renew_fraction))


def renewal_due(now: Optional[float] = None) -> bool:
    """True when the installed certificate is due for renewal (or expired) and no renewal
    was asked for it yet. Reads unitdata only: no crypto, no hook tools."""
    kv = unitdata.kv()
    due = kv.get(storage.RENEW_AT)
    if due is None or (now if now is not None else time.time()) < due:
        return False
    return kv.get(storage.RENEWING) != storage.digest(kv.get(storage.INSTALLED_CERT))


def renew_certificate(tls, settings: Settings) -> None:
    """Ask for a new certificate with a new key; the old one stays in use meanwhile."""
    kv = unitdata.kv()
    validity = kv.get(storage.INSTALLED_VALIDITY) or (0, 0)
    state = "expired" if time.time() >= validity[1] else "due for renewal"
    hookenv.log(f"layer:tls: the certificate is {state}; requesting a new one")
    kv.set(storage.RENEWING, storage.digest(kv.get(storage.INSTALLED_CERT)))
    request_certificate(tls, settings, new_key=True)


def _check_received(cert_pem: str, bundle_pem: str, key_pem: Optional[str],
                    intermediates_pem: str = ""
                    ) -> tuple[Optional[str], tuple[float, float], str]:
    """(why not to install, ...) or (None, (in use since, notAfter) as epoch seconds, the
    intermediates of ``intermediates_pem`` to present after it, as PEM). The certificate
    must verify with them against the bundle, as a peer will verify it."""
    from . import pki

    if not key_pem:
        return "this unit has no key", (0.0, 0.0), ""
    try:
        cert = pki.load_certificate(cert_pem)
        bundle = pki.load_certificates(bundle_pem)
        chain = pki.chain_for(cert, pki.load_certificates(intermediates_pem)
                              if intermediates_pem else [])
        if not pki.certificate_matches_key(cert, pki.load_private_key(key_pem)):
            return ("it does not match this unit's key (a newer one is on its way)",
                    (0.0, 0.0), "")
        dns_names, ips = pki.certificate_names(cert)
        if dns_names:
            pki.verify_certificate(cert, bundle, dns_name=dns_names[0], intermediates=chain)
        else:
            pki.verify_certificate(cert, bundle, ip_address=ips[0], intermediates=chain)
        pki.verify_certificate(cert, bundle, purpose="client", intermediates=chain)
    except (pki.PKIError, IndexError) as exc:
        return f"it does not verify against the CA bundle ({exc})", (0.0, 0.0), ""
    except Exception as exc:  # noqa: BLE001 - relation data: never a hook crash loop
        return f"it cannot be read ({type(exc).__name__})", (0.0, 0.0), ""
    # The lifetime counts from now (installation), not from notBefore: that is backdated by
    # a few minutes, which with short lifetimes would make a new certificate due at once.
    not_after = cert.not_valid_after_utc.timestamp()
    since = max(cert.not_valid_before_utc.timestamp(), min(time.time(), not_after))
    return None, (since, not_after), pki.certificates_to_pem(chain)


def _sync(settings: Settings, cert_pem: str, key_pem: Optional[str], bundle_pem: str) -> None:
    if not key_pem:
        return
    changed = storage.sync_files(settings.paths, cert_pem, key_pem, bundle_pem, settings.owner)
    if settings.paths.system_ca in changed and settings.system_ca_update_command:
        try:
            import shlex  # only here: a quiet hook need not load it

            subprocess.run(shlex.split(settings.system_ca_update_command), check=True,
                           capture_output=True, timeout=300)
        except (OSError, subprocess.SubprocessError) as exc:
            hookenv.log(f"layer:tls: updating the system trust store failed: {exc}",
                        hookenv.WARNING)


def install_crls(tls, settings: Settings) -> Optional[str]:
    """Write the published CRLs that verify against the installed CA bundle to
    ``crl_path`` (one per CA, PEM, 0644; the file is removed while there is none) and set
    ``tls.certificate.changed`` when they changed, so the workload reloads. A CRL past its
    nextUpdate is still written (with a WARNING): a TLS stack then refuses that CA's
    certificates, the safe side for a leader that stopped renewing it. Returns "changed",
    "unchanged" or None (nothing installed yet). Text comparisons only unless the CRLs or
    the bundle changed."""
    kv = unitdata.kv()
    bundle = kv.get(storage.INSTALLED_BUNDLE)
    if not bundle:
        return None
    published = tls.get_crls()
    intermediates = kv.get(storage.INSTALLED_INTERMEDIATES) or ""
    inputs = storage.digest(json.dumps([bundle, published, intermediates], sort_keys=True))
    text = kv.get(storage.INSTALLED_CRL) or ""
    changed = False
    if kv.get(storage.INSTALLED_CRL_INPUTS) != inputs:
        new_text = _verified_crls(bundle, published, intermediates)
        kv.set(storage.INSTALLED_CRL_INPUTS, inputs)
        if new_text != text:
            kv.set(storage.INSTALLED_CRL, new_text)
            text, changed = new_text, True
            hookenv.log(f"layer:tls: installed {new_text.count('BEGIN X509 CRL')} CRL(s)")
    written = storage.sync_optional_file(settings.crl_path, text, 0o644, settings.owner)
    if written is None:
        hookenv.log(f"layer:tls: cannot write {settings.crl_path}", hookenv.WARNING)
    if changed or written:
        from charms.reactive import set_flag

        set_flag(CHANGED_FLAG)
        return "changed"
    return "unchanged"


def _verified_crls(bundle: str, published: dict, intermediates: str = "") -> str:
    """The CRLs of ``published`` (CA key id -> PEM) that verify against the CA that issues
    the leaves under each root of the bundle (its intermediate, else the root itself),
    concatenated in the bundle's order; each refused one is logged. An intermediate
    counts only when a root of the bundle signed it (``issuing_cas``)."""
    from . import crl, pki

    try:
        anchors = pki.load_certificates(bundle)
        below = pki.load_certificates(intermediates) if intermediates else []
    except pki.PKIError:
        return ""
    cas = pki.issuing_cas(anchors, below)
    now = pki.utcnow()
    parts = []
    for ca in cas:
        kid = crl.key_id_hex(ca)
        if kid is None or kid not in published:
            continue
        try:
            loaded = crl.load_crl(published[kid])
        except pki.PKIError as exc:
            hookenv.log(f"layer:tls: ignored the CRL of CA {kid[:16]}: {exc}", hookenv.WARNING)
            continue
        problem = crl.crl_problem(loaded, ca, now=now)
        if problem and not problem.startswith("it expired"):
            hookenv.log(f"layer:tls: ignored the CRL of CA {kid[:16]}: {problem}",
                        hookenv.WARNING)
            continue
        if problem:
            hookenv.log(f"layer:tls: the CRL of CA {kid[:16]}: {problem} (the leader did "
                        "not renew it)", hookenv.WARNING)
        parts.append(crl.crl_to_pem(loaded))
    return "".join(parts)


def rotate_if_revoked(tls, settings: Settings) -> bool:
    """A unit whose installed certificate the leader revoked makes a new key and CSR (once
    per revocation): its old key may be compromised, and once the operator lifts the bar
    the leader signs the new request. Text comparison only unless the revoked list
    changed."""
    kv = unitdata.kv()
    revoked = tls.get_revoked()
    seen = storage.digest(json.dumps(revoked, sort_keys=True))
    if kv.get(storage.REVOKED_SEEN) == seen:
        return False
    kv.set(storage.REVOKED_SEEN, seen)
    cert_pem = kv.get(storage.INSTALLED_CERT)
    if not cert_pem or not revoked:
        return False
    from . import pki

    try:
        cert = pki.load_certificate(cert_pem)
    except pki.PKIError:
        return False
    serial = format(cert.serial_number, "x")
    aki = pki.authority_key_id(cert)
    if not any(r["serial"] == serial and aki and r["issuer"] == aki.hex() for r in revoked):
        return False
    if kv.get(storage.ROTATED_FOR) == serial:
        return False  # asked already (its new request may be refused while it is barred)
    kv.set(storage.ROTATED_FOR, serial)
    hookenv.log("layer:tls: the leader revoked this unit's certificate; making a new key "
                "and request", hookenv.WARNING)
    request_certificate(tls, settings, new_key=True)
    return True
