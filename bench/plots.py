"""The benchmark plot: hooks to settle vs N (model section, N up to 100), the simulator's
settle time of a tls-demo deploy (sim section) with the model section's settle times beside
it, and the leader's sign time vs number of CSRs
(leader section), drawn from results/<section>.json into results/performance.png. Only what
was measured is plotted; an N not measured is named on the plot."""
from __future__ import annotations

import os
from typing import Optional

from benchlib import RESULTS, read_data

PNG = os.path.join(RESULTS, "performance.png")
MODEL_NS = (1, 3, 10, 30, 100)  # bench/model_bench.py Config.ns
SIMS = (("old", "old simulator (one process per tool call)", "o"),
        ("new", "new simulator, hooks exec'd", "s"),
        ("fast", "new simulator, hooks forked from the zygote", "^"))


MODEL_CHARMS = (("tls-only", "layer:tls charm (model section), forked", "D"),
                ("baseline", "no layer:tls (model section), forked", "x"))


def _model_walls(ax, model) -> None:
    """The model section's settle times (seed 1), to the largest N it ran (100 on request)."""
    runs = [r for r in (model or {}).get("runs", []) if r.get("seed") == 1]
    for charm, text, marker in MODEL_CHARMS:
        pts = sorted((r["n"], r["seconds"]) for r in runs if r["charm"] == charm)
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker + ":", label=text)
            x, y = pts[-1]
            ax.annotate(f"{y:.0f} s", (x, y), textcoords="offset points", xytext=(-38, 3),
                        fontsize=7)


def _sim_panel(ax, sim, model=None) -> None:
    deploys = (sim or {}).get("deploys") or []
    if not deploys:
        ax.text(0.5, 0.5, "sim section not run", ha="center")
    for label, text, marker in SIMS:
        pts = sorted((d["n"], d[label]["seconds"]) for d in deploys if label in d)
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker + "-", label=text)
            for x, y in pts:
                ax.annotate(f"{y:.0f} s", (x, y), textcoords="offset points", xytext=(5, 3),
                            fontsize=7)
    _model_walls(ax, model)
    ax.axhline(600, color="grey", lw=0.8, ls="-.", label="10 min target (30 units)")
    measured = sorted({d["n"] for d in deploys})
    if measured:
        ax.text(0.02, 0.97, "tls-demo measured: N = " + ", ".join(map(str, measured))
                + " (old and exec'd: N = 10 only)",
                transform=ax.transAxes, ha="left", va="top", fontsize=7, color="dimgrey")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(MODEL_NS)
    ax.set_xticklabels([str(n) for n in MODEL_NS])
    ax.set_xlim(0.8, 130)
    ax.set_ylim(0.2, 5000)
    ax.set_xlabel("units N (tls-demo unless dotted, seed 1)")
    ax.set_ylabel("seconds from deploy to settled")
    ax.set_title("Simulator: settle time (one run each)")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(True, which="both", alpha=0.3)


def draw() -> Optional[str]:
    model, leader, sim = read_data("model"), read_data("leader"), read_data("sim")
    if not model and not leader and not sim:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(16, 4.4))
    _sim_panel(middle, sim, model)
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
        left.set_xticks(MODEL_NS)
        left.set_xticklabels([str(n) for n in MODEL_NS])
        left.set_xlim(0.8, 130)
        missing = [n for n in MODEL_NS if n not in ns]
        if missing:
            left.text(0.98, 0.03, "not measured: N = " + ", ".join(map(str, missing)),
                      transform=left.transAxes, ha="right", fontsize=8, color="dimgrey")
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
