"""charms.layer.tls.crl (pure): build, verify, renew, bounds, hostile PEM; and that Python's
ssl (OpenSSL) with the demo's flags refuses a client certificate the CRL lists."""
import datetime
import os
import socket
import ssl
import sys
import threading

import pytest
from charms.layer.tls import crl, pki
from hypothesis import given, settings
from hypothesis import strategies as st

NOW = datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)
CA = pki.create_ca("crl test CA", now=NOW - datetime.timedelta(days=1))
OTHER = pki.create_ca("other CA", now=NOW - datetime.timedelta(days=1))


def leaf(ca=CA, name="unit.example", now=NOW):
    key = pki.generate_private_key()
    cert = pki.issue_certificate(ca, key.public_key(), common_name=name, dns_names=[name],
                                 now=now - datetime.timedelta(hours=1))
    return cert, key


def test_a_crl_lists_the_serials_and_verifies_against_its_ca():
    cert, _ = leaf()
    built = crl.build_crl(CA, [crl.Revoked(cert.serial_number, NOW, "keyCompromise"),
                               crl.Revoked(cert.serial_number, NOW)], 3, now=NOW)
    assert crl.revoked_serials(built) == [cert.serial_number]  # listed once
    assert crl.crl_number(built) == 3
    assert crl.crl_problem(built, CA.certificate, now=NOW) is None
    entry = built.get_revoked_certificate_by_serial_number(cert.serial_number)
    from cryptography import x509
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == \
        x509.ReasonFlags.key_compromise
    assert built.last_update_utc == NOW - pki.BACKDATE
    assert built.next_update_utc == NOW + crl.LIFETIME
    pem = crl.crl_to_pem(built)
    assert crl.revoked_serials(crl.load_crl(pem)) == [cert.serial_number]


def test_a_crl_does_not_verify_against_another_ca_or_after_next_update():
    built = crl.build_crl(CA, [], 1, now=NOW)
    assert "issuer" in crl.crl_problem(built, OTHER.certificate, now=NOW)
    # same subject, another key: the signature is what counts
    twin = pki.create_ca("crl test CA", now=NOW - datetime.timedelta(days=1))
    assert "signature" in crl.crl_problem(built, twin.certificate, now=NOW)
    assert crl.crl_problem(built, CA.certificate, now=NOW + crl.LIFETIME).startswith(
        "it expired")
    assert "not valid before" in crl.crl_problem(
        built, CA.certificate, now=NOW - datetime.timedelta(hours=1))


def test_next_update_is_bounded_by_the_ca_and_an_expired_ca_signs_none():
    short = pki.create_ca("short CA", lifetime_days=2, now=NOW - datetime.timedelta(days=1))
    built = crl.build_crl(short, [], 1, now=NOW)
    assert built.next_update_utc == short.certificate.not_valid_after_utc
    with pytest.raises(pki.PKIError, match="cannot sign a CRL"):
        crl.build_crl(short, [], 1, now=NOW + datetime.timedelta(days=2))


def test_renewal_is_due_after_the_fraction_of_its_validity():
    built = crl.build_crl(CA, [], 1, now=NOW)
    start = NOW - pki.BACKDATE
    span = built.next_update_utc - start
    assert not crl.renewal_due(built, 0.67, now=start + span * 0.66)
    assert crl.renewal_due(built, 0.67, now=start + span * 0.68)
    assert crl.renew_at(built, 0.67) == pytest.approx((start + span * 0.67).timestamp())


def test_reason_names_are_rfc5280s():
    assert crl.reason_problem("keyCompromise") is None
    assert crl.reason_problem("unspecified") is None
    for bad in ("removeFromCRL", "compromised", "", None, 3):
        assert crl.reason_problem(bad)


@pytest.mark.parametrize("text", [
    "", None, 42, "x" * 70_000, "-----BEGIN X509 CRL-----\nMIIjunk\n-----END X509 CRL-----\n",
    "-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----\n",
    crl.crl_to_pem(crl.build_crl(CA, [], 1, now=NOW)) * 2,
    "-----BEGIN X509 CRL-----\n" + "A" * 70_000 + "\n-----END X509 CRL-----\n",
])
def test_hostile_crl_text_is_a_pki_error(text):
    with pytest.raises(pki.PKIError):
        crl.load_crl(text)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=3000))
def test_no_text_raises_anything_but_a_pki_error(text):
    try:
        loaded = crl.load_crl("-----BEGIN X509 CRL-----\n" + text + "\n-----END X509 CRL-----\n")
    except pki.PKIError:
        return
    crl.crl_problem(loaded, CA.certificate)  # never raises either


def _pem_files(tmp_path, name, cert, key):
    cert_file, key_file = tmp_path / f"{name}.crt", tmp_path / f"{name}.key"
    cert_file.write_text(pki.certificate_to_pem(cert))
    key_file.write_bytes(pki.private_key_to_pem(key))
    return cert_file, key_file


def _handshake(tmp_path, revoked_serials):
    """A server with the demo's context (its --crl) and two clients: returns which of
    (good, revoked) completed a mutual-TLS handshake."""
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "examples", "tls-demo",
                                    "files"))
    import echo_server

    now = pki.utcnow()
    ca = pki.create_ca("handshake CA", now=now - datetime.timedelta(days=1))
    server_key = pki.generate_private_key()
    server = pki.issue_certificate(ca, server_key.public_key(), common_name="server",
                                   ip_addresses=["127.0.0.1"])
    good, good_key = leaf(ca, "good.example", now)
    bad, bad_key = leaf(ca, "bad.example", now)
    (tmp_path / "ca.crt").write_text(pki.certificate_to_pem(ca.certificate))
    serials = [bad.serial_number] if revoked_serials else []
    (tmp_path / "ca.crl").write_text(crl.crl_to_pem(crl.build_crl(
        ca, [crl.Revoked(s, now) for s in serials], 1, now=now)))
    cert_file, key_file = _pem_files(tmp_path, "server", server, server_key)

    class Args:
        cert, key, ca, crl = str(cert_file), str(key_file), str(tmp_path / "ca.crt"), \
            str(tmp_path / "ca.crl")

    context = echo_server.make_context(Args)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve():
        for _ in range(2):
            connection, _ = listener.accept()
            echo_server.serve_one(connection, context, "server")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    outcome = {}
    for name, cert, key in (("good", good, good_key), ("bad", bad, bad_key)):
        client_cert, client_key = _pem_files(tmp_path, name, cert, key)
        client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        client.verify_flags |= ssl.VERIFY_X509_STRICT
        client.load_verify_locations(str(tmp_path / "ca.crt"))
        client.load_cert_chain(str(client_cert), str(client_key))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
                with client.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                    tls.sendall(b"hi\n")
                    outcome[name] = bool(tls.recv(100))
        except (OSError, ssl.SSLError):
            outcome[name] = False
    thread.join(5)
    listener.close()
    return outcome


def test_the_demo_service_refuses_a_revoked_client_and_serves_the_others(tmp_path):
    assert _handshake(tmp_path, revoked_serials=True) == {"good": True, "bad": False}


def test_the_handshake_check_can_fail(tmp_path):
    assert _handshake(tmp_path, revoked_serials=False) == {"good": True, "bad": True}
