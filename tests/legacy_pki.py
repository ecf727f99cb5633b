"""A PKI made by the real easy-rsa (Debian package ``easy-rsa``), laid out as the legacy
easy-rsa ``layer:tls`` left it on each unit, for the adoption tests.

What the legacy layer did (juju-solutions/layer-tls, reactive/tls.py at its last release):
every unit cloned easy-rsa into ``$CHARM_DIR/easy-rsa`` and ran ``./easyrsa --batch init-pki``
in ``easy-rsa/easyrsa3``; the leader ran ``build-ca nopass`` (``pki/ca.crt``,
``pki/private/ca.key``), ``build-server-full <unit with / as _> nopass`` for itself (earlier
releases named it after the public address, or ``server``) and ``build-client-full client
nopass``; the others ran ``gen-req <unit with / as _> nopass`` (``pki/private/<n>.key``,
``pki/reqs/<n>.req``) and published the request as relation key ``csr``; the leader imported
each request (``import-req``) and signed it with ``sign-req server``, publishing
``<unit>_signed_certificate`` in its unit bag. Every unit kept its certificate in unitdata
``tls.server.certificate``; the leader set leader setting ``certificate_authority``. With the
upper layer's flag ``tls.client.authorization.required`` the leader's ``x509-types/server``
said ``serverAuth, clientAuth``; without it server certificates were serverAuth only.

Differences forced by easy-rsa 3.1 (the legacy layer used a 2016 git checkout of 3.0):
``build-server-full`` no longer accepts ``--req-cn`` (the CN is the file name), and
``copy_extensions = copy`` is asked for with ``--copy-ext`` instead of editing the config.
"""
from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import tempfile
from typing import Dict, Iterable, List, NamedTuple, Optional

EASYRSA_HOME = pathlib.Path("/usr/share/easy-rsa")
EASYRSA = EASYRSA_HOME / "easyrsa"
LEGACY_DIR = pathlib.Path("easy-rsa") / "easyrsa3"


def unavailable_reason() -> Optional[str]:
    """Why the real easy-rsa cannot be used here (None when it can)."""
    if not EASYRSA.exists():
        return "easy-rsa is not installed (apt-get install -y easy-rsa; `make test` does it)"
    if shutil.which("openssl") is None:
        return "the openssl CLI (used by easy-rsa) is not installed"
    return None


class LegacyUnit(NamedTuple):
    name: str            # e.g. tls/1
    charm_dir: pathlib.Path
    address: str         # public and private address (the same in the tests)
    hostname: str


class LegacyPKI(NamedTuple):
    """What the legacy layer left behind (PEM text), for laying out relation data and
    unitdata and for the tests' assertions."""

    leader: str
    ca_certificate: str
    certificates: Dict[str, str]      # unit -> its server certificate
    keys: Dict[str, str]              # unit -> its private key (tests compare public keys)
    csrs: Dict[str, str]              # non-leader unit -> its published CSR
    client_certificate: str           # the leader's pki/issued/client.crt

    def relation_data(self) -> Dict[str, Dict[str, str]]:
        """unit -> the keys the legacy layer (and interface) left in its unit bag."""
        data: Dict[str, Dict[str, str]] = {u: {"csr": csr} for u, csr in self.csrs.items()}
        data[self.leader] = {f"{u}_signed_certificate": self.certificates[u]
                             for u in self.csrs}
        return data

    def unitdata(self, unit: str) -> Dict[str, str]:
        """The unitdata keys the legacy layer set on ``unit``."""
        values = {"tls.server.certificate": self.certificates[unit]}
        if unit == self.leader:
            values["tls.client.certificate"] = self.client_certificate
        return values

    def flags(self, unit: str) -> List[str]:
        """Reactive flags the legacy layer had set on ``unit`` after it settled."""
        flags = ["easyrsa installed", "easyrsa configured", "tls.server.certificate available",
                 "tls.certificate.authority available"]
        if unit == self.leader:
            flags += ["certificate authority available", "tls.client.certificate available",
                      "client certificate available"]
        return flags


def path_safe(unit: str) -> str:
    return unit.replace("/", "_")


def _sans(unit: LegacyUnit) -> str:
    # The legacy get_sans(): public address, private address, host name (deduplicated).
    names: List[str] = []
    for name in (unit.address, unit.address, unit.hostname):
        if name not in names:
            names.append(name)
    return ",".join(("DNS:" if any(c.isalpha() for c in n) else "IP:") + n for n in names)


