"""interface:tls-certificates (v1), requires role: ask a provider to sign CSRs.

Relation protocol only (no crypto, no files, never a private key): the charm layer makes
the key and the CSR, this module writes the request the way the charmlibs
``tls_certificates`` library's requirer does, and reads what the provider publishes back
(certificates, chains, revocations, request errors) without trusting any of it: every
value is bounded and shape-checked, and nothing read here may raise out of a hook. The
certificate and chain read here are NOT verified: the layer must check them (signatures,
the CA flag, the key) before use. README.md in this directory is the protocol
specification; keep the two in step.

In a built charm this file is ``hooks/relations/tls-certificates/requires.py``;
charms.reactive finds it from metadata.yaml (``requires: <name>: interface:
tls-certificates``).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

from charmhelpers.core import hookenv, unitdata
from charms.reactive import Endpoint, clear_flag, get_flags, is_flag_set, set_flag

# Relation keys (see README.md).
KEY_REQUESTS = 'certificate_signing_requests'   # requirer unit or app bag: JSON list
KEY_CERTIFICATES = 'certificates'               # provider app bag: JSON list
KEY_ERRORS = 'request_errors'                   # provider app bag: JSON list
PROVIDER_KEYS = (KEY_CERTIFICATES, KEY_ERRORS)
# Entry fields. The library writes ``csr`` in a request error; the spec's name for the
# field elsewhere is ``certificate_signing_request``: both are read, ``csr`` first.
F_CSR = 'certificate_signing_request'
F_CA = 'ca'
F_CERT = 'certificate'
F_CHAIN = 'chain'
F_REVOKED = 'revoked'
F_ERROR_CSR = 'csr'
F_ERROR = 'error'

SCOPE_APP = 'app'     # the library's Mode.APP: the app bag, the leader only
SCOPE_UNIT = 'unit'   # the library's Mode.UNIT: this unit's bag
SCOPES = (SCOPE_APP, SCOPE_UNIT)

# Flags (charms.reactive sets ``joined`` and ``departed``; ``changed`` is set here too
# because charms.reactive only looks at unit bags and a provider writes its app bag).
FLAG_AVAILABLE = 'certificate.available'   # a certificate for one of our CSRs
FLAG_REVOKED = 'certificate.revoked'       # the provider marked one of them revoked
FLAG_ERROR = 'request.error'               # the provider refused one of our CSRs
FLAG_BROKEN = 'broken'                     # the relation went away (kept until a new one)
STATE_FLAGS = (FLAG_AVAILABLE, FLAG_REVOKED, FLAG_ERROR)
# unitdata: sha256 of each provider key as last seen, per relation (for ``changed``).
_KV_SEEN = 'tls-certificates.seen'

# Bounds on what is read (a provider's app bag is hostile input; our own bag may hold
# garbage left by anything). A value over its bound is ignored before it is parsed.
MAX_PEM_CHARS = 65536
MAX_CHAIN = 16                          # certificates in one chain
MAX_OWN_JSON_CHARS = 4 * 1024 * 1024    # our request list
MAX_REQUESTS = 32                       # requests we publish per bag
MAX_PROVIDER_JSON_CHARS = 16 * 1024 * 1024  # one provider key (all its requirers' units)
MAX_ENTRIES = 10000                     # entries looked at in one provider list
MAX_MESSAGE_CHARS = 200                 # an error's message or reason, as shown
MAX_ERROR_NAME_CHARS = 64
MAX_CODE = 10 ** 6
_CSR_LABELS = ('CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST')
_CERT_LABELS = ('CERTIFICATE',)
_ERROR_NAME = re.compile(r'^[A-Z][A-Z0-9_]*$')
_CONTROL = re.compile(r'[\x00-\x1f\x7f]+')
# charmlibs CertificateRequestErrorCode: code <-> name, both ways.
ERROR_CODES = {'IP_NOT_ALLOWED': 101, 'DOMAIN_NOT_ALLOWED': 102, 'WILDCARD_NOT_ALLOWED': 103,
               'SERVER_NOT_AVAILABLE': 201, 'OTHER': 999}
_ERROR_NAMES = {code: name for name, code in ERROR_CODES.items()}


class IssuedCertificate(NamedTuple):
    """The provider's answer to one CSR, shape-checked only (not verified)."""

    csr: str
    certificate: str
    ca: str
    chain: Tuple[str, ...]
    revoked: bool


