"""What every unit does: keep its key, publish a CSR, install the certificate it receives.

Called from the reactive handlers with the interface:tls endpoint (``tls``) and the layer
settings. ``cryptography`` is imported only inside the functions that need it, so a hook
with nothing to do never loads it.
"""
from __future__ import annotations

import shlex
import subprocess
from typing import Optional

from charmhelpers.core import hookenv, unitdata

from . import storage
from .settings import Settings

PEER_ENDPOINT = "certificates"


def current_names(settings: Settings):
    """This unit's names now (sorted): network addresses, host names and extra SANs."""
    from . import names

    extra = unitdata.kv().get(storage.LEGACY_EXTRA_SANS) or []
    if not isinstance(extra, list):
        hookenv.log("layer:tls: unitdata extra_sans is not a list; ignored", hookenv.WARNING)
        extra = []
    return names.unit_names(names.network_addresses(PEER_ENDPOINT), names.host_names(),
                            [str(e) for e in extra], settings.extra_sans)


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


def names_changed(settings: Settings) -> bool:
    """True when the names of the published CSR differ from the unit's names now."""
    published = unitdata.kv().get(storage.CSR_NAMES)
    return published is not None and published != current_names(settings).as_dict


def install_certificate(tls, settings: Settings) -> Optional[str]:
    """Install this unit's certificate and the CA bundle from the relation.

    Returns "changed" when a new certificate or bundle was installed, "unchanged" when
    everything was already in place (files repaired if needed), None when there is nothing
    usable yet (the reason is logged). Checks before installing: the certificate matches the
    unit's key and verifies against the bundle for the unit's first name.
    """
    cert_pem, bundle_pem = tls.get_signed_cert(), tls.get_ca_bundle()
    if not cert_pem or not bundle_pem:
        return None
    kv = unitdata.kv()
    if (kv.get(storage.INSTALLED_CERT) == cert_pem and
            kv.get(storage.INSTALLED_BUNDLE) == bundle_pem):
        _sync(settings, cert_pem, kv.get(storage.INSTALLED_KEY), bundle_pem)
        return "unchanged"
    problem, expiry = _check_received(cert_pem, bundle_pem, kv.get(storage.PENDING_KEY))
    if problem:
        hookenv.log("layer:tls: not installing the received certificate: " + problem,
                    hookenv.WARNING)
        return None
    key_pem = kv.get(storage.PENDING_KEY)
    kv.set(storage.INSTALLED_CERT, cert_pem)
    kv.set(storage.INSTALLED_KEY, key_pem)
    kv.set(storage.INSTALLED_BUNDLE, bundle_pem)
    kv.set(storage.INSTALLED_EXPIRY, expiry)
    kv.set(storage.LEGACY_SERVER_CERT, cert_pem)
    kv.set(storage.LEGACY_CLIENT_CERT, cert_pem)
    kv.set(storage.legacy_unit_cert_key(hookenv.local_unit()), cert_pem)
    _sync(settings, cert_pem, key_pem, bundle_pem)
    hookenv.log("layer:tls: installed a new certificate and CA bundle")
    return "changed"


def _check_received(cert_pem: str, bundle_pem: str,
                    key_pem: Optional[str]) -> tuple[Optional[str], str]:
    """(why not to install, "") or (None, the certificate's notAfter as YYYY-MM-DD)."""
    from . import pki

    if not key_pem:
        return "this unit has no key", ""
    try:
        cert = pki.load_certificate(cert_pem)
        bundle = pki.load_certificates(bundle_pem)
        if not pki.certificate_matches_key(cert, pki.load_private_key(key_pem)):
            return "it does not match this unit's key (a newer one is on its way)", ""
        dns_names, ips = pki.certificate_names(cert)
        if dns_names:
            pki.verify_certificate(cert, bundle, dns_name=dns_names[0])
        else:
            pki.verify_certificate(cert, bundle, ip_address=ips[0])
        pki.verify_certificate(cert, bundle, purpose="client")
    except (pki.PKIError, IndexError) as exc:
        return f"it does not verify against the CA bundle ({exc})", ""
    return None, cert.not_valid_after_utc.strftime("%Y-%m-%d")


def _sync(settings: Settings, cert_pem: str, key_pem: Optional[str], bundle_pem: str) -> None:
    if not key_pem:
        return
    changed = storage.sync_files(settings.paths, cert_pem, key_pem, bundle_pem, settings.owner)
    if changed and settings.system_ca_update_command:
        try:
            subprocess.run(shlex.split(settings.system_ca_update_command), check=True,
                           capture_output=True, timeout=300)
        except (OSError, subprocess.SubprocessError) as exc:
            hookenv.log(f"layer:tls: updating the system trust store failed: {exc}",
                        hookenv.WARNING)
