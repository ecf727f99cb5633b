"""Fake PEM text: structurally PEM, cryptographically meaningless (the interface never parses).

Bodies start with ``MII`` like real DER-in-base64, so tests can assert no body reaches a log.
"""
import hashlib


def fake_csr(unit: str, serial: int = 0) -> str:
    body = 'MIIR' + hashlib.sha256(f'{unit}#{serial}'.encode()).hexdigest()
    return f'-----BEGIN CERTIFICATE REQUEST-----\n{body}\n-----END CERTIFICATE REQUEST-----\n'


def fake_cert(csr: str, issuer: str = 'ca') -> str:
    """A certificate 'issued' from ``csr``: different CSR or issuer, different text."""
    body = 'MIIC' + hashlib.sha256(f'{issuer}|{csr}'.encode()).hexdigest()
    return f'-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n'


CA_BUNDLE = '-----BEGIN CERTIFICATE-----\nMIICcafake\n-----END CERTIFICATE-----\n'
