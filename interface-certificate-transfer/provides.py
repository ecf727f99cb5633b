"""interface:certificate_transfer, provides role: send CA certificates to other applications.

Relation protocol only (no crypto, no files): the charm layer chooses the certificates,
this module writes them the way the ``certificate_transfer`` requirers read them. README.md
in this directory is the protocol specification; keep the two in step.

- v1: the leader writes ``certificates`` (a JSON list of PEM strings, sorted, no
  duplicates) and ``version`` ``"1"`` in the provider's application bag.
- v0: for a requirer whose application bag does not say ``version`` ``"1"``, every unit
  also writes ``ca``, ``certificate``, ``chain`` (each JSON-encoded) and ``version``
  ``"0"`` in its own unit bag, as the charmlibs library's provider does for such a
  requirer (its app bag is written too, as above).

In a built charm this file is ``hooks/relations/certificate_transfer/provides.py``;
charms.reactive finds it from metadata.yaml (``provides: <name>: interface:
certificate_transfer``).
"""
from __future__ import annotations

import json
import os
import subprocess
from typing import Any, Iterable, List, Optional

from charmhelpers.core import hookenv
from charms.reactive import Endpoint

# Relation keys (see README.md).
KEY_CERTIFICATES = 'certificates'   # provider app bag (v1): JSON list of PEM strings
KEY_VERSION = 'version'             # provider app bag "1"; unit bag "0"; requirer app bag
KEY_CA = 'ca'                       # provider unit bag (v0): JSON string
KEY_CERTIFICATE = 'certificate'     # provider unit bag (v0): JSON string
KEY_CHAIN = 'chain'                 # provider unit bag (v0): JSON list of PEM strings
V0_KEYS = (KEY_CA, KEY_CERTIFICATE, KEY_CHAIN, KEY_VERSION)
V1_KEYS = (KEY_CERTIFICATES, KEY_VERSION)

# Bounds. What we send: at most MAX_CERTIFICATES certificates of at most MAX_PEM_CHARS
# each. What we read (the requirer's app bag is hostile input): only ``version``, at most
# MAX_VERSION_CHARS characters; anything else is version 0.
MAX_CERTIFICATES = 64
MAX_PEM_CHARS = 65536
MAX_VERSION_CHARS = 64
_BEGIN = '-----BEGIN CERTIFICATE-----'
_END = '-----END CERTIFICATE-----'


def split_certificates(text: Any) -> List[str]:
    """The certificate PEM blocks of ``text`` in their order, each as
    ``BEGIN...END\\n`` with its lines stripped, duplicates left out. Anything that is not
    a ``CERTIFICATE`` block (a private key above all) is dropped. Never raises."""
    if not isinstance(text, str):
        return []
    result: List[str] = []
    rest = text
    while len(result) < MAX_CERTIFICATES:
        start = rest.find(_BEGIN)
        if start < 0:
            break
        stop = rest.find(_END, start)
        if stop < 0:
            break
        block = rest[start:stop + len(_END)]
        rest = rest[stop + len(_END):]
        pem = '\n'.join(line.strip() for line in block.splitlines() if line.strip()) + '\n'
        if is_certificate_pem(pem) and pem not in result:
            result.append(pem)
    return result


def is_certificate_pem(text: Any) -> bool:
    """One bounded ``CERTIFICATE`` PEM block holding no private key (structure only)."""
    return (isinstance(text, str) and 0 < len(text) <= MAX_PEM_CHARS
            and text.startswith(_BEGIN) and text.rstrip().endswith(_END)
            and text.count(_BEGIN) == 1 and 'PRIVATE KEY' not in text)


def parse_version(raw: Any) -> tuple:
    """(1 or 0, problem or None) from the requirer's raw ``version`` value. Only ``1``
    (as the library writes it, ``json.dumps(1)``; also ``"1"`` quoted) means v1; absent
    means v0 with no problem; anything else is v0 and a problem to log. Never raises."""
    if raw is None or raw == '':
        return 0, None
    if not isinstance(raw, str):
        return 0, 'not a string'
    if len(raw) > MAX_VERSION_CHARS:
        return 0, f'{len(raw)} chars, over the limit of {MAX_VERSION_CHARS}'
    value = raw.strip()
    if value in ('1', '"1"'):
        return 1, None
    if value in ('0', '"0"'):
        return 0, None
    return 0, f'unknown version {value[:16]!r}'


