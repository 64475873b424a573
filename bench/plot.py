"""PNG plot of xent_fast's speed-ups (``--plot``), drawn with matplotlib when it is installed.

The bars are best-of-k time ratios, which a busy machine disturbs least (a burst of load inflates
a median, rarely the best of k); the median ratio of each bar is drawn as a black mark, so a bar
whose mark sits far from its top is a noisy measurement. The 2x line is the target against the
peers and is drawn only when a peer is shown.
"""
from __future__ import annotations

import os

from .cases import dtype_short

SERIES = (("vs_reference", "vs NumPy reference", "#7f7f7f"), ("vs_torch", "vs PyTorch", "#ee4c2c"),
          ("vs_jax", "vs JAX", "#4285f4"))


def plot_speedups(doc, path: str):
    """Bar chart of the speed-ups, one panel per pass (log scale); returns a note or None."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        return "matplotlib not installed: no plot (pip install matplotlib, or the [bench] extra)"
    modes = list(dict.fromkeys(s["mode"] for s in doc.get("speedups", [])))
    if not modes:
        return "nothing to plot"
    per_panel = max(sum(s["mode"] == m for s in doc["speedups"]) for m in modes)
    fig, axes = plt.subplots(1, len(modes), figsize=(max(6.5, 0.5 * per_panel) * len(modes), 5.2),
                             squeeze=False)
    legend = {}
    for ax, mode in zip(axes[0], modes):
        entries = [s for s in doc["speedups"] if s["mode"] == mode]
        best = [s.get("best") or {} for s in entries]
        median = [s.get("median") or {} for s in entries]
        labels = [s["case_label"] + ("" if s["dtype"] == "float32" else " " + dtype_short(s["dtype"]))
                  for s in entries]
        series = [(k, lab, col) for k, lab, col in SERIES if any(b.get(k) for b in best)]
        width = 0.8 / max(1, len(series))
        top = 1.0
        for i, (key, label, color) in enumerate(series):
            xs = [j + (i - (len(series) - 1) / 2) * width for j in range(len(entries))]
            ys = [b.get(key) or 0 for b in best]
            legend[label] = ax.bar(xs, ys, width, color=color)
            for x, y in zip(xs, ys):
                if y:
                    ax.annotate(f"{y:.1f}", (x, y), xytext=(0, 3), textcoords="offset points",
                                ha="center", va="bottom", fontsize=7)
            dots = [(x, m.get(key)) for x, m in zip(xs, median) if m.get(key)]
            if dots:
                legend["median ratio"] = ax.plot(*zip(*dots), "_", color="black", markersize=9,
                                                 markeredgewidth=1.5)[0]
            top = max([top] + ys + [y for _, y in dots])
        ax.set_yscale("log")
        ax.set_ylim(top=top * 1.8)  # room for the labels above the tallest bar
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda y, _: f"{y:g}"))
        ax.axhline(1, color="black", linewidth=0.8)
        if any(key != "vs_reference" for key, _, _ in series):
            legend["2x (target vs peers)"] = ax.axhline(2, color="black", linewidth=0.8,
                                                        linestyle="--")
        ax.set_xticks(range(len(entries)))
        ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel("speed-up of xent_fast (best-of-k time ratio)")
        ax.set_title(f"cross_entropy {mode}")
    order = [lab for _, lab, _ in SERIES if lab in legend] + [k for k in legend if k not in
                                                              [lab for _, lab, _ in SERIES]]
    if order:  # nothing to label when no ratio could be taken (no peer, no reference)
        fig.legend([legend[k] for k in order], order, loc="lower center", ncol=len(order),
                   fontsize=8, frameon=False)
    meta = doc["meta"]
    fig.suptitle(f"xent_fast speed-ups, {meta['threads']} threads, {meta['cpu']}", fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 1))  # the legend's row below the panels
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return None
