"""Adoption of the PKI the legacy easy-rsa ``layer:tls`` left on the units, on upgrade-charm.

The legacy layer kept everything under ``$CHARM_DIR/easy-rsa/easyrsa3/pki``: on the leader
the CA (``ca.crt``, ``private/ca.key``), its own server certificate and key (named after the
unit with ``/`` as ``_``; after the public address, or ``server``, in older releases), a
``client`` certificate and every certificate it signed (``issued/<unit with _>.crt``); on
the others their key (``private/<unit with _>.key``) and request (``reqs/<unit with _>.req``,
also published as relation key ``csr``). Certificates went out as ``<unit>_signed_certificate``
in the leader's unit bag and into unitdata ``tls.server.certificate``; the CA certificate
into leader setting ``certificate_authority``.

Adoption keeps what is still good, so an upgrade forces no rotation:
- every unit keeps its private key (found by the legacy file names, else by matching the
  public key of its legacy certificate or request);
- the leader keeps the CA: with its key, the same key, name, serial and key identifier,
  re-certified with the extensions RFC 5280 verifiers demand (easy-rsa marks
  basicConstraints non-critical, which ``cryptography``'s verifier and ``openssl verify
  -x509_strict`` refuse); certificates the legacy CA issued verify against it unchanged,
  and the new ones verify against the legacy CA certificate the old peers still hold.
  Without the key (lost on a legacy leader change) a new CA is made and the legacy CA
  certificate stays in the bundle until every unit has a certificate from the new CA;
- each unit's legacy certificate stays its certificate when it is still valid, was issued
  by that CA, certifies the unit's key, names exactly what the unit's request names and
  allows client authentication (every certificate of this layer does; legacy ones only
  when the charm asked for it): otherwise the unit's request is signed anew (same key).

Reading the files is pure (no Juju); the functions at the end are the glue the handler
calls. Nothing here logs or raises key material: messages name files and units only.
"""
from __future__ import annotations

import os
from typing import Dict, List, NamedTuple, Optional, Sequence

from .ca_store import LEGACY_CA_SETTING  # leader setting of the legacy layer
from .storage import LEGACY_SERVER_CERT  # unitdata key of the legacy layer

LEGACY_PKI_DIR = os.path.join("easy-rsa", "easyrsa3", "pki")
UNIT_DONE = "layer.tls.legacy.unit-adopted"     # unitdata: this unit's part is done
MAX_FILE_BYTES = 65536
_CA_FILES = ("ca",)                             # never a unit key, whatever it matches


def path_safe_name(unit_name: str) -> str:
    """The legacy file name of a unit: ``app/1`` -> ``app_1``."""
    return unit_name.replace("/", "_")


# --- the legacy files (pure) ------------------------------------------------------------------

class LegacyFiles(NamedTuple):
    """PEM text found in a legacy pki directory (missing files are simply absent)."""

    ca_certificate: Optional[str]
    ca_key: Optional[str]
    keys: Dict[str, str]          # file stem -> key PEM (private/<stem>.key, not the CA's)
    issued: Dict[str, str]        # file stem -> certificate PEM (issued/<stem>.crt)
    requests: Dict[str, str]      # file stem -> CSR PEM (reqs/<stem>.req)

    def __repr__(self) -> str:  # never show keys
        return (f"LegacyFiles(ca={self.ca_certificate is not None}, "
                f"ca_key={self.ca_key is not None}, keys={sorted(self.keys)}, "
                f"issued={sorted(self.issued)}, requests={sorted(self.requests)})")


def find_pki_dir(charm_dir: str) -> Optional[str]:
    """The legacy pki directory under ``charm_dir``, or None (the common case: one stat)."""
    path = os.path.join(charm_dir, LEGACY_PKI_DIR)
    return path if os.path.isdir(path) else None


def _read(path: str) -> Optional[str]:
    try:
        if not os.path.isfile(path) or os.path.getsize(path) > MAX_FILE_BYTES:
            return None
        with open(path, encoding="ascii") as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError, ValueError):
        return None


def _read_dir(directory: str, suffix: str) -> Dict[str, str]:
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return {}
    found = {}
    for name in names:
        if name.endswith(suffix) and not name.startswith("."):
            text = _read(os.path.join(directory, name))
            if text:
                found[name[:-len(suffix)]] = text
    return found


