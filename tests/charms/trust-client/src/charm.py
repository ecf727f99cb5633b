#!/usr/bin/env python3
"""trust-client: the requirer side of certificate_transfer, with the real charmlibs library.

It keeps the union of the certificates every relation sends as one CA bundle file and
says in its status how many it trusts (and a short digest of the bundle), so a test or an
operator sees what arrived.
"""
import hashlib
import logging
import os
import tempfile

import ops
from charmlibs.interfaces.certificate_transfer import (
    CertificatesAvailableEvent,
    CertificatesRemovedEvent,
    CertificateTransferRequires,
)

logger = logging.getLogger(__name__)
RELATION = "receive-ca-cert"


def bundle_text(certificates) -> str:
    """The certificates as one PEM bundle, sorted (stable whatever order they came in)."""
    return "".join(c if c.endswith("\n") else c + "\n" for c in sorted(certificates))


def bundle_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


class TrustClientCharm(ops.CharmBase):
    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self.transfer = CertificateTransferRequires(self, RELATION)
        framework.observe(self.transfer.on.certificate_set_updated, self._on_updated)
        framework.observe(self.transfer.on.certificates_removed, self._on_removed)
        framework.observe(self.on.update_status, self._refresh)
        framework.observe(self.on.config_changed, self._refresh)

    def _on_updated(self, event: CertificatesAvailableEvent) -> None:
        logger.info("relation %s sent %d certificate(s)", event.relation_id,
                    len(event.certificates))
        self._refresh(event)

    def _on_removed(self, event: CertificatesRemovedEvent) -> None:
        logger.info("relation %s removed its certificates", event.relation_id)
        self._refresh(event, gone=event.relation_id)

    def trusted(self, gone=None) -> set:
        """The union over every relation still there (the breaking one left out)."""
        result = set()
        for relation_id, certs in self.transfer.get_all_certificates_by_relation().items():
            if relation_id != gone:
                result.update(certs)
        return result

    def _refresh(self, _event=None, gone=None) -> None:
        certificates = self.trusted(gone)
        text = bundle_text(certificates)
        self._write(text)
        if certificates:
            self.unit.status = ops.ActiveStatus(
                f"trusting {len(certificates)} CA certificate(s), bundle {bundle_digest(text)}")
        else:
            self.unit.status = ops.WaitingStatus("no CA certificates received")

    def _write(self, text: str) -> None:
        path = os.path.expanduser(str(self.config.get("bundle-path") or ""))
        if not path:
            return
        directory = os.path.dirname(path) or "."
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)


if __name__ == "__main__":  # pragma: nocover
    ops.main(TrustClientCharm)
