"""Sanity check across contenders: every contender must compute the same loss and gradient.

Each contender's first call reports its loss and the squared norm of its gradient; both are
compared with the reference's (or, without a reference, xent_fast's). Tolerances are relative:
1e-4 (loss) and 1e-3 (squared gradient norm) in float32, 1e-9 and 1e-8 in float64 — loose enough
for different summation orders, tight enough to catch a wrong kernel. float16 and bfloat16 logits:
2e-2 for both, because the peers compute in half precision and return a half-precision loss
(bfloat16 keeps 8 significant bits). Each record gets a ``check`` entry; mismatches also become
notes under the table.
"""
from __future__ import annotations

import math

TOL = {"float32": (1e-4, 1e-3), "float64": (1e-9, 1e-8),
       "float16": (2e-2, 2e-2), "bfloat16": (2e-2, 2e-2)}


def _rel(a, b):
    if a is None or b is None:
        return None
    if a == b:
        return 0.0
    if not (math.isfinite(a) and math.isfinite(b)):
        return math.inf
    return abs(a - b) / max(abs(b), 1e-300)


def sanity_notes(records) -> list:
    """Fill ``record['check']`` for every record and return notes for the mismatches."""
    groups = {}
    for rec in records:
        groups.setdefault((rec["case"], rec["mode"]), []).append(rec)
    notes = []
    for (case, mode), recs in groups.items():
        by_name = {r["contender"]: r for r in recs if r.get("loss") is not None}
        base_name = "reference" if "reference" in by_name else "xent_fast" if "xent_fast" in by_name else None
        if base_name is None:
            continue
        base = by_name[base_name]
        loss_tol, grad_tol = TOL.get(base["dtype"], TOL["float32"])
        for name, rec in by_name.items():
            loss_err, grad_err = _rel(rec["loss"], base["loss"]), _rel(rec.get("grad_sq"), base.get("grad_sq"))
            ok = (loss_err <= loss_tol and (grad_err is None or grad_err <= grad_tol)
                  and rec.get("grad_shape_ok", True))
            rec["check"] = {"against": base_name, "loss_rel_err": loss_err, "grad_sq_rel_err": grad_err,
                            "ok": ok}
            if not ok:
                notes.append(f"MISMATCH {rec['label']} {rec['case_label']} {mode}: loss {rec['loss']!r} vs "
                             f"{base_name} {base['loss']!r} (rel {loss_err:.2e}), grad rel {grad_err}, "
                             f"grad shape ok {rec.get('grad_shape_ok', True)}")
    return notes
