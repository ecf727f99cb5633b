#!/usr/bin/env python3
"""A mutual-TLS echo service: answers "<unit> to <client CN>: <line>" to clients that
present a certificate (with its intermediate) chaining to a root of the CA bundle that no
CRL revokes. SIGHUP reloads the certificate (a full chain: leaf, then intermediate), key,
bundle and CRLs.

CRLs (``--crl``, written by layer:tls: one per root of the bundle, the CRL of the CA
under it that issues leaves, each verified against that CA) are checked for the client's
certificate (VERIFY_CRL_CHECK_LEAF) only when the file has one for every CA of the
bundle: OpenSSL refuses a certificate whose CA has no CRL, which would refuse every
certificate of a CA whose key is gone (a rollover from a lost key).

It writes its pid file only once it listens, so a pid file means the service is ready.
"""
import argparse
import os
import signal
import socket
import ssl
import threading


def make_context(args):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    context.load_cert_chain(args.cert, args.key)
    context.load_verify_locations(args.ca)
    crls = _read(args.crl) if args.crl else ""
    if crls and crls.count("BEGIN X509 CRL") >= _read(args.ca).count("BEGIN CERTIFICATE"):
        context.load_verify_locations(args.crl)
        context.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    return context


def _read(path):
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:
        return ""


def serve_one(connection, context, name):
    with connection:
        try:
            with context.wrap_socket(connection, server_side=True) as tls:
                tls.settimeout(10)
                subject = dict(item[0] for item in tls.getpeercert()["subject"])
                line = tls.recv(4096).decode(errors="replace").strip()
                tls.sendall(f"{name} to {subject.get('commonName')}: {line}\n".encode())
        except (OSError, ssl.SSLError, ValueError):
            pass  # a refused client (wrong CA, no certificate) or a dropped connection


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    for option in ("address", "name", "cert", "key", "ca", "pidfile"):
        parser.add_argument("--" + option, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--crl", default="")
    args = parser.parse_args()
    state = {"context": make_context(args)}

    def reload(signum, frame):
        state["context"] = make_context(args)

    signal.signal(signal.SIGHUP, reload)
    listener = socket.create_server((args.address, args.port), reuse_port=False)
    with open(args.pidfile + ".tmp", "w") as handle:
        handle.write(str(os.getpid()))
    os.replace(args.pidfile + ".tmp", args.pidfile)
    while True:
        connection, _ = listener.accept()
        threading.Thread(target=serve_one, args=(connection, state["context"], args.name),
                         daemon=True).start()


if __name__ == "__main__":
    main()
