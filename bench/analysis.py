"""Speed-ups of xent_fast, from times measured side by side in the same run.

``vs_reference`` = reference time / xent_fast time; ``vs_best_peer`` = the faster peer's (PyTorch
or JAX) time / xent_fast time; ``vs_<peer>`` per peer. The top-level figures (table and plot) use
the chosen statistic (``--speedup-stat``: median by default, or best-of-k, which is more robust on
a busy machine); both are kept under ``median`` and ``best``. fwd+grad compares plain ``xent_fast`` (which allocates
its gradient, like every peer), not the ``out=`` variant.
"""
from __future__ import annotations


def _time(rec, stat):
    return rec.get(stat) if rec and not rec.get("error") else None


def _ratios(by_name, stat):
    xf = _time(by_name.get("xent_fast"), stat)
    out = {"vs_reference": None, "vs_best_peer": None, "best_peer": None}
    peers = {n: _time(r, stat) for n, r in by_name.items() if r.get("is_peer")}
    peers = {n: t for n, t in peers.items() if t}
    if peers:
        out["best_peer"] = min(peers, key=peers.get)
    if not xf:
        return out
    ref = _time(by_name.get("reference"), stat)
    out["vs_reference"] = ref / xf if ref else None
    for name, t in peers.items():
        out["vs_" + name] = t / xf
    if peers:
        out["vs_best_peer"] = peers[out["best_peer"]] / xf
    return out


def speedups(records, stat: str = "median") -> list:
    """One entry per (case, pass): the speed-ups of xent_fast over the reference and the peers."""
    groups = {}
    for rec in records:
        groups.setdefault((rec["case"], rec["mode"]), {})[rec["contender"]] = rec
    result = []
    for (case, mode), by_name in groups.items():
        any_rec = next(iter(by_name.values()))
        median, best = _ratios(by_name, "median_ms"), _ratios(by_name, "best_ms")
        entry = {"case": case, "case_label": any_rec["case_label"], "dtype": any_rec["dtype"], "mode": mode,
                 "stat": stat, **(best if stat == "best" else median), "median": median, "best": best}
        result.append(entry)
    return result
