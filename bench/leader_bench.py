"""`make bench` section "leader": one leader hook of layer:tls that finds N pending P-256
CSRs in the peer relation and signs them all (validate, sign, publish), on the real
charms.reactive, each run in a fresh interpreter (bench/leader_hook.py), with the hook tools
answered in process by tests/reactive_harness.FakeJuju and counted; against the openssl CLI
(`x509 -req` per CSR) and easy-rsa (`import-req` + `sign-req` per CSR) doing the same
signing work with the same P-256 CA key type.
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from typing import Dict, List, NamedTuple, Optional

from benchlib import (
    HERE,
    environment_lines,
    fmt_ratio,
    fmt_seconds,
    markdown_table,
    run,
    write_data,
)

CHILD = os.path.join(HERE, "leader_hook.py")


class Config(NamedTuple):
    sizes: tuple = (10, 100, 1000)   # pending CSRs (warm: the leader saw the data before)
    cold_size: int = 1000            # also once with every peer's data new to the leader
    repeats: int = 5                 # fresh processes per size; medians
    openssl_sample: int = 50         # CLI signings timed, per CSR cost extrapolated
    easyrsa_sample: int = 10

    @classmethod
    def quick(cls) -> Config:
        return cls(sizes=(10, 100), cold_size=100, repeats=1, openssl_sample=5,
                   easyrsa_sample=2)


def _python() -> str:
    return sys.executable


def prepare(directory: str, n: int, warm: bool) -> None:
    run([_python(), CHILD, "prepare", directory, str(n)] + (["warm"] if warm else []))


def hook_once(directory: str) -> Dict:
    start = time.perf_counter()
    result = run([_python(), CHILD, "hook", directory])
    wall = time.perf_counter() - start
    data = json.loads(result.stdout)
    assert data["ok"], data
    data["wall"] = wall
    data["process_wall"] = wall - data["setup"]  # the fake model's set-up left out
    return data


def measure(directory: str, n: int, warm: bool, repeats: int) -> Dict:
    prepare(directory, n, warm)
    samples = [hook_once(directory) for _ in range(repeats)]
    result = dict(samples[-1])
    if result["signed"] != n + 1:  # every peer and the leader itself
        raise RuntimeError(f"the leader hook signed {result['signed'] - 1} of {n} CSRs "
                           f"(ok: {result['ok']}): {result['rejections']}")
    for key in ("wall", "process_wall", "hook", "imports"):
        result[key] = statistics.median(s[key] for s in samples)
    result["csrs"] = n
    result["warm"] = warm
    return result


def profile(directory: str) -> List[Dict]:
    result = run([_python(), CHILD, "profile", directory])
    return json.loads(result.stdout)["top"]


# --- the CLIs, same signing work ---------------------------------------------------------

def cli_per_csr(config: Config, notes: List[str]) -> Dict[str, Optional[float]]:
    import pki_bench
    from charms.layer.tls import pki

    out: Dict[str, Optional[float]] = {"openssl": None, "easyrsa": None}
    with tempfile.TemporaryDirectory() as d:
        csrs = pki_bench.prepare_csrs(d, max(config.openssl_sample, config.easyrsa_sample))
        ca_files = pki_bench.openssl_make_ca(d, "ecdsa-p256")
        for i, (pem, dns, ip) in enumerate(csrs):
            pki_bench._write(os.path.join(d, f"{i}.csr"), pem)
            pki_bench._ext_file(os.path.join(d, f"{i}.ext"), "ecdsa-p256", dns, ip)
        start = time.perf_counter()
        pki_bench._openssl_sign_loop(d, ca_files, config.openssl_sample)
        out["openssl"] = (time.perf_counter() - start) / config.openssl_sample
        easyrsa, note = pki_bench.find_or_install_easyrsa()
        if note:
            notes.append(note)
        if easyrsa:
            ers = pki_bench.EasyRSA(easyrsa, os.path.join(d, "ersa"), "ecdsa-p256")
            start = time.perf_counter()
            for i in range(config.easyrsa_sample):
                dns, ip = csrs[i][1], csrs[i][2]
                ers.cmd("ecdsa-p256", "import-req", os.path.join(d, f"{i}.csr"), f"u{i}")
                ers.cmd("ecdsa-p256", f"--subject-alt-name=DNS:{dns},IP:{ip}", "sign-req",
                        "serverClient", f"u{i}")
            out["easyrsa"] = (time.perf_counter() - start) / config.easyrsa_sample
        del pki  # only to have the library path set up by pki_bench
    return out


def _calls_cell(r: Dict) -> str:
    calls = r["distinct_calls"]
    return ", ".join(f"{k.replace('_', '-')} {v}" for k, v in sorted(calls.items()))


def run_section(config: Optional[Config] = None) -> str:
    config = config or Config()
    notes: List[str] = []
    rows, scaling = [], []
    top: List[Dict] = []
    cases = [(n, True) for n in config.sizes] + [(config.cold_size, False)]
    for n, warm in cases:
        print(f"leader: {n} pending CSRs ({'warm' if warm else 'cold'}) ...", file=sys.stderr)
        with tempfile.TemporaryDirectory() as d:
            r = measure(d, n, warm, config.repeats)
            if warm and n == max(config.sizes):
                top = profile(d)
        if warm:
            scaling.append({"csrs": n, "process_wall": r["process_wall"], "hook": r["hook"]})
        rows.append(r)
    print("leader: openssl and easy-rsa signing the same CSRs ...", file=sys.stderr)
    cli = cli_per_csr(config, notes)
    big = next(r for r in rows if r["warm"] and r["csrs"] == max(config.sizes))
    n_big = big["csrs"]
    table = []
    for r in rows:
        n = r["csrs"]
        openssl = cli["openssl"] * n if cli["openssl"] else None
        easy = cli["easyrsa"] * n if cli["easyrsa"] else None
        table.append([
            f"{n}{'' if r['warm'] else ' (cold)'}",
            f"{r['signed'] - 1}",
            fmt_seconds(r["process_wall"]), fmt_seconds(r["hook"]),
            fmt_seconds(r["process_wall"] - r["hook"]),
            f"{r['hook'] / n * 1000:.2f} ms",
            _calls_cell(r), f"{r['writes']}",
            f"{r['unit_reads_min']}-{r['unit_reads_max']}",
            f"{r['published_bytes']:,}",
            f"{fmt_seconds(openssl)} / {fmt_seconds(easy)}",
            f"{fmt_ratio(openssl, r['process_wall'])} / {fmt_ratio(easy, r['process_wall'])}"])
    write_data("leader", {"rows": rows, "scaling": scaling,
                          "openssl_per_csr": cli["openssl"], "easyrsa_per_csr": cli["easyrsa"],
                          "profile_top": top})
    prof_rows = [[f"`{t['where']}`", str(t["calls"]), f"{t['tottime'] * 1000:.0f} ms",
                  f"{t['cumtime'] * 1000:.0f} ms"] for t in top[:10]]
    return "\n".join([
        "## Leader: one hook signs every pending CSR",
        "",
        f"Medians of {config.repeats} fresh processes. The leader (its CA in the fake secret "
        "store, its own certificate installed) runs `certificates-relation-changed` with N "
        "peers in the relation, each with a published P-256 CSR, `tls-hostnames`, "
        "`tls-addresses` and Juju's addresses: charms.reactive start-up and dispatch, the "
        "layer's checks, signing, and the publication. Hook tools are in-process fakes "
        "(tests/reactive_harness.FakeJuju), counted. *Warm*: the leader has seen the peers' "
        "data in earlier hooks (charms.reactive keeps a hash per key per peer in unitdata), "
        "only the CSRs are unsigned: the usual case. *Cold*: every peer's data is new to "
        "this hook (charms.reactive then sets its `changed` flags for every key of every "
        "peer).",
        "",
        "- *fresh process*: interpreter start + imports + hook (the fake model's set-up in "
        "the child is left out); *hook*: in process, from dispatch to the end of the "
        "commit; *start + imports*: the difference.",
        "- *tool calls*: distinct calls per kind (charmhelpers caches relation-get, "
        "relation-ids, related-units, unit-get within a hook: a distinct call is one tool "
        "process in real Juju); *writes*: relation-set + leader-set + status-set + "
        "secret-add/set; *reads/unit*: relation-get calls naming each peer (min-max).",
        "- *published*: bytes of keys + values passed to relation-set in this hook.",
        f"- CLIs: one `openssl x509 -req` per CSR ({fmt_seconds(cli['openssl'])}/CSR, "
        f"{config.openssl_sample} timed), one easy-rsa `import-req` + `sign-req serverClient` "
        f"per CSR ({fmt_seconds(cli['easyrsa'])}/CSR, {config.easyrsa_sample} timed), same "
        "P-256 CA key type, extrapolated to N; ratios against the fresh-process time.",
        "",
        markdown_table(
            ["pending CSRs", "signed (peers)", "fresh process", "hook", "start + imports",
             "hook per CSR", "tool calls (distinct)", "writes", "reads/unit", "published B",
             "openssl / easy-rsa", "openssl / ours, easy-rsa / ours"],
            table),
        "",
        f"### Where the {n_big}-CSR warm hook spends its time (cProfile, top 10 by own time)",
        "",
        markdown_table(["function", "calls", "own time", "cumulative"], prof_rows),
        "",
        *environment_lines(),
        *(f"- note: {n}" for n in notes),
    ])