class RequestError(NamedTuple):
    """The provider's refusal of one CSR. ``name`` is upper case (or None), ``message``
    and ``reason`` are one line of at most MAX_MESSAGE_CHARS characters."""

    csr: str
    code: Optional[int]
    name: Optional[str]
    message: str
    reason: Optional[str]


class Request(NamedTuple):
    """One CSR we published and whether we asked for a CA certificate."""

    csr: str
    ca: bool
    scope: str


# ----------------------------------------------------------------- pure helpers


def csr_key(pem: Any) -> Optional[str]:
    """The text a CSR is matched by: its PEM with all whitespace removed (the library
    strips the PEM and providers re-encode it, so line ends and wrapping may differ), or
    None if ``pem`` is not a bounded CSR PEM."""
    if not looks_like_pem(pem, _CSR_LABELS):
        return None
    return ''.join(pem.split())


def looks_like_pem(text: Any, labels: tuple = _CERT_LABELS) -> bool:
    """Structure only: a string of bounded size holding exactly one PEM block, of one of
    ``labels``, with nothing but whitespace around it, and no private key."""
    if not isinstance(text, str) or not text or len(text) > MAX_PEM_CHARS:
        return False
    if 'PRIVATE KEY' in text:
        return False
    body = text.strip()
    for label in labels:
        begin, end = f'-----BEGIN {label}-----', f'-----END {label}-----'
        if (body.startswith(begin) and body.endswith(end)
                and body.count('-----BEGIN ') == 1 and body.count('-----END ') == 1):
            return True
    return False


def parse_json(raw: Any, max_chars: int) -> Tuple[Any, Optional[str]]:
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
        # RecursionError: nesting deeper than Python's parser goes
        return None, f'not JSON or nested too deeply ({len(raw)} chars)'


def one_line(text: Any) -> Optional[str]:
    """A provider's free text made safe to log and show: a string, control characters
    replaced by spaces, cut to MAX_MESSAGE_CHARS; None if not a string or it holds a
    private key (never shown anywhere)."""
    if not isinstance(text, str) or 'PRIVATE KEY' in text:
        return None
    return _CONTROL.sub(' ', text[:MAX_MESSAGE_CHARS * 4]).strip()[:MAX_MESSAGE_CHARS]


def parse_requests(raw: Any, scope: str) -> Tuple[List[Request], Optional[str]]:
    """The requests in a requirer bag's raw ``certificate_signing_requests`` value, and
    what was wrong with it (None if nothing). Bad entries are left out."""
    value, problem = parse_json(raw, MAX_OWN_JSON_CHARS)
    if value is None:
        return [], problem
    if not isinstance(value, list):
        return [], 'not a JSON list'
    result: List[Request] = []
    bad = 0
    for entry in value[:MAX_ENTRIES]:
        csr = entry.get(F_CSR) if isinstance(entry, dict) else None
        ca = entry.get(F_CA, False) if isinstance(entry, dict) else None
        if csr_key(csr) is None or not isinstance(ca, (bool, type(None))):
            bad += 1
            continue
        result.append(Request(csr.strip(), bool(ca), scope))
    return result, (f'{bad} bad entr{"y" if bad == 1 else "ies"}' if bad else None)


def request_list(requests: List[Request]) -> str:
    """The wire form of a request list, as the library dumps it (``json.dumps`` of the
    entries, ``certificate_signing_request`` then ``ca``)."""
    return json.dumps([{F_CSR: r.csr, F_CA: r.ca} for r in requests])


