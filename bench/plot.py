"""PNG plot of xent_fast's speed-ups (``--plot``), drawn with matplotlib when it is installed."""
from __future__ import annotations

import os

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
    fig, axes = plt.subplots(1, len(modes), figsize=(6.5 * len(modes), 4.8), squeeze=False)
    for ax, mode in zip(axes[0], modes):
        entries = [s for s in doc["speedups"] if s["mode"] == mode]
        labels = [s["case_label"] + ("\nf64" if s["dtype"] == "float64" else "") for s in entries]
        series = [(k, lab, col) for k, lab, col in SERIES if any(s.get(k) for s in entries)]
        width = 0.8 / max(1, len(series))
        for i, (key, label, color) in enumerate(series):
            xs = [j + (i - (len(series) - 1) / 2) * width for j in range(len(entries))]
            ys = [s.get(key) or 0 for s in entries]
            bars = ax.bar(xs, ys, width, label=label, color=color)
            for bar, y in zip(bars, ys):
                if y:
                    ax.annotate(f"{y:.1f}", (bar.get_x() + bar.get_width() / 2, y), ha="center",
                                va="bottom", fontsize=7)
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda y, _: f"{y:g}"))
        ax.axhline(1, color="black", linewidth=0.8)
        ax.axhline(2, color="black", linewidth=0.8, linestyle="--", label="2x")
        ax.set_xticks(range(len(entries)))
        ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel(f"speed-up of xent_fast ({entries[0].get('stat', 'median')} time ratio)")
        ax.set_title(f"cross_entropy {mode}")
        ax.legend(fontsize=8)
    meta = doc["meta"]
    fig.suptitle(f"xent_fast speed-ups, {meta['threads']} threads, {meta['cpu']}", fontsize=10)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return None
