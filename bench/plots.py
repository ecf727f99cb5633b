"""The benchmark plot: extra hooks vs N (model section) and leader sign time vs number of
CSRs (leader section), drawn from results/<section>.json into results/performance.png."""
from __future__ import annotations

import os
from typing import Optional

from benchlib import RESULTS, read_data

PNG = os.path.join(RESULTS, "performance.png")


def draw() -> Optional[str]:
    model, leader = read_data("model"), read_data("leader")
    if not model and not leader:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    if model and model.get("extra"):
        points = sorted(model["extra"], key=lambda p: (p["n"], p["seed"]))
        ns = sorted({p["n"] for p in points})
        for key, label, style in (("baseline", "baseline (no layer:tls)", "o-"),
                                  ("tls", "with layer:tls", "s-"),
                                  ("extra", "extra hooks (tls - baseline)", "^-")):
            ys = [min(p[key] for p in points if p["n"] == n) for n in ns]
            hi = [max(p[key] for p in points if p["n"] == n) for n in ns]
            left.plot(ns, ys, style, label=label)
            left.fill_between(ns, ys, hi, alpha=0.2)
        left.plot(ns, [2 * n * (n - 1) for n in ns], ":", color="grey",
                  label="2 N (N-1): peer joined + changed")
        left.set_xscale("log")
        left.set_yscale("symlog", linthresh=10)
        left.set_ylim(bottom=0)
        left.set_xlabel("units N")
        left.set_ylabel("hooks to settle a deploy")
        left.set_title("Hooks to settle (simulated model)")
        left.legend(fontsize=8)
        left.grid(True, which="both", alpha=0.3)
    else:
        left.text(0.5, 0.5, "model section not run", ha="center")
    if leader and leader.get("scaling"):
        rows = sorted(leader["scaling"], key=lambda r: r["csrs"])
        xs = [r["csrs"] for r in rows]
        right.plot(xs, [r["process_wall"] for r in rows], "o-",
                   label="leader hook, fresh process (interpreter start included)")
        right.plot(xs, [r["hook"] for r in rows], "s-", label="leader hook, in process")
        if leader.get("openssl_per_csr"):
            right.plot(xs, [leader["openssl_per_csr"] * x for x in xs], "--",
                       label="openssl CLI, one x509 -req per CSR")
        if leader.get("easyrsa_per_csr"):
            right.plot(xs, [leader["easyrsa_per_csr"] * x for x in xs], ":",
                       label="easy-rsa sign-req per CSR")
        right.axhline(1.0, color="grey", lw=0.8, ls="-.", label="1 s target")
        right.set_xscale("log")
        right.set_yscale("log")
        right.set_xlabel("pending P-256 CSRs in the relation")
        right.set_ylabel("seconds")
        right.set_title("Leader: one hook signs every pending CSR")
        right.legend(fontsize=8)
        right.grid(True, which="both", alpha=0.3)
    else:
        right.text(0.5, 0.5, "leader section not run", ha="center")
    fig.tight_layout()
    fig.savefig(PNG, dpi=110)
    plt.close(fig)
    return PNG