def parse_certificate(entry: Any) -> Tuple[Optional[IssuedCertificate], Optional[str]]:
    """One provider ``certificates`` entry, or (None, problem). The certificate, the CA
    and every chain member must each be one bounded CERTIFICATE PEM block; ``revoked``
    true, false, null or absent; ``chain`` a list (at most MAX_CHAIN), null or absent."""
    if not isinstance(entry, dict):
        return None, 'not an object'
    csr, cert, ca = entry.get(F_CSR), entry.get(F_CERT), entry.get(F_CA)
    if csr_key(csr) is None:
        return None, f'{F_CSR} is not a CSR'
    if not looks_like_pem(cert):
        return None, f'{F_CERT} is not one certificate'
    if not looks_like_pem(ca):
        return None, f'{F_CA} is not one certificate'
    chain = entry.get(F_CHAIN)
    if chain is None:
        chain = []
    if not isinstance(chain, list) or len(chain) > MAX_CHAIN:
        return None, f'{F_CHAIN} is not a list of at most {MAX_CHAIN}'
    if not all(looks_like_pem(item) for item in chain):
        return None, f'{F_CHAIN} holds something that is not one certificate'
    revoked = entry.get(F_REVOKED)
    if not isinstance(revoked, (bool, type(None))):
        return None, f'{F_REVOKED} is not true, false or null'
    return IssuedCertificate(csr.strip(), cert.strip() + '\n', ca.strip() + '\n',
                             tuple(c.strip() + '\n' for c in chain), bool(revoked)), None


def _error_code(value: Any) -> Optional[int]:
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and 0 <= value < MAX_CODE:
        return value
    if isinstance(value, str) and value.isdigit() and len(value) <= 6:
        return int(value)
    return None


def parse_request_error(entry: Any) -> Tuple[Optional[RequestError], Optional[str]]:
    """One provider ``request_errors`` entry, or (None, problem). The CSR is read from
    ``csr`` (the library) or ``certificate_signing_request`` (the spec); the details from
    the ``error`` object (or, failing that, the entry itself). The name is upper-cased
    (providers differ in case); a missing code or name is filled from the other when the
    library knows it; an unknown name that is not an identifier is dropped."""
    if not isinstance(entry, dict):
        return None, 'not an object'
    csr = entry.get(F_ERROR_CSR)
    if csr_key(csr) is None:
        csr = entry.get(F_CSR)
    if csr_key(csr) is None:
        return None, f'no CSR in {F_ERROR_CSR} or {F_CSR}'
    detail = entry.get(F_ERROR)
    if not isinstance(detail, dict):
        detail = entry
    code = _error_code(detail.get('code'))
    name = detail.get('name')
    if isinstance(name, str) and len(name) <= MAX_ERROR_NAME_CHARS:
        name = name.strip().upper().replace('-', '_')
        name = name if _ERROR_NAME.match(name) else None
    else:
        name = None
    if name is None and code is not None:
        name = _ERROR_NAMES.get(code)
    if code is None and name is not None:
        code = ERROR_CODES.get(name)
    message = one_line(detail.get('message')) or ''
    reason = one_line(detail.get('reason')) or None
    return RequestError(csr.strip(), code, name, message, reason), None


# ----------------------------------------------------------------- the endpoint