def read_pki(pki_dir: str) -> LegacyFiles:
    """Read what is there; unreadable, oversized or missing files are left out."""
    keys = _read_dir(os.path.join(pki_dir, "private"), ".key")
    ca_key = None
    for stem in _CA_FILES:
        ca_key = keys.pop(stem, None) or ca_key
    return LegacyFiles(_read(os.path.join(pki_dir, "ca.crt")), ca_key, keys,
                       _read_dir(os.path.join(pki_dir, "issued"), ".crt"),
                       _read_dir(os.path.join(pki_dir, "reqs"), ".req"))


def unit_of_file(stem: str, application: str) -> Optional[str]:
    """``app_3`` -> ``app/3`` for a file of this application's units, else None."""
    prefix, _, number = stem.rpartition("_")
    return f"{prefix}/{number}" if prefix == application and number.isdigit() else None


def own_file_stems(unit_name: str, public_address: Optional[str]) -> List[str]:
    """The names the legacy layer gave this unit's key and certificate, newest first."""
    stems = [path_safe_name(unit_name)]
    if public_address:
        stems.append(public_address)
    return stems + ["server"]


# --- PKI helpers (pure; cryptography through pki) -------------------------------------------

_BEGIN_CERT = "-----BEGIN CERTIFICATE-----"
_END_CERT = "-----END CERTIFICATE-----"


def certificate_block(text: Optional[str]) -> Optional[str]:
    """The certificate in ``text`` as clean PEM, or None. easy-rsa writes issued
    certificates with openssl's text dump in front of the PEM block, and the legacy layer
    published and stored them that way; exactly one block is accepted."""
    from . import pki

    if not isinstance(text, str) or text.count(_BEGIN_CERT) != 1 or _END_CERT not in text:
        return None
    start = text.index(_BEGIN_CERT)
    end = text.index(_END_CERT, start) + len(_END_CERT)
    try:
        return pki.certificate_to_pem(pki.load_certificate(text[start:end] + "\n"))
    except pki.PKIError:
        return None


def _public_fingerprint(pem: str) -> Optional[str]:
    """SPKI fingerprint of a certificate or CSR PEM, None if it does not parse."""
    from . import pki

    try:
        if "CERTIFICATE REQUEST" in pem:
            return pki.public_key_fingerprint(pki.load_csr_public_key(pem))
        return pki.public_key_fingerprint(pki.load_certificate(pem).public_key())
    except pki.PKIError:
        return None


def find_unit_key(files: LegacyFiles, stems: Sequence[str], references: Sequence[str]
                  ) -> Optional[str]:
    """This unit's legacy private key (PEM), or None.

    ``references``: certificates and CSRs known to be this unit's. A key is taken when it
    certifies one of them: first the files by the unit's legacy names, then every other
    key file. With no reference at all, the key under the unit's first legacy name is
    taken as it is (the unit made it). The CA key is never a candidate.
    """
    from . import pki

    wanted = {fp for fp in (_public_fingerprint(r) for r in references if r) if fp}
    order = [s for s in stems if s in files.keys]
    order += [s for s in sorted(files.keys) if s not in order]
    for stem in order:
        try:
            key = pki.load_private_key(files.keys[stem])
        except pki.PKIError:
            continue  # encrypted or not a key: not usable
        if pki.public_key_fingerprint(key) in wanted:
            return files.keys[stem]
    if not wanted and stems and stems[0] in files.keys:
        try:
            pki.load_private_key(files.keys[stems[0]])
        except pki.PKIError:
            return None
        return files.keys[stems[0]]
    return None


def ca_key_matches(ca_cert_pem: str, ca_key_pem: Optional[str]) -> bool:
    """True when the key belongs to the CA certificate and that certificate is valid now."""
    from . import pki

    if not ca_key_pem:
        return False
    try:
        ca = pki.CertificateAuthority(pki.load_certificate(ca_cert_pem),
                                      pki.load_private_key(ca_key_pem))
    except pki.PKIError:
        return False
    return ca.is_valid_at(pki.utcnow())


def recertify_ca(ca_cert_pem: str, ca_key_pem: str) -> str:
    """The legacy CA certificate re-signed by its own key with this layer's CA extensions
    (``pki.recertify_ca``); raises pki.PKIError when the key does not match."""
    from . import pki

    ca = pki.recertify_ca(pki.load_certificate(ca_cert_pem), pki.load_private_key(ca_key_pem))
    return pki.certificate_to_pem(ca.certificate)


