#!/usr/bin/env python3
"""root-ca: the provider side of tls-certificates (v1), with the real charmlibs library.

The leader makes a root (an RSA key and a self-signed CA certificate, kept in an
application secret) on first use and signs every outstanding request with it, CA
requests included (``"ca": true`` gives a CA certificate), as canonical's
self-signed-certificates charm does. ``refuse-ca`` publishes a request error for CA
requests instead; ``revoke`` marks everything published revoked. The unit status says
how many certificates are issued, revoked and refused.
"""
import logging
from datetime import timedelta

import ops
from charmlibs.interfaces.tls_certificates import (
    Certificate,
    CertificateError,
    CertificateRequestAttributes,
    CertificateRequestErrorCode,
    PrivateKey,
    ProviderCapabilities,
    ProviderCertificate,
    ProviderCertificateError,
    TLSCertificatesProvidesV4,
)

logger = logging.getLogger(__name__)
RELATION = "certificates"
ROOT_LABEL = "root-ca-root"
ROOT_VALIDITY = timedelta(days=3650)
REFUSED_MESSAGE = "CA certificates are refused by this provider's configuration"


class RootCaCharm(ops.CharmBase):
    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self.provider = TLSCertificatesProvidesV4(
            self, RELATION,
            provider_capabilities=ProviderCapabilities(
                supports_ca_certificates=not self.config.get("refuse-ca"),
                provider_type="self-signed"))
        for event in (self.on[RELATION].relation_joined, self.on[RELATION].relation_changed,
                      self.on.config_changed, self.on.update_status,
                      self.on.leader_elected):
            framework.observe(event, self._reconcile)

    # ------------------------------------------------------------------ the root

    def root(self):
        """(CA certificate, private key), made and stored in an app secret on first use.
        Only the leader calls this (only it may create or read the app's secret here)."""
        try:
            content = self.model.get_secret(label=ROOT_LABEL).get_content(refresh=True)
            return (Certificate.from_string(content["certificate"]),
                    PrivateKey.from_string(content["private-key"]))
        except ops.SecretNotFoundError:
            pass
        key = PrivateKey.generate()
        name = str(self.config.get("root-common-name") or "root-ca test root")
        cert = Certificate.generate_self_signed_ca(
            CertificateRequestAttributes(common_name=name, is_ca=True,
                                         add_unique_id_to_subject_name=False),
            key, ROOT_VALIDITY)
        self.app.add_secret({"certificate": str(cert), "private-key": str(key)},
                            label=ROOT_LABEL)
        logger.info("made a new root %r", name)
        return cert, key

    # ------------------------------------------------------------------ signing

    def _reconcile(self, _event=None) -> None:
        if not self.unit.is_leader():
            self.unit.status = ops.ActiveStatus("follower (the leader signs)")
            return
        if self.config.get("revoke"):
            self.provider.revoke_all_certificates()
            self._status()
            return
        ca, key = self.root()
        validity = timedelta(days=int(self.config.get("validity-days") or 90))
        for request in self.provider.get_outstanding_certificate_requests():
            csr = request.certificate_signing_request
            if request.is_ca and self.config.get("refuse-ca"):
                self.provider.set_relation_error(ProviderCertificateError(
                    relation_id=request.relation_id, certificate_signing_request=csr,
                    error=CertificateError(code=int(CertificateRequestErrorCode.OTHER),
                                           name=CertificateRequestErrorCode.OTHER.name,
                                           message=REFUSED_MESSAGE,
                                           reason="refuse-ca is set", provider=self.app.name)))
                continue
            cert = csr.sign(ca=ca, ca_private_key=key, validity=validity, is_ca=request.is_ca)
            self.provider.set_relation_certificate(ProviderCertificate(
                relation_id=request.relation_id, certificate=cert,
                certificate_signing_request=csr, ca=ca, chain=[cert, ca]))
        self._status()

    def _status(self) -> None:
        issued = self.provider.get_provider_certificates()
        revoked = sum(1 for c in issued if c.revoked)
        refused = len(self.provider.get_provider_certificate_errors())
        self.unit.status = ops.ActiveStatus(
            f"{len(issued) - revoked} issued, {revoked} revoked, {refused} refused")


if __name__ == "__main__":  # pragma: nocover
    ops.main(RootCaCharm)
