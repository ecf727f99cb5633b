"""Where a unit keeps its TLS material: charmhelpers unitdata (the source of truth) and files.

unitdata is committed by charms.reactive only when a hook succeeds, so it always holds a
consistent set: the key of the outstanding CSR, and the installed certificate with the key
it certifies. Files are derived from it: written atomically (temp file, fsync, rename), the
key 0600 from creation, and rewritten whenever they differ from unitdata (content, mode,
owner, or a symlink in the place of the file), so a crash between two file writes, or a
tampered file, is repaired by the next hook. A path that cannot be written (a directory in
its place, a read-only file system) never fails the hook: it is skipped and reported
(``take_sync_problems``, shown as blocked by the status). No ``cryptography`` import here.
"""
from __future__ import annotations

import errno
import grp
import hashlib
import os
import pwd
import stat
import tempfile
from typing import Dict, List, NamedTuple, Optional

# unitdata keys. The legacy ones are a contract with existing charms: do not rename.
LEGACY_SERVER_CERT = "tls.server.certificate"
LEGACY_CLIENT_CERT = "tls.client.certificate"
LEGACY_EXTRA_SANS = "extra_sans"
PENDING_KEY = "layer.tls.key"            # key of the CSR currently published
CSR = "layer.tls.csr"                    # the CSR currently published
CSR_NAMES = "layer.tls.csr-names"        # {"dns": [...], "ips": [...]} sorted, of that CSR
ADDRESSES = "layer.tls.addresses"        # the unit's addresses at the last network-get
INSTALLED_KEY = "layer.tls.installed.key"
INSTALLED_CERT = "layer.tls.installed.certificate"
INSTALLED_BUNDLE = "layer.tls.installed.ca-bundle"
INSTALLED_CHAIN = "layer.tls.installed.chain"  # the intermediates presented after the leaf
INSTALLED_INTERMEDIATES = "layer.tls.installed.intermediates"  # the app's ca-intermediates
INSTALLED_VALIDITY = "layer.tls.installed.validity"  # [in use since, notAfter], epoch seconds
RENEW_AT = "layer.tls.renew-at"          # epoch seconds: ask for a new certificate then
RENEWING = "layer.tls.renewing"          # digest of the certificate a renewal was asked for
INSTALLED_CRL = "layer.tls.installed.crl"  # the verified CRLs written to crl_path (PEM)
INSTALLED_CRL_INPUTS = "layer.tls.installed.crl-inputs"  # digest of what they came from
REVOKED_SEEN = "layer.tls.revoked-seen"  # digest of the revoked list last looked at
ROTATED_FOR = "layer.tls.rotated-for"    # serial (hex) of the revoked certificate replaced
LAST_STATUS = "layer.tls.status"
FILE_PROBLEMS = "layer.tls.file-problems"  # [[path, reason], ...] of the last sync, or None


def legacy_unit_cert_key(unit_name: str) -> str:
    """The legacy unitdata key ``<unit_name>_signed_certificate``."""
    return f"{unit_name}_signed_certificate"


def digest(text: Optional[str]) -> str:
    """sha256 hex of a text ("" for None): cheap change detection without crypto."""
    return hashlib.sha256((text or "").encode()).hexdigest()


class Paths(NamedTuple):
    """Files the layer writes for the unit (absolute)."""

    certificate: str
    key: str
    ca_bundle: str
    system_ca: Optional[str]  # the CA file in the system trust dir, None when not installed


class FileOwner(NamedTuple):
    """Owner and group for the written files; None keeps the hook's own (root)."""

    user: Optional[str] = None
    group: Optional[str] = None


NO_OWNER = FileOwner()


def resolve_path(path: str, charm_dir: str) -> str:
    """Relative option paths are taken from the charm directory, so a charm (or a test) can
    keep everything inside it."""
    return path if os.path.isabs(path) else os.path.join(charm_dir, path)


def owner_ids(owner: FileOwner) -> tuple[int, int]:
    uid = pwd.getpwnam(owner.user).pw_uid if owner.user else -1
    gid = grp.getgrnam(owner.group).gr_gid if owner.group else -1
    return uid, gid


def write_file_atomic(path: str, data: bytes, mode: int, owner: FileOwner = NO_OWNER) -> None:
    """Write ``data`` to ``path`` so that readers see the old or the new file, never a torn
    one: a temp file in the same directory, created with ``mode`` (no window with wider
    permissions), fsynced, chowned, renamed over ``path``, then the directory fsynced."""
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, mode=0o755, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)  # mkstemp creates it 0600
    try:
        os.fchmod(fd, mode)
        uid, gid = owner_ids(owner)
        if uid != -1 or gid != -1:
            os.fchown(fd, uid, gid)
        with os.fdopen(fd, "wb") as handle:
            fd = -1
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        tmp = ""
    finally:
        if fd != -1:
            os.close(fd)
        if tmp:
            os.unlink(tmp)
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _read(path: str) -> Optional[bytes]:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        return None


def _wanted_files(paths: Paths, cert: str, key: str, bundle: str) -> Dict[str, tuple[bytes, int]]:
    wanted = {paths.certificate: (cert.encode(), 0o644), paths.key: (key.encode(), 0o600),
              paths.ca_bundle: (bundle.encode(), 0o644)}
    if paths.system_ca:
        wanted[paths.system_ca] = (bundle.encode(), 0o644)
    return wanted


