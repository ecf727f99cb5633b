"""The legacy ``tlslib`` API of the easy-rsa layer:tls, kept for existing charms.

Each function copies one piece of this unit's TLS material to ``destination`` (parent
directories created), optionally chowning it. ``source`` None means the layer's own copy
(unitdata, the source of truth); a path copies that file instead. Works on every unit.
Keys are written with mode 0600, certificates 0644, atomically.
"""
from __future__ import annotations

import os
from typing import Optional

from charmhelpers.core import hookenv, unitdata
from charms.layer.tls import storage


def _copy(unitdata_key: str, source: Optional[str], destination: str, mode: int,
          user: Optional[str], group: Optional[str]) -> bool:
    if source:
        try:
            with open(source, "rb") as handle:
                data: Optional[bytes] = handle.read()
        except OSError as exc:
            hookenv.log(f"tlslib: cannot read {source}: {exc.strerror}", hookenv.WARNING)
            return False
    else:
        text = unitdata.kv().get(unitdata_key)
        data = text.encode() if text else None
    if not data:
        hookenv.log(f"tlslib: nothing to copy to {destination} yet", hookenv.WARNING)
        return False
    storage.write_file_atomic(destination, data, mode, storage.FileOwner(user, group))
    return True


def server_cert(source: Optional[str], destination: str, user: Optional[str] = None,
                group: Optional[str] = None) -> bool:
    """Copy the unit's certificate (serverAuth and clientAuth) to ``destination``."""
    return _copy(storage.INSTALLED_CERT, source, destination, 0o644, user, group)


def server_key(source: Optional[str], destination: str, user: Optional[str] = None,
               group: Optional[str] = None) -> bool:
    """Copy the unit's private key to ``destination`` (mode 0600)."""
    return _copy(storage.INSTALLED_KEY, source, destination, 0o600, user, group)


def client_cert(source: Optional[str], destination: str, user: Optional[str] = None,
                group: Optional[str] = None) -> bool:
    """Copy the unit's client certificate: the same certificate, it carries clientAuth."""
    return _copy(storage.INSTALLED_CERT, source, destination, 0o644, user, group)


def client_key(source: Optional[str], destination: str, user: Optional[str] = None,
               group: Optional[str] = None) -> bool:
    """Copy the key of the client certificate (the unit's key) to ``destination``, 0600."""
    return _copy(storage.INSTALLED_KEY, source, destination, 0o600, user, group)


def ca(source: Optional[str], destination: str, user: Optional[str] = None,
       group: Optional[str] = None) -> bool:
    """Copy the CA bundle (newest CA first) to ``destination``."""
    return _copy(storage.INSTALLED_BUNDLE, source, destination, 0o644, user, group)


def chown(path: str, user: Optional[str] = None, group: Optional[str] = None) -> None:
    """chown by names; None leaves that id unchanged."""
    os.chown(path, *storage.owner_ids(storage.FileOwner(user, group)))