def names_of(pem: str) -> Optional[Dict[str, List[str]]]:
    """``{"dns": [...], "ips": [...]}`` (sorted, normalised) of a certificate or CSR's
    subjectAltName, None when it has none or does not parse."""
    from cryptography import x509

    from . import pki
    from .sans import split_names

    try:
        if "CERTIFICATE REQUEST" in pem:
            obj = x509.load_pem_x509_csr(pem.encode("ascii"))
        else:
            obj = pki.load_certificate(pem)
        san = obj.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except Exception:  # noqa: BLE001 - legacy input: anything unreadable has no names
        return None
    values = [str(v) for v in san.get_values_for_type(x509.DNSName)]
    values += [str(v) for v in san.get_values_for_type(x509.IPAddress)]
    dns_names, ips = split_names(values)
    return {"dns": sorted(set(dns_names)), "ips": sorted(set(ips))}


def keepable(cert_pem: str, csr_pem: str, ca_cert_pem: str) -> Optional[str]:
    """Why ``cert_pem`` cannot stay the certificate of the unit whose request is
    ``csr_pem`` under the (re-certified) CA ``ca_cert_pem``; None when it can."""
    from . import pki

    try:
        cert = pki.load_certificate(cert_pem)
        ca = pki.load_certificate(ca_cert_pem)
    except pki.PKIError:
        return "unreadable"
    if _public_fingerprint(csr_pem) != pki.public_key_fingerprint(cert.public_key()):
        return "it does not certify the key of the unit's request"
    cert_names, csr_names = names_of(cert_pem), names_of(csr_pem)
    if not cert_names or cert_names != csr_names:
        return "its names differ from the unit's request"
    try:
        pki.verify_certificate(cert, [ca], purpose="client")
    except pki.PKIError as exc:
        return f"it does not verify as a client certificate ({str(exc)[:120]})"
    return None


def choose_certificates(candidates: Dict[str, List[str]], csrs: Dict[str, str],
                        ca_cert_pem: str) -> Dict[str, str]:
    """unit -> the first of its candidate legacy certificates that ``keepable`` accepts."""
    chosen = {}
    for unit_name, certs in sorted(candidates.items()):
        csr = csrs.get(unit_name)
        if not csr:
            continue
        for cert in certs:
            if keepable(cert, csr, ca_cert_pem) is None:
                chosen[unit_name] = cert
                break
    return chosen


# --- Juju glue ----------------------------------------------------------------------------------

def _log(message: str, level: Optional[str] = None) -> None:
    from charmhelpers.core import hookenv

    hookenv.log("layer:tls: legacy PKI: " + message, level or hookenv.INFO)


def relation_certificates(endpoint: str = "certificates") -> Dict[str, List[str]]:
    """unit -> certificates under the legacy ``<unit>_signed_certificate`` keys of every
    bag of the peer relation (this unit's first), as clean PEM. Every candidate is kept
    (the endpoint's ``legacy_certificates()`` keeps only the first per unit), so the one that
    certifies the unit's key can be picked."""
    from charmhelpers.core import hookenv

    found: Dict[str, List[str]] = {}
    for rid in hookenv.relation_ids(endpoint)[:1]:
        for owner in [hookenv.local_unit()] + sorted(hookenv.related_units(rid)):
            data = hookenv.relation_get(unit=owner, rid=rid) or {}
            for key, value in sorted(data.items()):
                if not key.endswith("_signed_certificate"):
                    continue
                pem = certificate_block(value)
                unit_name = key[:-len("_signed_certificate")]
                if pem and pem not in found.setdefault(unit_name, []):
                    found[unit_name].append(pem)
    return found


def _own_references(tls, files: LegacyFiles, stems: Sequence[str]) -> List[str]:
    from charmhelpers.core import unitdata

    refs = [certificate_block(unitdata.kv().get(LEGACY_SERVER_CERT))]
    refs += relation_certificates().get(tls.local_unit_name, [])
    refs.append(tls.own_csr())
    for stem in stems:
        refs += [certificate_block(files.issued.get(stem)), files.requests.get(stem)]
    return [r for r in refs if r]