class SyncResult(List[str]):
    """The paths ``sync_files`` (re)wrote, with ``problems``: ``[(path, reason)]`` for the
    paths it could not write."""

    problems: List[tuple[str, str]]


_last_problems: Optional[List[tuple[str, str]]] = None


def take_sync_problems() -> Optional[List[tuple[str, str]]]:
    """The problems of the last ``sync_files`` in this process (hook), then forgotten;
    None when no sync ran since the last call."""
    global _last_problems
    problems, _last_problems = _last_problems, None
    return problems


def _expected_ids(path: str, owner: FileOwner) -> tuple[int, int]:
    """The uid and gid a file written here for ``owner`` gets: the configured ones, else
    this process's (the group of a set-group-id directory)."""
    uid, gid = owner_ids(owner)
    if uid == -1:
        uid = os.geteuid()
    if gid == -1:
        gid = os.getegid()
        try:
            directory = os.stat(os.path.dirname(path) or ".")
            if directory.st_mode & stat.S_ISGID:
                gid = directory.st_gid
        except OSError:
            pass
    return uid, gid


def _in_place(path: str, data: bytes, mode: int, owner: FileOwner,
              info: Optional[os.stat_result]) -> bool:
    """``path`` is a regular file (not a symlink) with this content, mode and owner."""
    return (info is not None and stat.S_ISREG(info.st_mode)
            and stat.S_IMODE(info.st_mode) == mode
            and (info.st_uid, info.st_gid) == _expected_ids(path, owner)
            and _read(path) == data)


def sync_files(paths: Paths, cert: str, key: str, bundle: str,
               owner: FileOwner = NO_OWNER) -> SyncResult:
    """Make the files hold exactly this certificate, key and CA bundle: content, mode (the
    key 0600), owner, and a regular file (a symlink in its place is replaced, not
    followed).

    Returns the paths (re)written, e.g. to know whether the system CA file changed and the
    trust store needs updating. Unchanged files are not touched. A path that cannot be
    written for a lasting reason is skipped, not raised (a retried hook would fail the same
    way forever): something not a file or symlink in its place (a directory may hold
    someone's data: left alone), permission denied, a read-only file system, an unknown
    owner. Those are in the result's ``problems`` and in ``take_sync_problems()``; while
    the key cannot be written the certificate is left as it is too (a pair or nothing).
    Other OSErrors (EIO, ENOSPC...) propagate: the hook fails and is retried.
    """
    global _last_problems
    changed = SyncResult()
    changed.problems = []
    key_failed = False
    # The key goes first: a crash after it leaves unitdata uncommitted and the next hook
    # rewrites the pair from unitdata.
    for path, (data, mode) in sorted(_wanted_files(paths, cert, key, bundle).items(),
                                     key=lambda item: item[0] != paths.key):
        try:
            info: Optional[os.stat_result] = os.lstat(path)
        except FileNotFoundError:
            info = None
        except OSError as exc:
            changed.problems.append((path, f"cannot inspect it ({_why(exc)})"))
            key_failed = key_failed or path == paths.key
            continue
        if path == paths.certificate and key_failed:
            continue
        if info is not None and not (stat.S_ISREG(info.st_mode) or stat.S_ISLNK(info.st_mode)):
            what = "a directory" if stat.S_ISDIR(info.st_mode) else "something not a file"
            changed.problems.append((path, f"{what} is in its place (left as it is: "
                                           "move it away)"))
            key_failed = key_failed or path == paths.key
            continue
        try:
            if _in_place(path, data, mode, owner, info):
                continue
            write_file_atomic(path, data, mode, owner)
        except (OSError, KeyError) as exc:  # KeyError: owner or group unknown here
            if isinstance(exc, OSError) and exc.errno not in _LASTING_ERRORS:
                raise
            changed.problems.append((path, f"cannot write it ({_why(exc)})"))
            key_failed = key_failed or path == paths.key
            continue
        changed.append(path)
    _last_problems = list(changed.problems)
    return changed


def sync_optional_file(path: str, text: str, mode: int = 0o644,
                       owner: FileOwner = NO_OWNER) -> Optional[bool]:
    """Make ``path`` hold ``text`` (atomically, ``mode``, ``owner``), or not exist when
    ``text`` is empty. True when it was (re)written or removed, False when it was in
    place, None when it cannot be written for a lasting reason (the caller logs it)."""
    try:
        info: Optional[os.stat_result] = os.lstat(path)
    except FileNotFoundError:
        info = None
    except OSError:
        return None
    try:
        if not text:
            if info is None:
                return False
            if stat.S_ISDIR(info.st_mode):
                return None
            os.unlink(path)
            return True
        if info is not None and not (stat.S_ISREG(info.st_mode) or stat.S_ISLNK(info.st_mode)):
            return None
        if _in_place(path, text.encode(), mode, owner, info):
            return False
        write_file_atomic(path, text.encode(), mode, owner)
    except (OSError, KeyError) as exc:
        if isinstance(exc, OSError) and exc.errno not in _LASTING_ERRORS:
            raise
        return None
    return True


_LASTING_ERRORS = (errno.EACCES, errno.EPERM, errno.EROFS, errno.EISDIR, errno.ENOTDIR,
                   errno.ELOOP, errno.ENAMETOOLONG)


def _why(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return "unknown owner or group"
    return getattr(exc, "strerror", None) or type(exc).__name__