class TlsCertificatesRequires(Endpoint):
    """The ``tls-certificates`` requires endpoint (one relation to one provider; with
    more, the lowest relation id is used and a WARNING logged).

    Flags, recomputed in every hook (also hooks of other endpoints): charms.reactive's
    ``endpoint.{endpoint_name}.joined`` and ``.departed``; ``.changed`` (and
    ``.changed.certificates`` / ``.changed.request_errors``) when the provider's app bag
    changed, not cleared here; ``.certificate.available``, ``.certificate.revoked``,
    ``.request.error`` while they hold for one of our published CSRs; ``.broken`` from
    the ``-relation-broken`` hook until a relation exists again. Reads never raise on bad
    data; writes compare first, so an unchanged request wakes no provider.
    """

    def __init__(self, endpoint_name: str, relation_ids: Optional[List[str]] = None):
        super().__init__(endpoint_name, relation_ids)
        self._leader: Optional[bool] = None
        self._warned: set = set()
        self._provider_cache: Optional[Dict[str, str]] = None

    # ----------------------------------------------------------------- framework glue

    def _manage_flags(self) -> None:
        # Endpoint._manage_flags skips manage_flags() in hooks of other endpoints once
        # 'joined' is set; the provider's app bag (and leadership) decide our flags, so
        # they are recomputed in every hook.
        super()._manage_flags()
        self._update_flags(startup=True)

    def _update_flags(self, startup: bool = False) -> None:
        """Recompute the flags this interface owns from the current data (``startup``:
        the Endpoint's start-up, before any handler runs)."""
        if hookenv.hook_name() == f'{self.endpoint_name}-relation-broken':
            for flag in STATE_FLAGS:
                clear_flag(self.expand_name(flag))
            set_flag(self.expand_name(FLAG_BROKEN))
            return
        rel = self._relation()
        if rel is None:
            self._clear(STATE_FLAGS, startup)
            return
        self._clear((FLAG_BROKEN,), startup)
        bag = self._provider_bag()
        kv = unitdata.kv()
        for key in PROVIDER_KEYS:
            raw = bag.get(key)
            digest = (hashlib.sha256(raw.encode('utf-8', 'replace')).hexdigest()
                      if isinstance(raw, str) and raw else '')
            seen_key = f'{_KV_SEEN}.{self.endpoint_name}.{rel.relation_id}.{key}'
            if (kv.get(seen_key) or '') != digest:  # never seen counts as empty
                kv.set(seen_key, digest)
                set_flag(self.expand_name('changed'))
                set_flag(self.expand_name(f'changed.{key}'))
        ours = {csr_key(r.csr) for r in self.requests()}
        issued = [c for c in self.provider_certificates() if csr_key(c.csr) in ours]
        errors = [e for e in self.request_errors() if csr_key(e.csr) in ours]
        self._toggle(FLAG_AVAILABLE, any(not c.revoked for c in issued))
        self._toggle(FLAG_REVOKED, any(c.revoked for c in issued))
        self._toggle(FLAG_ERROR, bool(errors))

    def _clear(self, flags: Tuple[str, ...], startup: bool) -> None:
        """Clear ``flags``. At start-up only those set, from one read of the flags (read
        again after a real clear, which may fire triggers): charms.reactive reads every
        flag from unitdata for each ``clear_flag``, and a clear of a flag not set changes
        nothing before the handlers run (inside the dispatch it makes charms.reactive
        test the queued handlers again, so a handler's call clears each)."""
        active = set(get_flags()) if startup else None
        for flag in flags:
            name = self.expand_name(flag)
            if active is None:
                clear_flag(name)
            elif name in active:
                clear_flag(name)
                active = set(get_flags())

    def _toggle(self, flag: str, on: bool) -> None:
        if on:
            set_flag(self.expand_name(flag))
        elif is_flag_set(self.expand_name(flag)):
            clear_flag(self.expand_name(flag))

    # ----------------------------------------------------------------- helpers

    def _warn(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            hookenv.log(f'interface tls-certificates: {self.endpoint_name}: {message}',
                        level=hookenv.WARNING)

    def _relation(self):
        """The relation used (lowest id), or None (none, or it is breaking)."""
        if hookenv.hook_name() == f'{self.endpoint_name}-relation-broken':
            return None
        if not len(self.relations):
            return None
        relations = sorted(self.relations, key=lambda r: _rid_number(r.relation_id))
        if len(relations) > 1:
            self._warn(f'{len(relations)} relations; only {relations[0].relation_id} used')
        return relations[0]

    @property
    def is_leader(self) -> bool:
        """Whether this unit holds the lease (asked once per hook)."""
        if self._leader is None:
            self._leader = bool(hookenv.is_leader())
        return self._leader

    @property
    def provider_app(self) -> Optional[str]:
        """The provider's application name, or None while it is not known (no provider
        unit joined yet, outside this relation's own hooks)."""
        rel = self._relation()
        if rel is None:
            return None
        if rel.joined_units:
            return rel.joined_units[0].unit_name.split('/')[0]
        if hookenv.relation_id() == rel.relation_id:
            return os.environ.get('JUJU_REMOTE_APP') or None  # e.g. -relation-created
        return None

    def _provider_bag(self) -> Dict[str, str]:
        """The provider's app bag, read once per hook; {} when it cannot be read."""
        if self._provider_cache is None:
            rel, app = self._relation(), self.provider_app
            bag: Any = {}
            if rel is not None and app is not None:
                try:
                    bag = hookenv.relation_get(app=app, rid=rel.relation_id)
                except (subprocess.CalledProcessError, OSError, ValueError) as exc:
                    self._warn(f'cannot read the application data of {app}: '
                               f'{type(exc).__name__}')
            self._provider_cache = bag if isinstance(bag, dict) else {}
        return self._provider_cache

    def _own_view(self, scope: str, for_write: bool = False):
        """Our unit bag or (leader only) our app bag, as a raw view; None if we may not
        read (or write) it now."""
        rel = self._relation()
        if rel is None:
            if for_write:
                self._warn(f'no {self.endpoint_name} relation, nothing written')
            return None
        if scope == SCOPE_APP and not self.is_leader:
            # A non-leader may not even read its app bag in a non-peer relation.
            if for_write:
                self._warn('only the leader writes application data, ignored')
            return None
        try:
            view = rel.to_publish_app_raw if scope == SCOPE_APP else rel.to_publish_raw
        except (subprocess.CalledProcessError, OSError, ValueError) as exc:
            self._warn(f'cannot read our {scope} data: {type(exc).__name__}')
            return None
        if view.data is None:
            view.data = {}
        return view

    def _load_list(self, raw: Any, key: str) -> List[Any]:
        """A provider list value (bounded, JSON, a list); [] with a warning otherwise."""
        value, problem = parse_json(raw, MAX_PROVIDER_JSON_CHARS)
        if problem is None and value is not None and not isinstance(value, list):
            problem = 'not a JSON list'
        if problem is not None:
            self._warn(f'{self.provider_app} {key}: {problem}, ignored')
            return []
        if value is None:
            return []
        if len(value) > MAX_ENTRIES:
            self._warn(f'{self.provider_app} {key}: {len(value)} entries, only the first '
                       f'{MAX_ENTRIES} read')
        return value[:MAX_ENTRIES]

    # ----------------------------------------------------------------- our requests

    def requests(self, scope: Optional[str] = None) -> List[Request]:
        """The requests we published (this hook's pending writes included): both scopes
        by default; the app bag's only for the leader (a non-leader cannot read it)."""
        result: List[Request] = []
        for one in (SCOPES if scope is None else (scope,)):
            view = self._own_view(one)
            if view is None:
                continue
            found, problem = parse_requests(view.get(KEY_REQUESTS), one)
            if problem:
                self._warn(f'our {one} {KEY_REQUESTS}: {problem}, ignored')
            result.extend(found)
        return result

    def request(self, csr_pem: str, ca: bool = True, scope: str = SCOPE_APP) -> bool:
        """Publish ``csr_pem`` (a CA request by default) in the app bag (``app``: the
        leader only, as the library's Mode.APP) or this unit's bag (``unit``). A request
        for the same CSR is replaced (e.g. its ``ca`` changed). Returns True if written;
        a value that is not one CSR PEM, or holds a private key, is refused (logged)."""
        if scope not in SCOPES or not isinstance(ca, bool):
            self._warn(f'request: bad scope or ca flag ({scope!r}), nothing written')
            return False
        if isinstance(csr_pem, str) and 'PRIVATE KEY' in csr_pem:
            hookenv.log('interface tls-certificates: refused to publish a request: it holds '
                        'a private key', level=hookenv.ERROR)
            return False
        key = csr_key(csr_pem)
        if key is None:
            self._warn('request: not one CSR PEM, nothing written')
            return False
        view = self._own_view(scope, for_write=True)
        if view is None:
            return False
        current = self.requests(scope)
        kept = [r for r in current if csr_key(r.csr) != key]
        if len(kept) >= MAX_REQUESTS:
            self._warn(f'request: already {len(kept)} requests in the {scope} bag, refused')
            return False
        wanted = kept + [Request(csr_pem.strip(), ca, scope)]
        wrote = self._set_requests(view, current, wanted)
        self._update_flags()
        return wrote

    def withdraw(self, csr_pem: str) -> bool:
        """Remove the request for ``csr_pem`` from every bag we may write (the provider
        then drops its certificate). An empty list deletes the key. True if written."""
        key = csr_key(csr_pem)
        if key is None:
            return False
        wrote = False
        for scope in SCOPES:
            view = self._own_view(scope)
            if view is None:
                continue
            current = self.requests(scope)
            wanted = [r for r in current if csr_key(r.csr) != key]
            wrote |= self._set_requests(view, current, wanted)
        self._update_flags()
        return wrote

    def _set_requests(self, view, current: List[Request], wanted: List[Request]) -> bool:
        """Write ``wanted`` if it differs from what the bag holds (garbage there counts as
        different); nothing for an empty list but a delete."""
        raw = view.get(KEY_REQUESTS)
        if not wanted:
            if not raw:
                return False
            view[KEY_REQUESTS] = None  # published as null: relation-set deletes the key
            return True
        value = request_list(wanted)
        if raw == value or (current == wanted and parse_requests(raw, '')[1] is None):
            return False
        if 'PRIVATE KEY' in value:  # defence in depth: csr_key refuses these already
            return False
        view[KEY_REQUESTS] = value
        return True

    # ----------------------------------------------------------------- provider side

    def provider_certificates(self) -> List[IssuedCertificate]:
        """Every well-formed entry of the provider's ``certificates`` (for any CSR)."""
        result = []
        bad: Dict[str, int] = {}
        for entry in self._load_list(self._provider_bag().get(KEY_CERTIFICATES),
                                     KEY_CERTIFICATES):
            cert, problem = parse_certificate(entry)
            if cert is not None:
                result.append(cert)
            elif problem is not None:
                bad[problem] = bad.get(problem, 0) + 1
        for problem, count in sorted(bad.items()):
            self._warn(f'{self.provider_app} {KEY_CERTIFICATES}: {count} entr'
                       f'{"y" if count == 1 else "ies"} ignored ({problem})')
        return result

    def request_errors(self) -> List[RequestError]:
        """Every well-formed entry of the provider's ``request_errors`` (for any CSR)."""
        result = []
        bad = 0
        for entry in self._load_list(self._provider_bag().get(KEY_ERRORS), KEY_ERRORS):
            error, _ = parse_request_error(entry)
            if error is not None:
                result.append(error)
            else:
                bad += 1
        if bad:
            self._warn(f'{self.provider_app} {KEY_ERRORS}: {bad} entr'
                       f'{"y" if bad == 1 else "ies"} ignored (bad shape)')
        return result

    def certificate_for(self, csr_pem: str) -> Optional[IssuedCertificate]:
        """The provider's certificate for ``csr_pem`` (revoked ones too: look at
        ``.revoked``), or None. Shape-checked only: verify it before use."""
        key = csr_key(csr_pem)
        if key is None:
            return None
        found = [c for c in self.provider_certificates() if csr_key(c.csr) == key]
        if len(found) > 1:
            self._warn(f'{self.provider_app} {KEY_CERTIFICATES}: {len(found)} entries for '
                       'one CSR; the last is used')
        return found[-1] if found else None

    def request_error_for(self, csr_pem: str) -> Optional[RequestError]:
        """The provider's error for ``csr_pem`` (the last one listed), or None."""
        key = csr_key(csr_pem)
        if key is None:
            return None
        found = [e for e in self.request_errors() if csr_key(e.csr) == key]
        return found[-1] if found else None


def _rid_number(relation_id: str) -> int:
    tail = relation_id.rsplit(':', 1)[-1]
    return int(tail) if tail.isdigit() else 0
