"""examples/spiral.py (issue 3): a NumPy network trained with xent_fast.CrossEntropyLoss learns the
spiral — the loss falls clearly and the accuracy is high — in well under the time budget."""

import time

import pytest

from _helpers import load_example

pytestmark = pytest.mark.compiled_only  # the example trains with xent_fast's kernels


@pytest.fixture(scope="module")
def spiral():
    yield from load_example("spiral")


def test_spiral_data_is_the_classic_spiral(spiral):
    X, y = spiral.spiral_data(50, 3, seed=0)
    assert X.shape == (150, 2) and y.shape == (150,)
    assert sorted(set(y.tolist())) == [0, 1, 2]
    X2, y2 = spiral.spiral_data(50, 3, seed=0)
    assert (X == X2).all() and (y == y2).all()  # fixed seed -> same data


@pytest.mark.parametrize("seed", [0, 1])
def test_example_trains(spiral, seed, capsys):
    start = time.perf_counter()
    result = spiral.main(epochs=300, seed=seed, verbose=True)
    elapsed = time.perf_counter() - start
    losses = result["loss"]
    assert len(losses) == 301
    assert losses[-1] < 0.3 * losses[0], losses[::30]
    assert losses[-1] < 0.2
    assert result["accuracy"] >= 0.9 and result["test_accuracy"] >= 0.9, result
    assert elapsed < 10.0
    printed = capsys.readouterr().out
    assert "epoch     0" in printed and "accuracy" in printed
