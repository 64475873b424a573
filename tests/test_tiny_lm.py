"""examples/tiny_lm.py (issue 12): the Zipfian bigram chain's entropy is the exact conditional
entropy of the token chain, its sampler draws from it, and a short run of the model trains (the
held-out loss falls from log V toward that entropy)."""


import numpy as np
import pytest

from _helpers import load_example

pytestmark = pytest.mark.compiled_only  # the example trains with xent_fast's kernels


@pytest.fixture(scope="module")
def tiny_lm():
    yield from load_example("tiny_lm")


def test_entropy_is_the_token_chains_conditional_entropy(tiny_lm):
    chain = tiny_lm.ZipfBigram(vocab=60, clusters=3, seed=1)
    # the full V x V token chain: row i is cluster c(i)'s Zipf law over its own ranking
    p = np.zeros((60, 60))
    for i in range(60):
        k = chain.cluster[i]
        p[i, chain.ranking[k]] = chain.rank_probs[k]
    pi = np.full(60, 1 / 60)
    for _ in range(5000):
        pi = pi @ p
    h = -np.sum(pi[:, None] * p * np.log(p))
    assert chain.entropy() == pytest.approx(h, rel=1e-10)


def test_sampler_draws_from_the_chain(tiny_lm):
    chain = tiny_lm.ZipfBigram(vocab=40, clusters=2, seed=2)
    cur = np.repeat(np.flatnonzero(chain.cluster == 0)[:1], 200_000)
    counts = np.bincount(chain.step(cur), minlength=40) / cur.size
    want = np.zeros(40)
    want[chain.ranking[0]] = chain.rank_probs[0]
    assert np.abs(counts - want).max() < 0.005


def test_example_trains(tiny_lm, capsys):
    result = tiny_lm.main(steps=40, vocab=2000, dim=16, clusters=4, batch=128, lr=0.05,
                          eval_tokens=2048, verbose=True)
    before, after = result["eval"]
    assert before == pytest.approx(np.log(2000), abs=0.05)  # an untrained model is near uniform
    assert result["entropy"] < after < before - 2.0, result["eval"]
    assert len(result["loss"]) == 40
    printed = capsys.readouterr().out
    assert "entropy" in printed and "held-out" in printed