def adopt_unit(tls, settings, files: LegacyFiles) -> str:
    """This unit's part: keep its legacy key, then make sure its published request is one
    the leader can sign (the legacy one when it names what the unit is now, with the
    unit's claims published next to it; else a new one for the same key)."""
    from charmhelpers.core import hookenv, unitdata
    from charms.reactive import clear_flag

    from . import storage, unit

    stems = own_file_stems(hookenv.local_unit(), hookenv.unit_public_ip())
    key_pem = find_unit_key(files, stems, _own_references(tls, files, stems))
    kept_key = unit.adopt_key(key_pem) if key_pem else False
    what = "kept the unit's legacy key" if kept_key else "no legacy key to keep"
    kv = unitdata.kv()
    if kv.get(storage.CSR) is not None:
        return what + "; it has a request of this layer already"
    own_csr = tls.own_csr()
    names = unit.current_names(settings)
    if (own_csr and key_pem
            and _public_fingerprint(own_csr) == _public_fingerprint_of_key(key_pem)
            and names_of(own_csr) == names.as_dict):
        kv.set(storage.CSR, own_csr)
        kv.set(storage.CSR_NAMES, names.as_dict)
        tls.publish_claims(names.dns_names, names.ip_addresses)
        clear_flag("create certificate signing request")
        return what + "; kept its legacy request"
    unit.request_certificate(tls, settings)
    return what + "; published a request for it"


def _public_fingerprint_of_key(key_pem: str) -> Optional[str]:
    from . import pki

    try:
        return pki.public_key_fingerprint(pki.load_private_key(key_pem))
    except pki.PKIError:
        return None


def _candidates(tls, files: LegacyFiles, application: str) -> Dict[str, List[str]]:
    """unit -> legacy certificates seen for it (clean PEM): relation keys, the leader's
    issued files, and for this unit its unitdata and its own certificate files."""
    from charmhelpers.core import hookenv, unitdata

    found: Dict[str, List[str]] = {}

    def add(unit_name: str, text: Optional[str]) -> None:
        pem = certificate_block(text)
        if pem and pem not in found.setdefault(unit_name, []):
            found[unit_name].append(pem)

    for unit_name, pems in relation_certificates().items():
        for pem in pems:
            add(unit_name, pem)
    for stem, pem in files.issued.items():
        owner = unit_of_file(stem, application)
        if owner:
            add(owner, pem)
    me = tls.local_unit_name
    add(me, unitdata.kv().get(LEGACY_SERVER_CERT))
    for stem in own_file_stems(me, hookenv.unit_public_ip()):
        add(me, files.issued.get(stem))
    return found


def adopt_ca(tls, settings, files: LegacyFiles) -> str:
    """The leader's part: hand the legacy CA (re-certified when its key is here) and the
    certificates worth keeping to ``leader.adopt_ca``. The CA certificate is the one the
    units were given (leader setting ``certificate_authority``), else ``pki/ca.crt``."""
    from charmhelpers.core import hookenv

    from . import ca_store, leader, pki

    if ca_store.load(hookenv.leader_get) is not None:
        return "the application has a CA already"
    ca_pem = hookenv.leader_get(LEGACY_CA_SETTING) or files.ca_certificate
    if not ca_pem or tls.get_ca_bundle():
        return "no legacy CA to adopt"
    try:
        pki.load_certificate(ca_pem)
        key_pem = files.ca_key if ca_key_matches(ca_pem, files.ca_key) else None
        adopted_pem = recertify_ca(ca_pem, key_pem) if key_pem else ca_pem
    except pki.PKIError as exc:
        _log(f"the legacy CA certificate is unusable ({str(exc)[:120]}); not adopted",
             hookenv.WARNING)
        return "the legacy CA is unusable"
    kept = choose_certificates(_candidates(tls, files, hookenv.application_name()),
                               tls.get_csr_map(), adopted_pem)
    return leader.adopt_ca(tls, settings, adopted_pem, key_pem, kept)


def adopt(tls, settings) -> bool:
    """Run the adoption steps due on this unit; True once nothing is left to do here."""
    from charmhelpers.core import hookenv, unitdata

    from . import ca_store

    pki_dir = find_pki_dir(hookenv.charm_dir())
    if pki_dir is None:
        return True
    if tls is None or not tls.has_peer_relation:
        return False
    files = read_pki(pki_dir)
    kv = unitdata.kv()
    if not kv.get(UNIT_DONE):
        _log(adopt_unit(tls, settings, files))
        kv.set(UNIT_DONE, True)
    if not tls.is_leader:
        return bool(tls.get_ca_bundle())
    try:
        _log(adopt_ca(tls, settings, files))
    except ca_store.CAUnavailable as exc:
        _log(f"cannot adopt the CA yet: {exc}", hookenv.WARNING)
        return False
    return True
