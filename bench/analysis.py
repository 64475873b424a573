"""Speed-ups of xent_fast, from times measured side by side in the same run.

``vs_reference`` = reference time / xent_fast time; ``vs_best_peer`` = the faster peer's (PyTorch
or JAX) time / xent_fast time; ``vs_<peer>`` per peer. The top-level figures (table and plot) use
the chosen statistic (``--speedup-stat``: median by default, or best-of-k, which is more robust on
a busy machine); both are kept under ``median`` and ``best``. fwd+grad compares plain ``xent_fast`` (which allocates
its gradient, like every peer), not the ``out=`` variant.

:func:`relative` compares the half-precision and loss-option rows with the plain float32 rows they
derive from, contender by contender.
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


# Goals of issue 11 for xent_fast at 32000+ classes: options cost (time / plain time) in the
# forward pass, half-precision speed-up (float32 time / half time) in both passes.
GOAL_CLASSES = 32000
SOFTCAP_MAX, OTHER_OPTIONS_MAX, HALF_MIN = 1.5, 1.1, 1.6


def _goal(rec, kind):
    """``(text, bound, is_upper)`` of the issue's goal for this row, or None."""
    if rec["shape"][rec["axis"]] < GOAL_CLASSES:
        return None
    if kind == "half":
        return (f">= {HALF_MIN}x", HALF_MIN, False)
    if rec["mode"] != "fwd":
        return None
    bound = SOFTCAP_MAX if "softcap" in rec["options"] else OTHER_OPTIONS_MAX
    return (f"<= {bound}x", bound, True)


def relative(records, stat: str = "median") -> list:
    """Rows with a ``base_case`` against that row, per contender, from the same run.

    Options rows (kind ``options``): ``ratio`` = time / the plain row's time (same shape, dtype,
    pass): the cost of the options. Half-precision rows (kind ``half``): ``ratio`` = the float32
    row's time / the half row's time: the speed-up of reading half the bytes. ``goal`` is the issue's
    bound for xent_fast where one applies, with ``met`` judged on ``stat`` (noisy, like any timing).
    """
    key = "best_ms" if stat == "best" else "median_ms"
    by_key = {(r["case"], r["mode"], r["contender"]): r for r in records}
    out, entries = [], {}
    for rec in records:
        if not rec.get("base_case"):
            continue
        base = by_key.get((rec["base_case"], rec["mode"], rec["contender"]))
        kind = "options" if rec.get("options") else "half"
        entry = entries.get((rec["case"], rec["mode"]))
        if entry is None:
            entry = entries[(rec["case"], rec["mode"])] = {
                "case": rec["case"], "case_label": rec["case_label"], "dtype": rec["dtype"],
                "mode": rec["mode"], "base_case": rec["base_case"], "kind": kind, "stat": stat,
                "ratios": {}, "goal": None}
            out.append(entry)
        t, tb = _time(rec, key), _time(base, key)
        ratio = None
        if t and tb:
            ratio = t / tb if kind == "options" else tb / t
        entry["ratios"][rec["contender"]] = ratio
        goal = _goal(rec, kind)
        if rec["contender"] == "xent_fast" and goal:
            text, bound, upper = goal
            entry["goal"] = {"text": text, "met": None if ratio is None else
                             (ratio <= bound if upper else ratio >= bound)}
    return out
