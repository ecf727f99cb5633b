"""interface:tls, peers role: the peer relation protocol for per-unit TLS certificates.

No crypto and no files here: this module only moves PEM text between units and manages
the flags that tell the layer (and legacy charms) what to do next. README.md in this
directory is the protocol specification; keep the two in step.

In a built charm this file is ``hooks/relations/tls/peers.py``; charms.reactive finds it
from metadata.yaml (``peers: certificates: interface: tls``).
"""
from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Dict, Iterable, List, Optional, Tuple

from charmhelpers.core import hookenv, unitdata
from charms.reactive import Endpoint, clear_flag, get_flags, is_flag_set, set_flag
from charms.reactive.flags import _get_flag_value
from charms.reactive.helpers import data_changed

# Legacy flags: existing charms react to these exact strings.
CREATE_CSR = 'create certificate signing request'
SIGN_CSR = 'sign certificate signing request'
SIGNED_CERT = 'signed certificate available'
LEGACY_FLAGS = (CREATE_CSR, SIGN_CSR, SIGNED_CERT)
# Flag added by this version: the leader has app-data entries for units that left.
DEPARTED = 'tls.peers.departed'

# Relation keys (see README.md).
KEY_CSR = 'csr'                      # unit bag, raw PEM
KEY_HOSTNAMES = 'tls-hostnames'      # unit bag, JSON list
KEY_ADDRESSES = 'tls-addresses'      # unit bag, JSON list
LEGACY_CERT_SUFFIX = '_signed_certificate'  # leader's unit bag: '<unit>_signed_certificate'
KEY_CA_BUNDLE = 'ca-bundle'          # app bag, raw PEM (newest CA first)
KEY_INTERMEDIATES = 'ca-intermediates'  # app bag, raw PEM: the signing CAs under the roots
KEY_CERTIFICATES = 'certificates'    # app bag, JSON {unit: certificate PEM}
KEY_SIGNED_CSRS = 'signed-csrs'      # app bag, JSON {unit: sha256 hex of the CSR PEM}
KEY_REJECTED_CSRS = 'rejections'     # app bag, JSON {unit: {"csr-sha256": hex, "reason": text}}
KEY_INSTALLED = 'tls-installed'      # unit bag, JSON {"ca-bundle": hex, "certificate": hex}
KEY_BARRED = 'barred'                # app bag, JSON list of unit names (revoked, barred)
KEY_REVOKED = 'revoked'              # app bag, JSON list of revoked-certificate records
KEY_CRLS = 'crl'                     # app bag, JSON {CA key id hex: CRL PEM}
MAX_REASON_CHARS = 200
JUJU_ADDRESS_KEYS = ('ingress-address', 'private-address')

# unitdata key: digest of the certificate we held when we last published a new CSR.
# Used only when the leader published no signed-csrs hash for us (a legacy leader).
_KV_CERT_BEFORE_CSR = 'tls.peers.cert-before-csr'
# unitdata key: {"relation": id, "offers": {peer: PEM}}, the certificates for this unit under
# the legacy key in the peers' bags, as last read (see TlsPeers._legacy_offers).
_KV_LEGACY_OFFERS = 'tls.peers.legacy-offers'
# unitdata key, leader only: {"relation": id, "bags": {peer: bag}}, every peer's unit bag as
# last read (see TlsPeers._remote_bags); removed when the unit is not the leader.
_KV_PEER_BAGS = 'tls.peers.bags'

MAX_PEM_CHARS = 65536
# Bounds on what is read from relation data (a peer's bag is hostile input): a value over
# its bound is ignored before it is parsed. The names a unit claims must fit in one CSR
# (16 KiB at the signer), so 64 KiB is plenty; a name is at most 253 characters (DNS).
MAX_CLAIMS_CHARS = 65536
MAX_NAME_CHARS = 253
MAX_INSTALLED_CHARS = 1024
MAX_JSON_CHARS = 16 * 1024 * 1024   # app-bag maps grow with the units; Juju's own bound
MAX_BARRED_CHARS = 65536
MAX_REVOKED = 1000                  # records kept (expired ones are dropped by the leader)
MAX_REVOKED_CHARS = 1024 * 1024
MAX_CRLS = 8                        # one per CA in the bundle (two during a rollover)
MAX_CRL_MAP_CHARS = 1024 * 1024
MAX_HEX_CHARS = 128                 # a serial number or a key id, hex
_CSR_LABELS = ('CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST')
_CRL_LABELS = ('X509 CRL',)
_CERT_LABELS = ('CERTIFICATE',)


def csr_digest(csr: str) -> str:
    """The sha256 hex digest of the exact CSR PEM text, as published in ``signed-csrs``."""
    return hashlib.sha256(csr.encode('utf-8')).hexdigest()


def legacy_cert_key(unit_name: str) -> str:
    """The legacy relation (and unitdata) key holding ``unit_name``'s certificate."""
    return unit_name + LEGACY_CERT_SUFFIX


def looks_like_pem(text: Any, labels: tuple = _CERT_LABELS) -> bool:
    """Cheap structural check: a string of bounded size that starts with a BEGIN line
    of one of ``labels`` and has the matching END line. Not a parser: the layer's policy
    validates properly before it uses anything."""
    if not isinstance(text, str) or not text or len(text) > MAX_PEM_CHARS:
        return False
    body = text.strip()
    for label in labels:
        if (body.startswith(f'-----BEGIN {label}-----')
                and f'-----END {label}-----' in body):
            return True
    return False