def _run(easyrsa3: pathlib.Path, *args: str) -> None:
    env = dict(os.environ, EASYRSA_BATCH="1")
    for var in ("EASYRSA", "EASYRSA_PKI", "EASYRSA_VARS_FILE"):
        env.pop(var, None)
    done = subprocess.run(["./easyrsa", "--batch", *args], cwd=easyrsa3, env=env,
                          capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"easyrsa {' '.join(args)} failed: {done.stdout[-400:]}"
                           f"{done.stderr[-400:]}")


def install_easyrsa(charm_dir: pathlib.Path) -> pathlib.Path:
    """The legacy install handler: easy-rsa under ``$CHARM_DIR/easy-rsa/easyrsa3``, then
    ``init-pki``. Returns the easyrsa3 directory."""
    easyrsa3 = pathlib.Path(charm_dir) / LEGACY_DIR
    easyrsa3.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(EASYRSA_HOME, easyrsa3)
    _run(easyrsa3, "init-pki")
    return easyrsa3


def make_legacy_pki(units: Iterable[LegacyUnit], leader: str, *, client_auth: bool = True,
                    days: Optional[Dict[str, int]] = None) -> LegacyPKI:
    """Lay out the legacy PKI in every unit's charm dir with the real easy-rsa.

    ``client_auth``: the leader's server type carries clientAuth (the legacy
    ``tls.client.authorization.required`` path). ``days``: unit -> validity in days of its
    certificate (easy-rsa refuses past dates: tests move the clock to expire one).
    """
    units = list(units)
    days = days or {}
    by_name = {u.name: u for u in units}
    lead = by_name[leader]
    ca_dir = install_easyrsa(lead.charm_dir)
    if client_auth:
        server_type = ca_dir / "x509-types" / "server"
        server_type.write_text(server_type.read_text().replace(
            "serverAuth", "serverAuth, clientAuth"))
    pki = ca_dir / "pki"
    _run(ca_dir, f"--req-cn={lead.address}", "build-ca", "nopass")
    lead_name = path_safe(leader)
    _run(ca_dir, f"--subject-alt-name={_sans(lead)}", f"--days={days.get(leader, 825)}",
         "build-server-full", lead_name, "nopass")
    _run(ca_dir, "build-client-full", "client", "nopass")
    certificates = {leader: (pki / "issued" / f"{lead_name}.crt").read_text()}
    keys = {leader: (pki / "private" / f"{lead_name}.key").read_text()}
    csrs: Dict[str, str] = {}
    for unit in units:
        if unit.name == leader:
            continue
        name = path_safe(unit.name)
        own = install_easyrsa(unit.charm_dir)
        _run(own, f"--req-cn={unit.address}", f"--subject-alt-name={_sans(unit)}",
             "gen-req", name, "nopass")
        csrs[unit.name] = (own / "pki" / "reqs" / f"{name}.req").read_text()
        keys[unit.name] = (own / "pki" / "private" / f"{name}.key").read_text()
        with tempfile.NamedTemporaryFile("w", suffix=".csr") as handle:
            handle.write(csrs[unit.name])
            handle.flush()
            _run(ca_dir, "import-req", handle.name, name)
        _run(ca_dir, "--copy-ext", f"--days={days.get(unit.name, 825)}", "sign-req",
             "server", name)
        certificates[unit.name] = (pki / "issued" / f"{name}.crt").read_text()
    return LegacyPKI(leader, (pki / "ca.crt").read_text(), certificates, keys, csrs,
                     (pki / "issued" / "client.crt").read_text())


def copy_legacy_dirs(source_dirs: Dict[str, pathlib.Path],
                     target_dirs: Dict[str, pathlib.Path]) -> None:
    """Copy each unit's ``easy-rsa`` tree from one charm dir to another (a PKI made once per
    session serves several tests)."""
    for unit, source in source_dirs.items():
        target = pathlib.Path(target_dirs[unit]) / "easy-rsa"
        if target.exists():
            shutil.rmtree(target)
        if (pathlib.Path(source) / "easy-rsa").exists():
            shutil.copytree(pathlib.Path(source) / "easy-rsa", target, symlinks=True)
