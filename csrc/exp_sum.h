/* exp_sum.h - a row's exp-sum as its exp(0) terms counted apart and the rest (docs/DESIGN.md,
 * section 4): scalar helpers shared by the kernels (kernels.inc) and by the combine and finish of
 * vocabulary-shard partials (shard.c).
 */
#ifndef XENT_EXP_SUM_H
#define XENT_EXP_SUM_H

#include <math.h>

/* A row's sum of exp(x_j - max) as the number of its exp(0) = 1 terms and the sum of the others.
 * Kept apart, log(sum) = log1p(rest) and sum - 1 = rest keep a confident row's tiny loss and
 * gradient (1 + rest in double would round them to a multiple of 2^-52). */
typedef struct { double ones, rest; } exp_sum;

static inline double exp_sum_total(exp_sum s) { return s.ones + s.rest; }

static inline double exp_sum_log(exp_sum s)
{
    return s.ones == 1.0 ? log1p(s.rest) : log(s.ones + s.rest);
}

/* sum - e_t for the target's own term e_t; with the target at the max (e_t = 1 exactly) it is the
 * other ones plus the rest. */
static inline double exp_sum_without(exp_sum s, int target_at_max, double e_t)
{
    return target_at_max ? (s.ones - 1.0) + s.rest : (s.ones + s.rest) - e_t;
}

#endif
