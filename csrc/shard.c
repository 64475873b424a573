/* shard.c - the combine and the finish of vocabulary-shard partials (xent.h; docs/DESIGN.md,
 * section 13): a few doubles per row in plain loops, compiled once rather than per instruction set
 * (so every path gives the same bits), in row order (so the result does not depend on threads). */
#include <math.h>
#include <stdint.h>

#include "exp_sum.h"
#include "xent.h"

void xent_partials_combine(int64_t n_rows, int n_parts, const double *const *parts, double *out)
{
    for (int64_t r = 0; r < n_rows; r++) {
        const int64_t o = r * XENT_N_PARTIALS;
        /* The largest max (NaN if one is NaN) ... */
        double m = parts[0][o + XENT_P_MAX];
        for (int k = 1; k < n_parts; k++) {
            const double mk = parts[k][o + XENT_P_MAX];
            if (mk > m || mk != mk) m = mk;
        }
        /* ... each exp-sum rescaled to it, as row_max_sum folds the stretches of a row: a part
         * with that max as it is, its exp(0) terms still counted apart (so -inf and +inf maxima
         * need no exp), the others' whole sums times exp(m_k - m) < 1 into the rest; each D
         * moved to that max, D_k + B_k (m_k - m), the term left out without coefficients or at
         * the max (no 0 * inf, no inf - inf).  The other fields are plain sums. */
        double sum[XENT_N_PARTIALS] = {0.0};
        for (int k = 0; k < n_parts; k++) {
            const double *pk = parts[k] + o;
            const double mk = pk[XENT_P_MAX], bk = pk[XENT_P_COEF];
            if (mk == m) {
                sum[XENT_P_ONES] += pk[XENT_P_ONES];
                sum[XENT_P_REST] += pk[XENT_P_REST];
            } else {
                sum[XENT_P_REST] += (pk[XENT_P_ONES] + pk[XENT_P_REST]) * exp(mk - m);
            }
            sum[XENT_P_DOT] += bk != 0.0 && mk != m ? pk[XENT_P_DOT] + bk * (mk - m)
                                                    : pk[XENT_P_DOT];
            for (int f = XENT_P_COEF; f < XENT_N_PARTIALS; f++) sum[f] += pk[f];
        }
        sum[XENT_P_MAX] = m;
        for (int f = 0; f < XENT_N_PARTIALS; f++) out[o + f] = sum[f];
    }
}

/* log of the exp-sum as the kernels take it (log1p(rest) for one exp(0) term): -inf for a row of
 * -inf (log(0)), +inf with a +inf entry, NaN with a NaN. */
static double row_log_sum(const double *p)
{
    const exp_sum s = {p[XENT_P_ONES], p[XENT_P_REST]};
    return exp_sum_log(s);
}

void xent_partials_lse(int64_t n_rows, const double *partials, double *lse)
{
    for (int64_t r = 0; r < n_rows; r++) {
        const double *p = partials + r * XENT_N_PARTIALS;
        lse[r] = p[XENT_P_MAX] + row_log_sum(p);
    }
}

double xent_partials_denominator(int64_t n_rows, const double *partials,
                                 const double *sample_weight)
{
    double total = 0.0;
    for (int64_t r = 0; r < n_rows; r++) {
        const double w = partials[r * XENT_N_PARTIALS + XENT_P_TARGET_WEIGHT];
        if (w != 0.0) total += (sample_weight ? sample_weight[r] : 1.0) * w;
    }
    return total;
}

double xent_partials_finish(int64_t n_rows, const double *partials, double z_loss,
                            const double *sample_weight, xent_reduction reduction,
                            double denominator, double *loss_rows)
{
    double total = 0.0;
    for (int64_t r = 0; r < n_rows; r++) {
        const double *p = partials + r * XENT_N_PARTIALS;
        double loss = 0.0; /* an ignored row's, whatever its logits */
        if (p[XENT_P_COUNTED] != 0.0) {
            const double log_sum = row_log_sum(p), lse = p[XENT_P_MAX] + log_sum;
            const double coef = p[XENT_P_COEF];
            /* -sum_j a_j (z_j - lse) = B log_sum - D with D relative to the max: a confident
             * row's loss is B log1p(rest), as exact as the unsharded kernel's.  Without
             * coefficients no term, even for log_sum = -inf.  (0 - D), not -D: +0 for a row
             * without terms, as xent_cross_entropy. */
            loss = (coef != 0.0 ? coef * log_sum : 0.0) - p[XENT_P_DOT];
            if (z_loss != 0.0) loss += z_loss * lse * lse;
            if (sample_weight) loss *= sample_weight[r];
        }
        if (loss_rows) loss_rows[r] = loss;
        total += loss;
    }
    if (reduction == XENT_REDUCE_SUM) return total;
    if (reduction == XENT_REDUCE_MEAN) return denominator != 0.0 ? total / denominator : NAN;
    return NAN;
}
