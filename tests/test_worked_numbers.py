"""The worked numbers of the seed documents (docs/DESIGN.md, "Semantics and worked numbers"),
through the public API."""

import math

import numpy as np
import pytest

from _helpers import impl

SEED_PROBS = [[0.7, 0.1, 0.2], [0.1, 0.5, 0.4], [0.02, 0.9, 0.08]]
SEED_TARGETS = [0, 1, 1]
SEED_ONEHOT = [[1, 0, 0], [0, 1, 0], [0, 1, 0]]
SEED_LOSSES = [0.35667494, 0.69314718, 0.10536052]  # printed by the seed to 8 decimals
MINUS_LOG_07 = 0.35667494393873245


def test_single_sample_index_target():
    loss = impl.categorical_cross_entropy([[0.7, 0.1, 0.2]], [0])
    assert loss == pytest.approx(MINUS_LOG_07, rel=1e-15, abs=0)


def test_single_sample_onehot_target():
    loss = impl.categorical_cross_entropy([[0.7, 0.1, 0.2]], [[1, 0, 0]])
    assert loss == pytest.approx(MINUS_LOG_07, rel=1e-15, abs=0)


def test_single_sample_1d():
    # one sample without a batch axis: targets is a 0-d index or the one-hot row
    assert impl.categorical_cross_entropy([0.7, 0.1, 0.2], 0) == pytest.approx(MINUS_LOG_07, rel=1e-15)
    assert impl.categorical_cross_entropy([0.7, 0.1, 0.2], [1, 0, 0]) == pytest.approx(
        MINUS_LOG_07, rel=1e-15)


@pytest.mark.parametrize("targets", [SEED_TARGETS, SEED_ONEHOT], ids=["index", "onehot"])
def test_batch_per_sample_losses(targets):
    losses = impl.categorical_cross_entropy(SEED_PROBS, targets, reduction="none")
    assert isinstance(losses, np.ndarray) and losses.shape == (3,) and losses.dtype == np.float64
    np.testing.assert_allclose(losses, SEED_LOSSES, rtol=0, atol=5e-9)
    exact = [-math.log(0.7), -math.log(0.5), -math.log(0.9)]
    np.testing.assert_allclose(losses, exact, rtol=1e-15, atol=0)


@pytest.mark.parametrize("targets", [SEED_TARGETS, SEED_ONEHOT], ids=["index", "onehot"])
def test_batch_mean_and_sum(targets):
    exact = [-math.log(0.7), -math.log(0.5), -math.log(0.9)]
    mean = impl.categorical_cross_entropy(SEED_PROBS, targets)
    total = impl.categorical_cross_entropy(SEED_PROBS, targets, reduction="sum")
    assert mean == pytest.approx(math.fsum(exact) / 3, rel=1e-15)
    assert total == pytest.approx(math.fsum(exact), rel=1e-15)
    assert mean == pytest.approx(np.mean(SEED_LOSSES), abs=1e-8)


def test_seed_formula_by_hand_matches():
    # the seeds' own expression: -np.log(np.clip(p[range(n), y], eps, 1 - eps)).mean()
    p = np.array(SEED_PROBS)
    y = np.array(SEED_TARGETS)
    eps = 1e-7
    by_hand = -np.log(np.clip(p[range(len(p)), y], eps, 1 - eps)).mean()
    assert impl.categorical_cross_entropy(p, y, eps=eps) == pytest.approx(by_hand, rel=1e-15)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_softmax_seed_row(dtype):
    x = np.array([[-9, 5, 10]], dtype=dtype)
    p = impl.softmax(x)
    assert p.dtype == dtype and p.shape == (1, 3)
    # the numbers printed by the seed (5 significant digits)
    np.testing.assert_allclose(p, [[5.5653e-09, 6.6929e-03, 9.9331e-01]], rtol=1e-4)
    # and the exact values
    e = [math.exp(v - 10) for v in (-9, 5, 10)]
    s = math.fsum(e)
    exact = [v / s for v in e]
    np.testing.assert_allclose(p, [exact], rtol=1e-14 if dtype == np.float64 else 2e-6)


def test_softmax_seed_row_list_input():
    p = impl.softmax([[-9, 5, 10]])  # ints, as a list: converted to float64
    assert p.dtype == np.float64
    np.testing.assert_allclose(p, [[5.5653e-09, 6.6929e-03, 9.9331e-01]], rtol=1e-4)