class CertificateTransferProvides(Endpoint):
    """The ``certificate_transfer`` provides endpoint (layer:tls names it ``send-ca-cert``).

    Flags are charms.reactive's own: ``endpoint.{endpoint_name}.joined`` (a requirer unit
    is there), ``.changed`` / ``.changed.version`` and ``.departed`` (not cleared here:
    they are the charm author's to clear). Reads never raise on bad data; writes compare
    first, so an unchanged value wakes no requirer.
    """

    split_certificates = staticmethod(split_certificates)

    def _warn(self, message: str) -> None:
        hookenv.log(f'interface certificate_transfer: {self.endpoint_name}: {message}',
                    level=hookenv.WARNING)

    def remote_app(self, relation) -> Optional[str]:
        """The requirer's application name, or None while none of its units has joined
        (charms.reactive's ``application_name`` would then name our own application)."""
        if relation.joined_units:
            return relation.joined_units[0].unit_name.split('/')[0]
        if hookenv.relation_id() == relation.relation_id:
            return os.environ.get('JUJU_REMOTE_APP') or None  # e.g. -relation-created
        return None

    def requirer_version(self, relation) -> Optional[int]:
        """1 if the requirer's app bag says ``version`` 1, else 0; None when it cannot be
        read now (no remote application yet, or relation-get failed): decide later."""
        app = self.remote_app(relation)
        if app is None:
            return None
        try:
            bag = hookenv.relation_get(app=app, rid=relation.relation_id)
        except (subprocess.CalledProcessError, OSError, ValueError) as exc:
            self._warn(f'cannot read the application data of {app}: {type(exc).__name__}')
            return None
        raw = bag.get(KEY_VERSION) if isinstance(bag, dict) else None
        version, problem = parse_version(raw)
        if problem:
            self._warn(f'{app} version: {problem}; serving version 0')
        return version

    @staticmethod
    def _set(view, key: str, value: Optional[str]) -> bool:
        """Assign only if the value changes; None deletes. Returns True if written."""
        if view.data is None:
            view.data = {}
        current = view.get(key)
        if not value:
            if not current:
                return False
            view[key] = None  # published as null: relation-set deletes the key
            return True
        if current == value:
            return False
        if 'PRIVATE KEY' in value:  # defence in depth: nothing with key material leaves
            hookenv.log(f'interface certificate_transfer: refused to publish {key}: it '
                        'holds a private key', level=hookenv.ERROR)
            return False
        view[key] = value
        return True

    def publish(self, relation, certificates: Iterable[str], *, leader: bool,
                version: int) -> bool:
        """Publish ``certificates`` (PEM, newest CA first) on ``relation`` for a requirer
        of ``version``. The leader writes the app bag (v1 keys); every unit writes the v0
        keys in its own bag for a version-0 requirer and removes them for a version-1
        one. Nothing (or only keys that are not certificates) withdraws what was sent.
        Returns True if anything was written."""
        ordered = [c for c in certificates if is_certificate_pem(c)]
        ordered = list(dict.fromkeys(ordered))[:MAX_CERTIFICATES]
        listed = sorted(ordered)
        wrote = False
        if leader:
            app = relation.to_publish_app_raw
            wrote |= self._set(app, KEY_CERTIFICATES, json.dumps(listed) if listed else None)
            wrote |= self._set(app, KEY_VERSION, '1' if listed else None)
        unit = relation.to_publish_raw
        if version == 1 or not listed:
            for key in V0_KEYS:
                wrote |= self._set(unit, key, None)
        else:
            newest = ordered[0]
            wrote |= self._set(unit, KEY_CA, json.dumps(newest))
            wrote |= self._set(unit, KEY_CERTIFICATE, json.dumps(newest))
            wrote |= self._set(unit, KEY_CHAIN, json.dumps(listed))
            wrote |= self._set(unit, KEY_VERSION, '0')
        return wrote
