"""`make bench` section "pki": issuing unit certificates with this library, against the
openssl CLI doing the same work and against easy-rsa (what the legacy layer drove), plus
sign-only throughput in one fresh process.

What one "unit" costs, for every tool: a new private key, a CSR with a DNS and an IP name,
the CSR's check (our policy; for openssl and easy-rsa the CSR signature check that
`x509 -req` / `sign-req` make) and the signed certificate with serverAuth+clientAuth, both
written as PEM. The CA is made once per row, outside the timing.
"""
from __future__ import annotations

import functools
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, NamedTuple, Optional, Tuple

from benchlib import (
    LIB,
    ensure_lib_path,
    environment_lines,
    fmt_ratio,
    fmt_seconds,
    markdown_table,
    median_of,
    run,
)

ensure_lib_path()
from charms.layer.tls import pki, policy  # noqa: E402

EASYRSA_CANDIDATES = ("/usr/share/easy-rsa/easyrsa", "easyrsa")
# (leaf key, CA key) rows: the P-256 CA for every leaf, an RSA-2048 CA for the RSA row.
ROWS = [("ecdsa-p256", "ecdsa-p256"), ("ecdsa-p384", "ecdsa-p256"),
        ("rsa-2048", "rsa-2048"), ("ed25519", "ecdsa-p256")]
OPENSSL_GENPKEY = {
    "ecdsa-p256": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    "ecdsa-p384": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
    "rsa-2048": ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    "ed25519": ["-algorithm", "ED25519"],
}
EASYRSA_ALGO = {
    "ecdsa-p256": {"EASYRSA_ALGO": "ec", "EASYRSA_CURVE": "prime256v1"},
    "ecdsa-p384": {"EASYRSA_ALGO": "ec", "EASYRSA_CURVE": "secp384r1"},
    "rsa-2048": {"EASYRSA_ALGO": "rsa", "EASYRSA_KEY_SIZE": "2048"},
    "ed25519": {"EASYRSA_ALGO": "ed", "EASYRSA_CURVE": "ed25519"},
}


class Config(NamedTuple):
    units: int = 100           # units issued per measurement (the library: all of them)
    openssl_units: int = 40    # the openssl CLI: this many, extrapolated to `units`
    easyrsa_units: int = 10    # easy-rsa is slower still: this many, extrapolated
    repeats: int = 3           # medians over this many runs
    sign_csrs: int = 1000      # sign-only: CSRs signed in one fresh process
    openssl_sign_cap: int = 200  # sign-only openssl loop: this many, extrapolated

    @classmethod
    def quick(cls) -> Config:
        return cls(units=20, openssl_units=10, easyrsa_units=5, repeats=1, sign_csrs=200,
                   openssl_sign_cap=40)


def _names(i: int) -> Tuple[str, str]:
    return f"app-{i}.test", f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}"


# --- this library ----------------------------------------------------------------------------

def library_issue(ca: pki.CertificateAuthority, algorithm: str, units: int) -> None:
    """What a unit and the leader do, in one process: key, CSR PEM, policy check + sign,
    PEM out."""
    for i in range(units):
        dns, ip = _names(i)
        key = pki.generate_private_key(algorithm)
        csr_pem = pki.csr_to_pem(pki.build_csr(key, f"app/{i}", dns_names=[dns],
                                               ip_addresses=[ip]))
        claims = policy.Claims.build(allowed_dns=[dns], allowed_ips=[ip])
        cert = policy.sign_csr(ca, csr_pem, claims, unit_name=f"app/{i}")
        pki.private_key_to_pem(key)
        pki.certificate_to_pem(cert)


# --- the openssl CLI --------------------------------------------------------------------------

def _write(path: str, data) -> None:
    with open(path, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)


def _ext_file(path: str, leaf_algorithm: str, dns: str, ip: str) -> None:
    usage = "digitalSignature,keyEncipherment" if leaf_algorithm.startswith("rsa") \
        else "digitalSignature"
    _write(path, "[v3]\nbasicConstraints=critical,CA:FALSE\n"
                 f"keyUsage=critical,{usage}\nextendedKeyUsage=serverAuth,clientAuth\n"
                 f"subjectAltName=DNS:{dns},IP:{ip}\nsubjectKeyIdentifier=hash\n"
                 "authorityKeyIdentifier=keyid\n")