def test_zero_probability_gives_minus_log_eps():
    eps = 1e-15
    assert -math.log(eps) == 34.538776394910684
    loss = impl.categorical_cross_entropy([[0.0, 0.6, 0.4]], [0], eps=eps)
    assert loss == pytest.approx(34.538776394910684, rel=1e-14)
    loss = impl.categorical_cross_entropy([[0.0, 0.6, 0.4]], [[1, 0, 0]], eps=eps)
    assert loss == pytest.approx(34.538776394910684, rel=1e-14)


def test_zero_probability_from_masked_logit_gives_minus_log_eps():
    eps = 1e-15
    loss = impl.cross_entropy([[-np.inf, 1.0, 2.0]], [0], eps=eps)
    assert loss == pytest.approx(34.538776394910684, rel=1e-14)
    loss = impl.cross_entropy([[-np.inf, 1.0, 2.0]], [0])  # eps = 0: no clipping
    assert loss == np.inf


@pytest.mark.parametrize("targets", [SEED_TARGETS, SEED_ONEHOT], ids=["index", "onehot"])
def test_cross_entropy_of_log_probs_gives_the_same_values(targets):
    logits = np.log(np.array(SEED_PROBS))
    losses = impl.cross_entropy(logits, targets, reduction="none")
    np.testing.assert_allclose(losses, SEED_LOSSES, rtol=0, atol=5e-9)
    exact = [-math.log(0.7), -math.log(0.5), -math.log(0.9)]
    np.testing.assert_allclose(losses, exact, rtol=1e-13)
    # shifting every logit of a row by a constant changes nothing (log-softmax is shift invariant)
    shifted = impl.cross_entropy(logits + np.array([[3.0], [-50.0], [1000.0]]), targets,
                                 reduction="none")
    np.testing.assert_allclose(shifted, exact, rtol=1e-12)


def test_nll_loss_of_log_probs_is_the_seed_formula():
    logp = np.log(np.array(SEED_PROBS))
    losses = impl.nll_loss(logp, SEED_TARGETS, reduction="none")
    # nll_loss is -log_probs[i, t_i]: exact, no arithmetic besides the sign
    np.testing.assert_array_equal(losses, -logp[[0, 1, 2], SEED_TARGETS])
    np.testing.assert_allclose(losses, SEED_LOSSES, rtol=0, atol=5e-9)


def test_log_softmax_then_nll_is_cross_entropy():
    # PyTorch's log_softmax + nll_loss = cross_entropy, on the seed's logits
    x = np.array([[-9.0, 5.0, 10.0], [1.0, 2.0, 3.0]])
    t = np.array([2, 0])
    lsm = impl.log_softmax(x)
    a = impl.nll_loss(lsm, t, reduction="none")
    b = impl.cross_entropy(x, t, reduction="none")
    np.testing.assert_allclose(a, b, rtol=1e-14)
    exact = [math.log1p(math.exp(-19.0) + math.exp(-5.0)),  # lse - 10
             math.log(math.fsum([1.0, math.e, math.exp(2.0)]))]  # lse - 1
    np.testing.assert_allclose(b, exact, rtol=1e-12)  # docs/DESIGN.md, "Tolerances"


def test_binary_seed_formula():
    # -[y log p + (1 - y) log(1 - p)]
    p = [0.9, 0.75, 0.5, 0.2]
    y = [1.0, 1.0, 0.0, 0.0]
    losses = impl.binary_cross_entropy(p, y, reduction="none")
    exact = [-math.log(0.9), -math.log(0.75), -math.log(0.5), -math.log(0.8)]
    np.testing.assert_allclose(losses, exact, rtol=4e-15)
    np.testing.assert_allclose(losses[:3], [0.10536051565782628, 0.2876820724517809,
                                            0.6931471805599453], rtol=4e-15)


def test_documented_defaults():
    # categorical_cross_entropy and binary_cross_entropy clip with eps=1e-7 by default,
    # cross_entropy does not clip (eps=0); ignore_index=-100; reduction="mean"
    assert impl.categorical_cross_entropy([[0.0, 1.0]], [0]) == pytest.approx(-math.log(1e-7),
                                                                             rel=1e-12)
    assert impl.binary_cross_entropy([0.0], [1.0]) == pytest.approx(-math.log(1e-7), rel=1e-12)
    assert impl.cross_entropy([[-np.inf, 0.0]], [0]) == np.inf
    losses = impl.cross_entropy([[1.0, 2.0], [3.0, 1.0]], [-100, 1], reduction="none")
    assert losses[0] == 0
    assert impl.cross_entropy([[1.0, 2.0], [3.0, 1.0]], [-100, 1]) == losses[1]
