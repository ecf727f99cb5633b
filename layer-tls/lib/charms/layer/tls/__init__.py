"""layer:tls library: ``charms.layer.tls``.

Modules, one job each (import the one you need; this package imports nothing itself so
that a hook with no crypto work never loads ``cryptography``):

Pure functions, no Juju:

- ``pki``: PKI over ``cryptography`` (keys, CA, CSR, issuing, verification).
- ``crl``: build, verify and time the renewal of a CA's CRL.
- ``policy``: the signer's policy, checking an untrusted CSR before anything is issued.
- ``signer``: the leader's batch: check and sign every pending CSR in one pass.
- ``sans``: subject alternative names as text (classify, validate; no crypto).
- ``namespace``: the ``tls_permitted_names`` config: the names the CA may vouch for.
- ``pki_provider``: the CA's request to a tls-certificates provider, and the check of the
  intermediate it signs before any use.

Juju-facing, called by the reactive handlers:

- ``settings``: layer options and the operator's config, each read once and checked.
- ``storage``: unitdata (the source of truth) and the files written from it.
- ``ca_store``: where the leader keeps the CA (an application secret, else leader settings).
- ``operator_ca``: the operator's CA, read from the user secret ``tls_ca_secret`` names.
- ``ca_provider``: the CA as an intermediate signed by a related tls-certificates provider.
- ``ca_request_store``: where the leader keeps the key of that pending request.
- ``leader``: keep the one CA, sign the batch, publish bundle and certificates.
- ``unit``: every unit's key, CSR and installed certificate.
- ``names``: the names a unit puts in its CSR (addresses, host names, extra SANs).
- ``revocation``: revoke and bar units, keep one CRL per CA published and fresh.
- ``transfer``: send the trusted bundle to related applications (certificate_transfer).
- ``legacy``: adopt the PKI the easy-rsa ``layer:tls`` left on the units.
- ``actions``: the layer's actions.
- ``status``: the workload status the layer shows.
"""