def openssl_make_ca(directory: str, ca_algorithm: str) -> Tuple[str, str]:
    key, cert = os.path.join(directory, "ca.key"), os.path.join(directory, "ca.pem")
    run(["openssl", "genpkey", *OPENSSL_GENPKEY[ca_algorithm], "-out", key])
    run(["openssl", "req", "-x509", "-new", "-key", key, "-subj", "/CN=Juju CA",
         "-days", "3650", "-addext", "basicConstraints=critical,CA:TRUE,pathlen:0",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", cert])
    return key, cert


def openssl_sign(directory: str, ca: Tuple[str, str], csr: str, ext: str, out: str) -> None:
    """`x509 -req` checks the CSR's signature, then signs with our extensions only."""
    run(["openssl", "x509", "-req", "-in", csr, "-CA", ca[1], "-CAkey", ca[0],
         "-set_serial", "0x" + secrets.token_hex(16), "-days", "365",
         "-extfile", ext, "-extensions", "v3", "-out", out])


def openssl_issue(directory: str, ca: Tuple[str, str], algorithm: str, units: int) -> None:
    for i in range(units):
        dns, ip = _names(i)
        base = os.path.join(directory, f"u{i}")
        run(["openssl", "genpkey", *OPENSSL_GENPKEY[algorithm], "-out", base + ".key"])
        run(["openssl", "req", "-new", "-key", base + ".key", "-subj", f"/CN=app-{i}",
             "-addext", f"subjectAltName=DNS:{dns},IP:{ip}", "-out", base + ".csr"])
        _ext_file(base + ".ext", algorithm, dns, ip)
        openssl_sign(directory, ca, base + ".csr", base + ".ext", base + ".crt")


# --- easy-rsa ------------------------------------------------------------------------------------

def find_or_install_easyrsa() -> Tuple[Optional[str], str]:
    """(path to easyrsa, note). Installs the Debian package when root and missing."""
    def find() -> Optional[str]:
        for candidate in EASYRSA_CANDIDATES:
            path = shutil.which(candidate) or (candidate if os.path.isfile(candidate) else None)
            if path:
                return path
        return None

    path = find()
    if path:
        return path, ""
    if not shutil.which("apt-get") or os.geteuid() != 0:
        return None, ("easy-rsa is not installed and this is not root with apt-get: "
                      "`apt-get install -y easy-rsa` to get this row")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    print("installing easy-rsa (apt-get install -y easy-rsa) ...", file=sys.stderr)
    for cmd in (["apt-get", "install", "-y", "easy-rsa"], ["apt-get", "update"],
                ["apt-get", "install", "-y", "easy-rsa"]):
        subprocess.run(cmd, capture_output=True, env=env, check=False, timeout=600)
        path = find()
        if path:
            return path, "easy-rsa was installed by this run (apt-get install -y easy-rsa)"
    return None, "easy-rsa could not be installed (apt-get failed): row skipped"


def easyrsa_version(easyrsa: str) -> str:
    out = subprocess.run([easyrsa, "--version"], capture_output=True, text=True,
                         check=False).stdout
    for line in out.splitlines():
        if line.strip().startswith("Version:"):
            return line.split(":", 1)[1].strip()
    return "?"


class EasyRSA:
    """One PKI in a temporary directory, driven the way the legacy layer drove it."""

    def __init__(self, easyrsa: str, directory: str, ca_algorithm: str) -> None:
        self.easyrsa = easyrsa
        self.env = dict(os.environ, EASYRSA_BATCH="1", EASYRSA_PKI=os.path.join(directory,
                                                                                 "pki"))
        self.cmd(ca_algorithm, "init-pki")
        self.cmd(ca_algorithm, "--req-cn=Juju CA", "build-ca", "nopass")

    def cmd(self, algorithm: str, *args: str) -> None:
        env = dict(self.env, **EASYRSA_ALGO[algorithm])
        result = subprocess.run([self.easyrsa, *args], capture_output=True, text=True,
                                env=env, check=False, stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            raise RuntimeError(f"easyrsa {' '.join(args)}: {result.stderr.strip()[-300:]}")

    def issue(self, algorithm: str, start: int, units: int) -> None:
        for i in range(start, start + units):
            dns, ip = _names(i)
            self.cmd(algorithm, f"--req-cn=app-{i}", "gen-req", f"app-{i}", "nopass")
            self.cmd(algorithm, f"--subject-alt-name=DNS:{dns},IP:{ip}", "sign-req",
                     "serverClient", f"app-{i}")


# --- sign-only throughput in a fresh process ----------------------------------------------------

SIGN_SCRIPT = r"""
import json, sys, time
t0 = time.perf_counter()
sys.path.insert(0, sys.argv[1])
from charms.layer.tls import pki, policy
t1 = time.perf_counter()
d = sys.argv[2]
with open(d + "/ca.pem") as f, open(d + "/ca.key", "rb") as k, open(d + "/csrs.json") as c:
    ca = pki.CertificateAuthority(pki.load_certificate(f.read()), pki.load_private_key(k.read()))
    csrs = json.load(c)
t2 = time.perf_counter()
out = []
for i, (pem, dns, ip) in enumerate(csrs):
    claims = policy.Claims.build(allowed_dns=[dns], allowed_ips=[ip])
    out.append(pki.certificate_to_pem(policy.sign_csr(ca, pem, claims, unit_name="app/%d" % i)))
t3 = time.perf_counter()
assert len(out) == len(csrs)
print(json.dumps({"import": t1 - t0, "load": t2 - t1, "sign": t3 - t2}))
"""


def prepare_csrs(directory: str, count: int) -> List[Tuple[str, str, str]]:
    csrs = []
    for i in range(count):
        dns, ip = _names(i)
        key = pki.generate_private_key("ecdsa-p256")
        csrs.append((pki.csr_to_pem(pki.build_csr(key, f"app/{i}", dns_names=[dns],
                                                  ip_addresses=[ip])), dns, ip))
    _write(os.path.join(directory, "csrs.json"), json.dumps(csrs))
    return csrs


def library_sign_process(directory: str) -> Dict[str, float]:
    start = time.perf_counter()
    result = run([sys.executable, "-c", SIGN_SCRIPT, LIB, directory])
    wall = time.perf_counter() - start
    inner = json.loads(result.stdout)
    inner["wall"] = wall
    inner["start"] = wall - inner["load"] - inner["sign"]  # interpreter start + imports
    return inner


# --- the section ----------------------------------------------------------------------------------

def _median_dict(samples: List[Dict[str, float]]) -> Dict[str, float]:
    import statistics
    return {k: statistics.median(s[k] for s in samples) for k in samples[0]}


def _openssl_issue_fresh(directory: str, ca: Tuple[str, str], algorithm: str,
                         units: int) -> None:
    with tempfile.TemporaryDirectory(dir=directory) as unit_dir:
        openssl_issue(unit_dir, ca, algorithm, units)


def _openssl_sign_loop(directory: str, ca_files: Tuple[str, str], count: int) -> None:
    for i in range(count):
        openssl_sign(directory, ca_files, os.path.join(directory, f"{i}.csr"),
                     os.path.join(directory, f"{i}.ext"), os.path.join(directory, f"{i}.crt"))


def run_section(config: Optional[Config] = None) -> str:
    config = config or Config()
    notes: List[str] = []
    easyrsa, note = find_or_install_easyrsa()
    if note:
        notes.append(note)
    extra_env = [f"- easy-rsa {easyrsa_version(easyrsa)}" if easyrsa else "- easy-rsa: absent"]
    issue_rows = []
    for leaf, ca_alg in ROWS:
        print(f"pki: issuing {config.units} units, {leaf} leaves, {ca_alg} CA ...",
              file=sys.stderr)
        ca = pki.create_ca("Juju CA", key_algorithm=ca_alg)
        ours = median_of(functools.partial(library_issue, ca, leaf, config.units),
                         config.repeats)
        with tempfile.TemporaryDirectory() as d:
            theirs = median_of(functools.partial(
                _openssl_issue_fresh, d, openssl_make_ca(d, ca_alg), leaf, config.openssl_units),
                config.repeats) * config.units / config.openssl_units
        easy: Optional[float] = None
        easy_cell = "skipped"
        if easyrsa:
            try:
                with tempfile.TemporaryDirectory() as d:
                    pki_dir = EasyRSA(easyrsa, d, ca_alg)
                    starts = iter(range(0, 10 ** 6, config.easyrsa_units))
                    easy = median_of(
                        lambda p=pki_dir, a=leaf, s=starts: p.issue(a, next(s),
                                                                    config.easyrsa_units),
                        config.repeats) * config.units / config.easyrsa_units
                easy_cell = f"{fmt_seconds(easy)} ({fmt_seconds(easy / config.units)})"
            except RuntimeError as exc:
                easy_cell = "failed"
                notes.append(f"easy-rsa, {leaf} leaves: {exc}")
        issue_rows.append([
            f"{leaf} leaf, {ca_alg} CA",
            f"{fmt_seconds(ours)} ({fmt_seconds(ours / config.units)})",
            f"{fmt_seconds(theirs)} ({fmt_seconds(theirs / config.units)})",
            easy_cell, fmt_ratio(theirs, ours), fmt_ratio(easy, ours)])

    sign_rows = []
    for ca_alg in ("ecdsa-p256", "rsa-2048"):
        print(f"pki: signing {config.sign_csrs} CSRs with a {ca_alg} CA ...", file=sys.stderr)
        with tempfile.TemporaryDirectory() as d:
            ca = pki.create_ca("Juju CA", key_algorithm=ca_alg)
            _write(os.path.join(d, "ca.pem"), pki.certificate_to_pem(ca.certificate))
            _write(os.path.join(d, "ca.key"), pki.private_key_to_pem(ca.private_key))
            csrs = prepare_csrs(d, config.sign_csrs)
            ours = _median_dict([library_sign_process(d) for _ in range(config.repeats)])
            cap = min(config.openssl_sign_cap, config.sign_csrs)
            for i, (pem, dns, ip) in enumerate(csrs[:cap]):
                _write(os.path.join(d, f"{i}.csr"), pem)
                _ext_file(os.path.join(d, f"{i}.ext"), "ecdsa-p256", dns, ip)
            ca_files = (os.path.join(d, "ca.key"), os.path.join(d, "ca.pem"))
            theirs = median_of(functools.partial(_openssl_sign_loop, d, ca_files, cap),
                               config.repeats) * config.sign_csrs / cap
        n = config.sign_csrs
        sign_rows.append([
            f"{ca_alg} CA", fmt_seconds(ours["wall"]),
            f"{fmt_seconds(ours['sign'])} ({fmt_seconds(ours['sign'] / n)}/CSR)",
            f"{fmt_seconds(ours['start'])} + {fmt_seconds(ours['load'])}",
            f"{fmt_seconds(theirs)} ({fmt_seconds(theirs / n)}/CSR)",
            fmt_ratio(theirs, ours["wall"]), fmt_ratio(theirs, ours["sign"])])

    return "\n".join([
        "## PKI: issuing unit certificates",
        "",
        f"Medians of {config.repeats} runs. One unit = new private key + CSR (one DNS and one "
        "IP name) + CSR check + signed serverAuth/clientAuth certificate, key and "
        "certificate as PEM; the CA is made once per row, outside the timing. Cells: total "
        f"for {config.units} units (per unit).",
        "",
        markdown_table(
            ["key type", "this library (in process)",
             f"openssl CLI (genpkey, req, x509 -req; {config.openssl_units} units x"
             f"{config.units / config.openssl_units:g} extrapolated)",
             f"easy-rsa (gen-req + sign-req; {config.easyrsa_units} units x"
             f"{config.units / config.easyrsa_units:g} extrapolated)",
             "openssl / library", "easy-rsa / library"],
            issue_rows),
        "",
        f"### Sign only: {config.sign_csrs} P-256 CSRs, one fresh process",
        "",
        "The library column runs `python -c` in a new interpreter (start, imports, loading "
        "the CA key and the CSRs, then check + sign + PEM of each CSR). The openssl column "
        f"is one `openssl x509 -req` per CSR; {min(config.openssl_sign_cap, config.sign_csrs)}"
        f" were run and the time extrapolated to {config.sign_csrs}.",
        "",
        markdown_table(
            ["CA", "library: fresh process, wall", "library: sign loop only",
             "library: start+imports + CA/CSR load",
             f"openssl CLI loop (extrapolated from {config.openssl_sign_cap})",
             "openssl / library (wall)", "openssl / library (loop)"],
            sign_rows),
        "",
        *environment_lines(extra_env),
        *(f"- note: {n}" for n in notes),
    ])
