"""layer:tls library: ``charms.layer.tls``.

Modules, one job each (import the one you need; this package imports nothing itself so
that a hook with no crypto work never loads ``cryptography``):

- ``pki``: pure PKI over ``cryptography`` (keys, CA, CSR, issuing, verification). No Juju.
- ``policy``: the signer's policy, checking an untrusted CSR before anything is issued.
"""