class TlsPeers(Endpoint):
    """The ``tls`` peers endpoint (normally named ``certificates``).

    Every hook, at start-up, the flags are recomputed from the relation data (see
    ``_update_flags``); methods that change data recompute them again, so handlers never
    run on stale flags. Reads never raise on bad data: bad values are ignored with a
    WARNING log line naming the unit, key and length (never the PEM body).
    """

    def __init__(self, endpoint_name: str, relation_ids: Optional[List[str]] = None):
        super().__init__(endpoint_name, relation_ids)
        # Keep our own handle on the peer relation: in a -departed hook for the last
        # remote unit, Endpoint._manage_departed drops the relation from self.relations
        # although the peer relation (and our own bags) still exist.
        self._peer_rel = self.relations[0] if len(self.relations) else None
        self._leader: Optional[bool] = None
        self._warned: set = set()
        self._remote_cache: Optional[Dict[str, Any]] = None
        self._offers: Optional[Dict[str, str]] = None

    # ----------------------------------------------------------------- framework glue

    @classmethod
    def from_flag(cls, flag: str) -> Optional[TlsPeers]:
        """The endpoint instance for ``flag``, also for the space-separated legacy flags.

        charms.reactive passes a handler's argument from ``endpoint_from_flag(flag)``,
        which finds this class from the flag value ``{'relation': endpoint_name}`` and
        then calls this method; ``Endpoint.from_flag`` only understands dotted flags.
        """
        if flag in LEGACY_FLAGS or flag == DEPARTED:
            if not is_flag_set(flag):
                return None
            value = _get_flag_value(flag)
            if isinstance(value, dict) and value.get('relation'):
                return cls.from_name(value['relation'])
            instances = [e for e in cls._endpoints.values() if isinstance(e, cls)]
            return instances[0] if len(instances) == 1 else None
        return super().from_flag(flag)

    def _manage_flags(self) -> None:
        # Endpoint._manage_flags skips manage_flags() in hooks of other endpoints once
        # 'joined' is set, and is never 'joined' for a single-unit app; our flags depend
        # on leadership and app data too, so they are recomputed in every hook.
        flags = _StartupFlags()
        self._manage_endpoint_flags(flags)
        rel = self._peer_rel
        if rel is not None and rel.relation_id not in self.relations.keys():
            hookenv.atexit(rel._flush_data)
        self._update_flags(flags)

    def _manage_endpoint_flags(self, flags: _StartupFlags) -> None:
        """charms.reactive's automatic flags (``endpoint.<name>.joined``, ``.departed``,
        ``.changed``, ``.changed.<key>``) with the same meaning as
        ``Endpoint._manage_flags`` (1.5.3), reading only the bag that can have changed.

        ``Endpoint._manage_flags`` reads every joined unit's bag in every hook of the
        endpoint (one ``relation-get`` each: N-1 per hook, N cubed per deploy of a peer
        relation). Juju runs ``relation-changed`` for a remote unit whenever that unit's
        settings version differs from the one recorded when the unit's last hook for it
        committed (worker/uniter/relation/resolver.go ``nextHookForRelation``, the
        versions from state/watcher.go ``relationUnitsWatcher``; recorded by
        worker/uniter/relation/state.go ``UpdateStateForHook``), and ``relation-joined``
        is always followed by ``relation-changed`` for the same unit (``ChangedPending``).
        So another unit's change is seen, and its flags set, in the hook about that unit;
        a hook about unit X (``JUJU_REMOTE_UNIT``) reads X's bag only. The first look
        (``joined`` not set yet: a first join, or an upgrade from an interface that did
        not set it) still reads every joined unit, as charms.reactive does."""
        already_joined = flags.is_set(self.expand_name('joined'))
        hook_name = hookenv.hook_name()
        rel_hook = hook_name.startswith(self.endpoint_name + '-relation-')
        departed_hook = rel_hook and hook_name.endswith('-departed')
        if self.is_joined:
            flags.set(self.expand_name('joined'))
        else:
            flags.clear(self.expand_name('joined'))
        if departed_hook:
            flags.set(self.expand_name('departed'))
        elif self.is_joined:
            flags.clear(self.expand_name('departed'))
        if not already_joined:
            units = list(self.all_joined_units)
        elif rel_hook and not departed_hook:
            remote = os.environ.get('JUJU_REMOTE_UNIT', '')
            units = [u for u in self.all_joined_units if u.unit_name == remote]
        else:
            units = []  # other hooks, a departure, an app-bag change: no unit bag changed
        for unit in units:
            for key, value in unit.received.items():
                data_key = (f'endpoint.{self.endpoint_name}.{unit.relation.relation_id}.'
                            f'{unit.unit_name}.{key}')
                if data_changed(data_key, value):
                    flags.set(self.expand_name('changed'))
                    flags.set(self.expand_name(f'changed.{key}'))
        self.manage_flags()

    # ----------------------------------------------------------------- helpers

    def _warn(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            hookenv.log('interface tls: ' + message, level=hookenv.WARNING)

    def _relation(self):
        """The peer Relation, or None when the relation does not exist (or is breaking)."""
        if self._peer_rel is None:
            return None
        if hookenv.hook_name() == f'{self.endpoint_name}-relation-broken':
            return None
        return self._peer_rel

    def _flag_value(self) -> Dict[str, str]:
        return {'relation': self.endpoint_name}

    @staticmethod
    def _view(view):
        """A relation data view whose backing dict exists (relation-get may give None)."""
        if view.data is None:
            view.data = {}
        return view

    def _own_bag(self):
        rel = self._relation()
        return None if rel is None else self._view(rel.to_publish_raw)

    def _app_bag(self):
        # to_publish_app reads our own app bag; allowed to every unit in a peer relation,
        # written only by the leader (checked by every writer below).
        rel = self._relation()
        return None if rel is None else self._view(rel.to_publish_app_raw)

    def _remote_bags(self) -> Dict[str, Any]:
        """Every peer's unit bag, for what needs them all (the leader's signing, names and
        rollover; see ``_remote_bag`` for one). Fixed for the hook (remote data and
        membership are), so looked up once per hook.

        On the leader the bags are kept in unitdata and a peer hook reads only the bag of
        the unit it is about, for the reason ``_legacy_offers`` gives: Juju runs
        ``relation-changed`` for a peer whenever its bag changed after this unit's last
        committed hook about it, so every change is seen in a hook about that peer, and
        unitdata is saved only when the hook succeeds. A leader's peer hook then costs
        one ``relation-get`` at any N instead of N. Every other hook (update-status
        among them, every 5 minutes by default) reads every bag again, and so does the
        first look (a new leader, a new relation, a record that does not parse): after
        ``juju resolved`` without a retry, Juju counts the peer's version as seen while
        unitdata rolled back, and that sweep is what brings the leader up to date.
        Only the keys the leader reads are kept, each cut to one character over its read
        bound (see ``_kept_bag``), in this hook as in later ones."""
        rel = self._relation()
        if rel is None:
            return {}
        if self._remote_cache is not None:
            return self._remote_cache
        units = rel.joined_units
        present = {unit.unit_name for unit in units}
        if not self.is_leader:
            self._remote_cache = {unit.unit_name: unit.received_raw.data or {}
                                  for unit in units}
            return self._remote_cache
        hook_name = hookenv.hook_name()
        sweep = not hook_name.startswith(self.endpoint_name + '-relation-')
        kv = unitdata.kv()
        stored = kv.get(_KV_PEER_BAGS)
        bags, owners = self._to_reread(stored, 'bags', present, sweep)
        # the record is a file: hostile too, so what it holds is cut the same way
        bags = {owner: _kept_bag(bag) for owner, bag in bags.items() if isinstance(bag, dict)}
        for owner in present - set(bags):
            if owner not in owners:
                owners.append(owner)  # a record without it (or with garbage for it)
        for owner in owners:
            bags[owner] = _kept_bag(units[owner].received_raw.data or {})
        value = {'relation': rel.relation_id, 'bags': bags}
        if stored != value:
            kv.set(_KV_PEER_BAGS, value)
        self._remote_cache = bags
        return bags

    def _to_reread(self, stored: Any, field: str, present: set, full: bool = False
                   ) -> Tuple[Dict[str, Any], List[str]]:
        """From a unitdata record ``{"relation": id, field: {peer: value}}``: the values of
        the peers still in the relation, and the peers to read again in this hook. That is
        every peer on a first look (no record for this relation, or one that does not
        parse) or when ``full``, else only the unit this hook is about."""
        rel = self._relation()
        if (not full and isinstance(stored, dict) and rel is not None
                and stored.get('relation') == rel.relation_id
                and isinstance(stored.get(field), dict)):
            kept = {owner: value for owner, value in stored[field].items()
                    if owner in present}
            remote = self._hook_remote_unit()
            return kept, [remote] if remote in present else []
        return {}, sorted(present)

    def _remote_bag(self, unit_name: str) -> Dict[str, Any]:
        """One peer's unit bag (one ``relation-get``, cached for the hook); {} for a unit
        that is not in the relation."""
        rel = self._relation()
        if rel is None:
            return {}
        if self._remote_cache is None and self.is_leader:
            self._remote_bags()  # the leader's kept bags: one read for the hook's peer
        if self._remote_cache is not None:
            return self._remote_cache.get(unit_name, {})
        units = rel.joined_units
        if unit_name not in units.keys():
            return {}
        return units[unit_name].received_raw.data or {}

    def _unit_bag(self, unit_name: str) -> Dict[str, str]:
        if unit_name == self.local_unit_name:
            bag = self._own_bag()
            return {} if bag is None else bag.data
        return self._remote_bag(unit_name)

    def _hook_remote_unit(self) -> Optional[str]:
        """The remote unit this hook is about: ``JUJU_REMOTE_UNIT`` in a -joined or
        -changed hook of this endpoint, else None (a departure, an app-bag change, any
        other hook)."""
        hook_name = hookenv.hook_name()
        if hook_name not in (f'{self.endpoint_name}-relation-joined',
                             f'{self.endpoint_name}-relation-changed'):
            return None
        return os.environ.get('JUJU_REMOTE_UNIT') or None

    def _load_json(self, raw: Any, where: str, max_chars: int = MAX_JSON_CHARS,
                   problems: Optional[List[str]] = None) -> Any:
        """The JSON value of ``raw``, or None (logged, and noted in ``problems``) when it
        is not a string, longer than ``max_chars``, not JSON or nested too deeply for
        Python's parser (RecursionError). Never raises."""
        value, problem = _parse_json(raw, max_chars)
        if problem is not None:
            self._warn(f'{where}: {problem}, ignored')
            if problems is not None:
                problems.append(f'{where.rsplit(" ", 1)[-1]} ({problem})')
        return value

    def _str_map(self, raw: Any, where: str, pem_labels: Optional[tuple] = None
                 ) -> Dict[str, str]:
        value = self._load_json(raw, where)
        if value is None:
            return {}
        if not isinstance(value, dict):
            self._warn(f'{where}: not a JSON object, ignored')
            return {}
        result = {}
        for key, item in value.items():
            if not isinstance(item, str) or not item:
                self._warn(f'{where}[{key}]: not a non-empty string, ignored')
            elif pem_labels is not None and not looks_like_pem(item, pem_labels):
                self._warn(f'{where}[{key}]: does not look like PEM ({len(item)} chars), ignored')
            else:
                result[key] = item
        return result

    def _str_list(self, raw: Any, where: str, max_chars: int = MAX_CLAIMS_CHARS,
                  problems: Optional[List[str]] = None) -> List[str]:
        """A JSON list of non-empty strings of at most MAX_NAME_CHARS each; anything else
        is left out (logged, noted in ``problems``)."""
        value = self._load_json(raw, where, max_chars, problems)
        if value is None:
            return []
        key = where.rsplit(' ', 1)[-1]
        if not isinstance(value, list):
            self._warn(f'{where}: not a JSON list, ignored')
            if problems is not None:
                problems.append(f'{key} (not a JSON list)')
            return []
        result = []
        bad = 0
        for item in value:
            if isinstance(item, str) and item and len(item) <= MAX_NAME_CHARS:
                result.append(item)
            else:
                bad += 1
        if bad:
            self._warn(f'{where}: {bad} item(s) not a string of 1-{MAX_NAME_CHARS} '
                       'characters, ignored')
            if problems is not None:
                problems.append(f'{key} ({bad} bad item(s))')
        return result

    def _pem_value(self, raw: Any, where: str, labels: tuple) -> Optional[str]:
        if raw is None or raw == '':
            return None
        if not looks_like_pem(raw, labels):
            block = _single_pem_block(raw, labels)
            if block is not None:  # easy-rsa's issued/*.crt: openssl's text dump, then PEM
                return block
            size = len(raw) if isinstance(raw, str) else 0
            self._warn(f'{where}: does not look like PEM ({size} chars), ignored')
            return None
        return raw

    @staticmethod
    def _set_raw(view, key: str, value: Optional[str]) -> bool:
        """Assign only if the value changes (an assignment marks the whole bag for
        publishing at hook exit). None or '' deletes the key. Returns True if written."""
        current = view.get(key)
        if not value:
            if not current:
                return False
            view[key] = None  # published as null: relation-set deletes the key
            return True
        if current == value:
            return False
        if 'PRIVATE KEY' in value:
            # Defence in depth: whatever a caller passes, no key material goes on the wire.
            hookenv.log(f'interface tls: refused to publish {key}: it holds a private key',
                        level=hookenv.ERROR)
            return False
        view[key] = value
        return True

    def _set_json(self, view, key: str, value: Any) -> bool:
        """Assign JSON (sorted keys) only if it differs in meaning; empty values delete."""
        if not value:
            return self._set_raw(view, key, None)
        current = view.get(key)
        if current:
            try:
                if json.loads(current) == value:
                    return False
            except (ValueError, RecursionError, TypeError):
                pass  # whatever is there now (even garbage in our own bag) is replaced
        return self._set_raw(view, key, json.dumps(value, sort_keys=True))

    def _leader_app_bag(self, what: str):
        """The app bag for writing, or None (with a log line) if we may not write it."""
        bag = self._app_bag()
        if bag is None:
            self._warn(f'{what}: no {self.endpoint_name} relation yet, nothing written')
            return None
        if not self.is_leader:
            self._warn(f'{what}: only the leader writes application data, ignored')
            return None
        return bag

    # ----------------------------------------------------------------- identity

    @property
    def local_unit_name(self) -> str:
        """This unit's name, e.g. ``app/0``."""
        return hookenv.local_unit()

    @property
    def is_leader(self) -> bool:
        """Whether this unit acts as the leader: it holds the lease (asked once per hook,
        then cached) and is not leaving. A leader being removed keeps its lease until it is
        dead (Juju revokes it then), but its view of the peers shrinks as it departs from
        each of them: leader work from that view would drop live units' certificates or
        end a CA rollover early. The next leader takes over once it is gone."""
        if self._leader is None:
            self._leader = not self.local_unit_leaving and bool(hookenv.is_leader())
        return self._leader

    @property
    def local_unit_leaving(self) -> bool:
        """This unit is going away: Juju names it in ``JUJU_DEPARTING_UNIT`` in its own
        ``-relation-departed`` hooks, and ``stop`` and ``remove`` follow those."""
        return (os.environ.get('JUJU_DEPARTING_UNIT') == self.local_unit_name
                or hookenv.hook_name() in ('stop', 'remove'))

    @property
    def has_peer_relation(self) -> bool:
        """Whether the peer relation exists (also with no remote unit)."""
        return self._relation() is not None

    def peer_units(self) -> List[str]:
        """Remote units currently in the relation, sorted (never the local unit); from
        ``relation-list`` alone (no bag is read)."""
        rel = self._relation()
        return [] if rel is None else sorted(u.unit_name for u in rel.joined_units)

    # ----------------------------------------------------------------- CSR side

    def own_csr(self) -> Optional[str]:
        """The CSR PEM this unit has published (this hook's pending value included)."""
        bag = self._own_bag()
        value = None if bag is None else bag.get(KEY_CSR)
        return value if isinstance(value, str) and value else None

    def set_csr(self, csr: str) -> None:
        """Publish this unit's CSR (raw PEM in ``csr``) and clear
        ``create certificate signing request``. Written only if it changed."""
        bag = self._own_bag()
        if bag is None:
            self._warn(f'set_csr: no {self.endpoint_name} relation yet, nothing published')
            return
        if not isinstance(csr, str) or not csr.strip():
            self._warn('set_csr: empty or non-string CSR ignored')
            return
        if csr != self.own_csr():
            cert = self.get_signed_cert()
            kv = unitdata.kv()
            if cert:
                kv.set(_KV_CERT_BEFORE_CSR, csr_digest(cert))
            else:
                kv.unset(_KV_CERT_BEFORE_CSR)
            self._set_raw(bag, KEY_CSR, csr)
        clear_flag(CREATE_CSR)
        self._update_flags()

    def request_new_csr(self) -> None:
        """Ask for a new CSR: sets ``create certificate signing request`` again (when the
        relation exists) until the next ``set_csr``."""
        if self._relation() is None:
            self._warn(f'request_new_csr: no {self.endpoint_name} relation yet')
            return
        set_flag(CREATE_CSR, self._flag_value())

    def publish_claims(self, hostnames: List[str], addresses: List[str]) -> None:
        """Publish the names this unit claims (``tls-hostnames``, ``tls-addresses``,
        JSON lists, sorted and deduplicated) for the leader's policy."""
        bag = self._own_bag()
        if bag is None:
            self._warn(f'publish_claims: no {self.endpoint_name} relation yet')
            return
        self._set_json(bag, KEY_HOSTNAMES, sorted({h for h in hostnames if h}))
        self._set_json(bag, KEY_ADDRESSES, sorted({a for a in addresses if a}))

    def unit_claims(self, unit_name: str) -> Dict[str, List[str]]:
        """``{'hostnames': [...], 'addresses': [...]}`` claimed by ``unit_name`` (the local
        unit too). Addresses are its ``tls-addresses`` plus the Juju-filled
        ``ingress-address`` and ``private-address``, deduplicated, in that order."""
        bag = self._unit_bag(unit_name)
        problems: List[str] = []
        hostnames = self._str_list(bag.get(KEY_HOSTNAMES), f'{unit_name} {KEY_HOSTNAMES}',
                                   problems=problems)
        addresses = self._str_list(bag.get(KEY_ADDRESSES), f'{unit_name} {KEY_ADDRESSES}',
                                   problems=problems)
        for key in JUJU_ADDRESS_KEYS:
            value = bag.get(key)
            if isinstance(value, str) and 0 < len(value) <= MAX_NAME_CHARS:
                addresses.append(value)
            elif value:
                size = len(value) if isinstance(value, str) else 0
                self._warn(f'{unit_name} {key}: not an address ({size} chars), ignored')
                problems.append(f'{key} (not an address)')
        claims = {'hostnames': _unique(hostnames), 'addresses': _unique(addresses)}
        if problems:
            claims['ignored'] = problems
        return claims

    def get_csr_map(self) -> Dict[str, str]:
        """``{unit_name: csr_pem}`` for every unit that published a CSR, the local unit
        included. Values that do not look like a PEM CSR are left out (logged)."""
        result = {}
        own = self.own_csr()
        if own is not None and self._pem_value(
                own, f'{self.local_unit_name} {KEY_CSR}', _CSR_LABELS):
            result[self.local_unit_name] = own
        for unit_name, bag in sorted(self._remote_bags().items()):
            csr = self._pem_value(bag.get(KEY_CSR), f'{unit_name} {KEY_CSR}',
                                  _CSR_LABELS)
            if csr is not None:
                result[unit_name] = csr
        return result

    def pending_csrs(self) -> Dict[str, str]:
        """The part of ``get_csr_map()`` with no certificate issued from that exact CSR
        (per the ``signed-csrs`` hashes in the app data). A CSR the leader refused stays
        pending: the layer decides when to look at it again (see ``update_rejections``)."""
        signed = self.get_signed_csrs()
        return {unit: csr for unit, csr in self.get_csr_map().items()
                if signed.get(unit) != csr_digest(csr)}

    def rejected_csrs(self) -> Dict[str, Dict[str, str]]:
        """App ``rejections``: ``{unit: {'csr-sha256': hex, 'reason': text}}``."""
        bag = self._app_bag()
        if bag is None:
            return {}
        value = self._load_json(bag.get(KEY_REJECTED_CSRS), 'app ' + KEY_REJECTED_CSRS)
        if value is None:
            return {}
        if not isinstance(value, dict):
            self._warn(f'app {KEY_REJECTED_CSRS}: not a JSON object, ignored')
            return {}
        result = {}
        for unit, entry in value.items():
            clean = _rejection(entry)
            if clean is None:
                self._warn(f'app {KEY_REJECTED_CSRS}[{unit}]: bad entry, ignored')
            else:
                result[unit] = clean
        return result

    def update_rejections(self, rejections: Dict[str, Dict[str, str]],
                          cleared: Iterable[str] = ()) -> None:
        """Leader: record refused CSRs, ``{unit: {'csr-sha256': hex of the refused CSR,
        'reason': short secret-free text}}`` (reasons cut to 200 characters), and drop
        the records of the units in ``cleared``. One write, only if something changed.
        ``set_cert(s)`` and ``remove_unit`` also drop a unit's record."""
        bag = self._leader_app_bag('update_rejections')
        if bag is None:
            return
        current = self.rejected_csrs()
        for unit in cleared:
            current.pop(unit, None)
        for unit, entry in rejections.items():
            clean = _rejection(entry)
            if not isinstance(unit, str) or not unit or clean is None:
                self._warn(f'update_rejections: bad entry for {unit!r} ignored')
                continue
            current[unit] = clean
        self._set_json(bag, KEY_REJECTED_CSRS, current)

    def get_rejection(self, unit_name: Optional[str] = None) -> Optional[Dict[str, str]]:
        """The leader's record of a refused CSR for ``unit_name`` (default: this unit),
        ``{'csr-sha256': ..., 'reason': ...}``, or None. Compare ``csr-sha256`` with
        ``csr_digest(own_csr())`` to know whether it is about the current CSR."""
        return self.rejected_csrs().get(unit_name or self.local_unit_name)

    # ----------------------------------------------------------------- CA rollover

    def publish_installed(self, bundle_digest: Optional[str],
                          cert_digest: Optional[str]) -> None:
        """Publish (or, with None, withdraw) ``tls-installed``: sha256 hex digests of the
        CA bundle and certificate this unit uses, so that the leader can run a CA
        rollover in phases. Written only if it changed."""
        bag = self._own_bag()
        if bag is None:
            return
        value = ({'ca-bundle': bundle_digest, 'certificate': cert_digest}
                 if bundle_digest and cert_digest else None)
        self._set_json(bag, KEY_INSTALLED, value)

    def installed_acks(self) -> Dict[str, Dict[str, str]]:
        """``{unit: {'ca-bundle': hex, 'certificate': hex}}`` for every unit (this one
        included) that published ``tls-installed``; bad entries are left out (logged)."""
        result = {}
        bags = dict(self._remote_bags())
        bags[self.local_unit_name] = self._unit_bag(self.local_unit_name)
        for unit in [self.local_unit_name] + sorted(set(bags) - {self.local_unit_name}):
            raw = bags[unit].get(KEY_INSTALLED)
            value = self._load_json(raw, f'{unit} {KEY_INSTALLED}', MAX_INSTALLED_CHARS)
            if value is None:
                continue
            if (isinstance(value, dict) and isinstance(value.get('ca-bundle'), str)
                    and isinstance(value.get('certificate'), str)):
                result[unit] = {'ca-bundle': value['ca-bundle'],
                                'certificate': value['certificate']}
            else:
                self._warn(f'{unit} {KEY_INSTALLED}: bad value, ignored')
        return result

    # ----------------------------------------------------------------- revocation

    def get_barred(self) -> List[str]:
        """App ``barred``: the units whose CSRs the leader refuses until the operator lifts
        the bar (``unbar-unit``), sorted; bad items left out (logged)."""
        bag = self._app_bag()
        if bag is None:
            return []
        return sorted(set(self._str_list(bag.get(KEY_BARRED), 'app ' + KEY_BARRED,
                                         MAX_BARRED_CHARS)))

    def set_barred(self, units: Iterable[str]) -> None:
        """Leader: publish the barred units (an empty list deletes the key)."""
        bag = self._leader_app_bag('set_barred')
        if bag is None:
            return
        clean = sorted({u for u in units
                        if isinstance(u, str) and 0 < len(u) <= MAX_NAME_CHARS})
        self._set_json(bag, KEY_BARRED, clean)

    def get_revoked(self) -> List[Dict[str, Any]]:
        """App ``revoked``: records ``{"serial": hex, "unit", "reason", "date": epoch,
        "issuer": CA key id hex, "not-after": epoch}``, at most MAX_REVOKED; a record of
        another shape is left out (logged)."""
        bag = self._app_bag()
        if bag is None:
            return []
        value = self._load_json(bag.get(KEY_REVOKED), 'app ' + KEY_REVOKED, MAX_REVOKED_CHARS)
        if value is None:
            return []
        if not isinstance(value, list):
            self._warn(f'app {KEY_REVOKED}: not a JSON list, ignored')
            return []
        result = [clean for clean in map(_revoked_record, value[:MAX_REVOKED])
                  if clean is not None]
        if len(result) != min(len(value), MAX_REVOKED) or len(value) > MAX_REVOKED:
            self._warn(f'app {KEY_REVOKED}: {len(value) - len(result)} bad or excess '
                       'record(s) ignored')
        return result

    def set_revoked(self, records: List[Dict[str, Any]]) -> None:
        """Leader: publish the revoked-certificate records (bad ones dropped, logged)."""
        bag = self._leader_app_bag('set_revoked')
        if bag is None:
            return
        clean = [r for r in map(_revoked_record, records) if r is not None]
        if len(clean) != len(records):
            self._warn('set_revoked: bad record(s) ignored')
        if len(clean) > MAX_REVOKED:
            self._warn(f'set_revoked: over {MAX_REVOKED} records, the oldest dropped')
        self._set_json(bag, KEY_REVOKED, clean[-MAX_REVOKED:])

    def get_crls(self) -> Dict[str, str]:
        """App ``crl``: ``{CA key id hex: CRL PEM}`` (at most MAX_CRLS; entries that are
        not a hex key id and one PEM CRL are left out, logged). Not verified here: the
        layer checks each against its CA before use."""
        bag = self._app_bag()
        if bag is None:
            return {}
        value = self._load_json(bag.get(KEY_CRLS), 'app ' + KEY_CRLS, MAX_CRL_MAP_CHARS)
        if value is None:
            return {}
        if not isinstance(value, dict):
            self._warn(f'app {KEY_CRLS}: not a JSON object, ignored')
            return {}
        result = {}
        for key, pem in list(value.items())[:MAX_CRLS]:
            if _is_hex(key) and looks_like_pem(pem, _CRL_LABELS):
                result[key] = pem
            else:
                self._warn(f'app {KEY_CRLS}: a bad entry ignored')
        return result

    def set_crls(self, mapping: Dict[str, str]) -> None:
        """Leader: publish the CRLs, one per CA (an empty map deletes the key)."""
        bag = self._leader_app_bag('set_crls')
        if bag is None:
            return
        clean = {k: v for k, v in mapping.items()
                 if _is_hex(k) and looks_like_pem(v, _CRL_LABELS)}
        self._set_json(bag, KEY_CRLS, dict(sorted(clean.items())[:MAX_CRLS]))

    # ----------------------------------------------------------------- leader side

    def get_signed_csrs(self) -> Dict[str, str]:
        """``{unit_name: sha256 hex}`` of the CSR each certificate was issued from."""
        bag = self._app_bag()
        if bag is None:
            return {}
        return self._str_map(bag.get(KEY_SIGNED_CSRS), 'app ' + KEY_SIGNED_CSRS)

    def get_certificates(self) -> Dict[str, str]:
        """``{unit_name: certificate PEM}`` from the app data (bad entries left out)."""
        bag = self._app_bag()
        if bag is None:
            return {}
        return self._str_map(bag.get(KEY_CERTIFICATES), 'app ' + KEY_CERTIFICATES,
                             _CERT_LABELS)

    def set_cert(self, unit_name: str, certificate: str) -> None:
        """Leader: publish ``unit_name``'s certificate (see ``set_certs``)."""
        self.set_certs({unit_name: certificate})

    def set_certs(self, mapping: Dict[str, str]) -> None:
        """Leader: publish several certificates in one write: the app ``certificates``
        map, the ``signed-csrs`` hash of each unit's CURRENT CSR, and the legacy
        ``<unit>_signed_certificate`` keys in the leader's unit bag. Values that do not
        look like a PEM certificate are ignored (logged). Non-leader: logged, ignored."""
        bag = self._leader_app_bag('set_certs')
        if bag is None:
            return
        certs = self.get_certificates()
        signed = self.get_signed_csrs()
        csrs = self.get_csr_map()
        own = self._own_bag()
        for unit_name, cert in sorted(mapping.items()):
            if not isinstance(unit_name, str) or not unit_name:
                self._warn('set_certs: bad unit name ignored')
                continue
            if self._pem_value(cert, 'set_certs ' + unit_name, _CERT_LABELS) is None:
                continue
            certs[unit_name] = cert
            if unit_name in csrs:
                signed[unit_name] = csr_digest(csrs[unit_name])
            else:
                signed.pop(unit_name, None)
            if self._is_legacy_peer(unit_name):
                self._set_raw(own, legacy_cert_key(unit_name), cert)
        self._set_json(bag, KEY_CERTIFICATES, certs)
        self._set_json(bag, KEY_SIGNED_CSRS, signed)
        self._drop_rejections([u for u in mapping if u in certs])
        self._update_flags()

    def _drop_rejections(self, units: List[str]) -> None:
        rejected = self.rejected_csrs()
        if any(unit in rejected for unit in units):
            for unit in units:
                rejected.pop(unit, None)
            self._set_json(self._app_bag(), KEY_REJECTED_CSRS, rejected)

    def remove_unit(self, unit_name: str) -> None:
        """Leader: drop ``unit_name`` from ``certificates``, ``signed-csrs`` and the
        legacy key in the leader's unit bag (written only if something was there)."""
        bag = self._leader_app_bag('remove_unit')
        if bag is None:
            return
        certs = self.get_certificates()
        signed = self.get_signed_csrs()
        certs.pop(unit_name, None)
        signed.pop(unit_name, None)
        self._set_json(bag, KEY_CERTIFICATES, certs)
        self._set_json(bag, KEY_SIGNED_CSRS, signed)
        self._drop_rejections([unit_name])
        self._set_raw(self._own_bag(), legacy_cert_key(unit_name), None)
        self._update_flags()

    def departed_units(self) -> List[str]:
        """Units that have entries in the app data (or legacy keys in this unit's bag)
        but are no longer in the relation, sorted: what the leader should
        ``remove_unit``."""
        if self._relation() is None:
            return []
        names = (set(self.get_certificates()) | set(self.get_signed_csrs())
                 | set(self.rejected_csrs()))
        own = self._own_bag()
        names |= {key[:-len(LEGACY_CERT_SUFFIX)] for key in own.data
                  if key.endswith(LEGACY_CERT_SUFFIX) and own.data.get(key)}
        present = set(self.peer_units()) | {self.local_unit_name}
        return sorted(names - present)

    def set_ca_bundle(self, pem: str) -> None:
        """Leader: publish the CA bundle (PEM, newest CA first) as ``ca-bundle``."""
        bag = self._leader_app_bag('set_ca_bundle')
        if bag is None:
            return
        if self._pem_value(pem, 'set_ca_bundle', _CERT_LABELS) is None:
            return
        self._set_raw(bag, KEY_CA_BUNDLE, pem)

    def set_ca_intermediates(self, pem: Optional[str]) -> None:
        """Leader: publish the intermediate CAs that sign the units' certificates under
        the roots of ``ca-bundle`` (PEM, newest first) as ``ca-intermediates``; units
        present them after their certificate and verify CRLs with them. Empty or None
        removes the key (every CA self-signed)."""
        bag = self._leader_app_bag('set_ca_intermediates')
        if bag is None:
            return
        if pem and self._pem_value(pem, 'set_ca_intermediates', _CERT_LABELS) is None:
            return
        self._set_raw(bag, KEY_INTERMEDIATES, pem or None)

    def get_ca_intermediates(self) -> str:
        """The ``ca-intermediates`` PEM from the app data, or "" (none, or not PEM)."""
        bag = self._app_bag()
        if bag is None or not bag.get(KEY_INTERMEDIATES):
            return ''
        return self._pem_value(bag.get(KEY_INTERMEDIATES), 'app ' + KEY_INTERMEDIATES,
                               _CERT_LABELS) or ''

    def get_ca_bundle(self) -> Optional[str]:
        """The CA bundle PEM from the app data, or None."""
        bag = self._app_bag()
        if bag is None:
            return None
        return self._pem_value(bag.get(KEY_CA_BUNDLE), 'app ' + KEY_CA_BUNDLE, _CERT_LABELS)

    def legacy_certificates(self) -> Dict[str, str]:
        """``{unit_name: certificate}`` from legacy ``<unit>_signed_certificate`` keys in
        every bag (own bag first, then peers by name): for adopting a legacy PKI."""
        result: Dict[str, str] = {}
        bags = [(self.local_unit_name, self._unit_bag(self.local_unit_name))]
        bags += sorted(self._remote_bags().items())
        for owner, bag in bags:
            for key, value in sorted(bag.items()):
                if not key.endswith(LEGACY_CERT_SUFFIX):
                    continue
                unit_name = key[:-len(LEGACY_CERT_SUFFIX)]
                cert = self._pem_value(value, f'{owner} {key}', _CERT_LABELS)
                if cert is not None and unit_name not in result:
                    result[unit_name] = cert
        return result

    # ----------------------------------------------------------------- this unit's cert

    def get_signed_cert(self) -> Optional[str]:
        """This unit's certificate PEM: from the app ``certificates``, else the legacy
        ``<unit>_signed_certificate`` key in any bag; None if there is none. It may have
        been issued for an older CSR: see ``signed_cert_is_current``."""
        me = self.local_unit_name
        cert = self.get_certificates().get(me)
        if cert is not None:
            return cert
        candidates = self._legacy_candidates()
        if not candidates:
            return None
        stale = unitdata.kv().get(_KV_CERT_BEFORE_CSR)
        fresh = [c for c in candidates if csr_digest(c) != stale]
        return (fresh or candidates)[0]

    def _legacy_candidates(self) -> List[str]:
        """This unit's certificates under the legacy key, own bag first, then peers by
        name (the peers' from ``_legacy_offers``)."""
        key = legacy_cert_key(self.local_unit_name)
        own = self._pem_value(self._unit_bag(self.local_unit_name).get(key),
                              f'{self.local_unit_name} {key}', _CERT_LABELS)
        return ([own] if own is not None else []) + [
            cert for _, cert in sorted(self._legacy_offers().items())]

    def _legacy_offers(self) -> Dict[str, str]:
        """``{peer: certificate}``: the peers whose unit bag holds a certificate for this
        unit under the legacy key (what a legacy leader publishes), kept in unitdata.

        Read in full only on the first look (nothing stored yet for this relation: a new
        unit, or the first hook after an upgrade from a version that did not store it);
        after that a hook re-reads only the bag of the unit it is about. Juju runs
        ``relation-joined`` then ``relation-changed`` for every unit that enters, and
        ``relation-changed`` for a unit whenever its bag changed after this unit's last
        committed hook about it (worker/uniter/relation/resolver.go
        ``nextHookForRelation``), so every change of a peer's bag is seen in a hook about
        that peer; unitdata is saved only when the hook succeeds, like Juju's record of
        the version seen. Peers no longer in the relation are dropped."""
        if self._offers is not None:
            return self._offers
        rel = self._relation()
        if rel is None:
            return {}
        key = legacy_cert_key(self.local_unit_name)
        present = set(self.peer_units())
        kv = unitdata.kv()
        stored = kv.get(_KV_LEGACY_OFFERS)
        offers, owners = self._to_reread(stored, 'offers', present)
        offers = {owner: cert for owner, cert in offers.items() if looks_like_pem(cert)}
        for owner in owners:
            cert = self._pem_value(self._remote_bag(owner).get(key), f'{owner} {key}',
                                   _CERT_LABELS)
            if cert is None:
                offers.pop(owner, None)
            else:
                offers[owner] = cert
        value = {'relation': rel.relation_id, 'offers': offers}
        if stored != value:
            kv.set(_KV_LEGACY_OFFERS, value)
        self._offers = offers
        return offers

    def signed_cert_is_current(self) -> bool:
        """Whether this unit's certificate was issued for its current CSR: the app
        ``signed-csrs`` hash matches; with no hash for us (a legacy leader), whether the
        certificate differs from the one we held when we last published a new CSR."""
        csr = self.own_csr()
        cert = self.get_signed_cert()
        if not csr or not cert:
            return False
        digest = self.get_signed_csrs().get(self.local_unit_name)
        if digest is not None:
            return digest == csr_digest(csr)
        return csr_digest(cert) != unitdata.kv().get(_KV_CERT_BEFORE_CSR)

    # ----------------------------------------------------------------- flags

    def _update_flags(self, flags: Optional[_StartupFlags] = None) -> None:
        """Recompute every flag this interface owns from the current data (``flags``: the
        start-up's one read of the flags; a handler's call sets and clears directly)."""
        flags = flags or _DirectFlags()
        rel = self._relation()
        if rel is None:
            for flag in LEGACY_FLAGS + (DEPARTED,):
                flags.clear(flag)
            return
        # The record of the peers' legacy offers follows every hook about a peer, also
        # while the app bag serves this unit (it may stop: a removal, a revocation).
        self._legacy_offers()
        value = self._flag_value()
        # Set when nothing is published yet; kept while set (a request). Re-setting also
        # gives the flag our value if an upper layer set it bare (legacy charms may).
        if self.own_csr() is None or flags.is_set(CREATE_CSR):
            flags.set(CREATE_CSR, value)
        leader = self.is_leader
        flags.toggle(SIGN_CSR, leader and bool(self.pending_csrs()), value)
        flags.toggle(DEPARTED, leader and bool(self.departed_units()), value)
        current = self.signed_cert_is_current()
        flags.toggle(SIGNED_CERT, current, value)
        if current:
            cert = self.get_signed_cert()
            key = legacy_cert_key(self.local_unit_name)
            kv = unitdata.kv()
            if kv.get(key) != cert:
                kv.set(key, cert)
        if leader:
            self._mirror_legacy_keys()
        else:
            self._drop_legacy_keys()
            kv = unitdata.kv()
            if kv.get(_KV_PEER_BAGS) is not None:
                kv.unset(_KV_PEER_BAGS)  # a later leadership starts from a full read

    def _is_legacy_peer(self, unit_name: str) -> bool:
        """A peer still running the legacy interface: it publishes a CSR but none of the
        names (``tls-hostnames``/``tls-addresses``) this version publishes with it."""
        if unit_name == self.local_unit_name:
            return False
        bag = self._remote_bags().get(unit_name)
        return bag is not None and not (bag.get(KEY_HOSTNAMES) or bag.get(KEY_ADDRESSES))

    def _mirror_legacy_keys(self) -> None:
        # The leader keeps legacy peers served: its unit bag mirrors their certificates
        # from the app map. Current peers read the app bag, so they get no mirror: a
        # second bag written per signing round would wake every peer twice.
        own = self._own_bag()
        for unit_name, cert in self.get_certificates().items():
            self._set_raw(own, legacy_cert_key(unit_name),
                          cert if self._is_legacy_peer(unit_name) else None)

    def _drop_legacy_keys(self) -> None:
        # A former leader drops mirrored keys the app data now serves, so legacy peers
        # do not read its stale copies after the new leader re-signs.
        own = self._own_bag()
        served = self.get_certificates()
        for key in list(own.data):
            if key.endswith(LEGACY_CERT_SUFFIX) and key[:-len(LEGACY_CERT_SUFFIX)] in served:
                self._set_raw(own, key, None)


# The keys of a peer's bag the leader reads, with the bound its reader applies
# (TlsPeers._remote_bags keeps only these; the legacy certificate keys are kept too).
_KEPT_KEYS = {KEY_CSR: MAX_PEM_CHARS, KEY_HOSTNAMES: MAX_CLAIMS_CHARS,
              KEY_ADDRESSES: MAX_CLAIMS_CHARS, KEY_INSTALLED: MAX_INSTALLED_CHARS,
              **{key: MAX_NAME_CHARS for key in JUJU_ADDRESS_KEYS}}


def _kept_bag(bag: Dict[str, Any]) -> Dict[str, str]:
    """What the leader keeps of a peer's bag: the keys it reads, never another layer's
    (a peer bag may hold anything, secrets of other layers included), each value cut to
    one character over the bound its reader applies. Every reader refuses a value over
    its bound, so the cut value is refused the same way (and keeps its truthiness),
    while a hostile peer cannot make the leader store megabytes."""
    kept = {}
    for key, value in bag.items():
        bound = _KEPT_KEYS.get(key)
        if bound is None and isinstance(key, str) and key.endswith(LEGACY_CERT_SUFFIX):
            bound = MAX_PEM_CHARS
        if bound is not None and isinstance(value, str):
            kept[key] = value[:bound + 1]
    return kept


def _single_pem_block(text: Any, labels: tuple) -> Optional[str]:
    """The one PEM block of ``text`` with one of ``labels`` when text precedes it (as in
    the certificates the legacy easy-rsa layer published), else None."""
    if not isinstance(text, str) or len(text) > MAX_PEM_CHARS:
        return None
    for label in labels:
        begin, end = f'-----BEGIN {label}-----', f'-----END {label}-----'
        if text.count(begin) == 1 and text.count(end) == 1:
            start, stop = text.index(begin), text.index(end) + len(end)
            if start < stop:
                return text[start:stop] + '\n'
    return None


def _parse_json(raw: Any, max_chars: int) -> tuple:
    """(value, None) or (None, what is wrong with ``raw``); never raises. An empty or
    absent value is (None, None)."""
    if raw is None or raw == '':
        return None, None
    if not isinstance(raw, str):
        return None, 'not a string'
    if len(raw) > max_chars:
        return None, f'{len(raw)} chars, over the limit of {max_chars}'
    try:
        return json.loads(raw), None
    except (ValueError, RecursionError):
        # RecursionError: nesting deeper than Python's parser goes (a 100,000-deep list)
        return None, f'not JSON or nested too deeply ({len(raw)} chars)'


class _DirectFlags:
    """Flag changes straight through charms.reactive (in a handler: there, even a clear of
    a flag that is not set matters, it makes charms.reactive test the queued handlers
    again)."""

    @staticmethod
    def is_set(flag: str) -> bool:
        return is_flag_set(flag)

    @staticmethod
    def set(flag: str, value: Optional[Dict[str, str]] = None) -> None:
        set_flag(flag, value)

    @staticmethod
    def clear(flag: str) -> None:
        clear_flag(flag)

    def toggle(self, flag: str, should_set: bool, value: Dict[str, str]) -> None:
        if should_set:
            self.set(flag, value)
        else:
            self.clear(flag)


class _StartupFlags(_DirectFlags):
    """The flags as the Endpoint's start-up (before any handler) recomputes them: the set
    flags read once (charms.reactive reads every flag from unitdata for each
    ``is_flag_set``, ``set_flag`` and ``clear_flag``), and only the flags whose state or
    value differs are set or cleared, so a quiet hook changes nothing and reads the flags
    once. Each real change reads them again (a change may fire triggers that change
    others). The same end state as setting and clearing each: a set of a flag set with
    that value and a clear of a flag not set change nothing, and what a no-op clear does
    besides (mark the queued handlers for a new test) matters only inside the dispatch."""

    def __init__(self) -> None:
        self._active: Optional[set] = None

    def _now(self) -> set:
        if self._active is None:
            self._active = set(get_flags())
        return self._active

    def is_set(self, flag: str) -> bool:
        return flag in self._now()

    def set(self, flag: str, value: Optional[Dict[str, str]] = None) -> None:
        if flag not in self._now() or _get_flag_value(flag) != value:
            set_flag(flag, value)
            self._active = None

    def clear(self, flag: str) -> None:
        if flag in self._now():
            clear_flag(flag)
            self._active = None


def _rejection(entry: Any) -> Optional[Dict[str, str]]:
    """A clean rejection record, or None if ``entry`` has not the expected shape."""
    if not isinstance(entry, dict):
        return None
    digest, reason = entry.get('csr-sha256'), entry.get('reason')
    if not isinstance(digest, str) or not digest or not isinstance(reason, str):
        return None
    return {'csr-sha256': digest, 'reason': reason[:MAX_REASON_CHARS]}


def _is_hex(value: Any) -> bool:
    """A non-empty string of at most MAX_HEX_CHARS hex digits."""
    return (isinstance(value, str) and 0 < len(value) <= MAX_HEX_CHARS
            and all(c in '0123456789abcdef' for c in value))


def _revoked_record(entry: Any) -> Optional[Dict[str, Any]]:
    """A clean revoked-certificate record, or None if ``entry`` has not the shape."""
    if not isinstance(entry, dict):
        return None
    serial, issuer = entry.get('serial'), entry.get('issuer')
    unit, reason = entry.get('unit'), entry.get('reason')
    date, not_after = entry.get('date'), entry.get('not-after')
    if not (_is_hex(serial) and _is_hex(issuer)):
        return None
    if not (isinstance(unit, str) and 0 < len(unit) <= MAX_NAME_CHARS):
        return None
    if not (isinstance(reason, str) and 0 < len(reason) <= 40):
        return None
    numbers = (date, not_after)
    if not all(isinstance(n, (int, float)) and not isinstance(n, bool)
               and 0 <= n < 253402300800 for n in numbers):  # before year 10000
        return None
    return {'serial': serial, 'unit': unit, 'reason': reason, 'date': int(date),
            'issuer': issuer, 'not-after': int(not_after)}


def _unique(items: List[str]) -> List[str]:
    seen = set()
    result = []
    for item in items:
        if item not in seen:
            seen.add(item)
            result.append(item)
    return result
