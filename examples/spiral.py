"""Train a small NumPy network on spiral data with xent_fast.CrossEntropyLoss as the loss.

The classic from-scratch setup (CS231n, "Neural Networks from Scratch"): three interleaved spirals
in the plane, a 2 -> 64 (ReLU) -> 3 network with hand-written forward and backward passes in
NumPy, full-batch Adam.  The only line that differs from those notebooks is the loss: the
softmax, the log loss and its gradient are one fused xent_fast call each way, and the gradient is
written over the logits array (no extra N x C memory).

Run it:  python examples/spiral.py [--epochs 1000] [--seed 0]
"""
import argparse
import time

import numpy as np

import xent_fast


def spiral_data(points_per_class=100, classes=3, seed=0):
    """The CS231n spiral: `classes` arms of `points_per_class` points each, radius 0 -> 1.

    Returns X of shape (points_per_class * classes, 2), float64, and integer labels y.
    """
    rng = np.random.default_rng(seed)
    X = np.zeros((points_per_class * classes, 2))
    y = np.zeros(points_per_class * classes, dtype=np.int64)
    for k in range(classes):
        rows = slice(points_per_class * k, points_per_class * (k + 1))
        radius = np.linspace(0.0, 1.0, points_per_class)
        theta = (np.linspace(k * 4.0, (k + 1) * 4.0, points_per_class)
                 + rng.standard_normal(points_per_class) * 0.2)
        X[rows] = np.c_[radius * np.sin(theta), radius * np.cos(theta)]
        y[rows] = k
    return X, y


class Adam:
    """Adam over a list of parameter arrays, updated in place."""

    def __init__(self, params, lr=0.02, beta1=0.9, beta2=0.999, eps=1e-8):
        self.params, self.lr, self.beta1, self.beta2, self.eps = params, lr, beta1, beta2, eps
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.t = 0

    def step(self, grads):
        self.t += 1
        c1, c2 = 1.0 - self.beta1 ** self.t, 1.0 - self.beta2 ** self.t
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            m *= self.beta1
            m += (1.0 - self.beta1) * g
            v *= self.beta2
            v += (1.0 - self.beta2) * g * g
            p -= self.lr * (m / c1) / (np.sqrt(v / c2) + self.eps)


def main(epochs=1000, seed=0, hidden=64, lr=0.02, points_per_class=100, print_every=None,
         verbose=True):
    """Train the network and report how it went.

    Returns a dict: 'loss' (the mean loss before each epoch's update, epochs + 1 values, the last
    after training), 'accuracy' (final training accuracy), 'test_accuracy' (on a fresh spiral),
    'epochs' and 'seconds' (training time).  Note that the three arms share their first point,
    the origin, so at most 298 of 300 training points can be classified right.
    """
    X, y = spiral_data(points_per_class, 3, seed)
    rng = np.random.default_rng(seed + 1)
    W1 = rng.standard_normal((2, hidden)) * np.sqrt(2.0 / 2)   # He initialisation
    b1 = np.zeros(hidden)
    W2 = rng.standard_normal((hidden, 3)) * np.sqrt(1.0 / hidden)
    b2 = np.zeros(3)
    params = [W1, b1, W2, b2]
    opt = Adam(params, lr=lr)
    loss_fn = xent_fast.CrossEntropyLoss()

    print_every = print_every or max(1, epochs // 10)
    history, accuracy = [], None
    start = time.perf_counter()
    for epoch in range(epochs + 1):
        # forward
        h_pre = X @ W1 + b1
        h = np.maximum(h_pre, 0.0)
        logits = h @ W2 + b2
        loss = float(loss_fn(logits, y))           # fused log-softmax + NLL, mean over the batch
        history.append(loss)
        accuracy = float(np.mean(np.argmax(logits, axis=1) == y))
        if verbose and epoch % print_every == 0:
            print(f"epoch {epoch:5d}  loss {loss:.4f}  accuracy {accuracy:.3f}")
        if epoch == epochs:
            break  # the last pass only measures
        # backward: d(mean loss)/d(logits) = (softmax - onehot) / N, written over `logits`
        dlogits = loss_fn.backward(inplace=True)
        dW2 = h.T @ dlogits
        db2 = dlogits.sum(axis=0)
        dh = dlogits @ W2.T
        dh[h_pre <= 0.0] = 0.0
        dW1 = X.T @ dh
        db1 = dh.sum(axis=0)
        opt.step([dW1, db1, dW2, db2])
    seconds = time.perf_counter() - start
    # a fresh spiral (another noise draw) the network has not seen
    X_test, y_test = spiral_data(points_per_class, 3, seed + 1000)
    test_logits = np.maximum(X_test @ W1 + b1, 0.0) @ W2 + b2
    test_accuracy = float(np.mean(np.argmax(test_logits, axis=1) == y_test))
    if verbose:
        print(f"final loss {history[-1]:.4f} (from {history[0]:.4f}); accuracy: training "
              f"{accuracy:.3f}, fresh spiral {test_accuracy:.3f}; {epochs} epochs in {seconds:.2f} s")
    return {"loss": history, "accuracy": accuracy, "test_accuracy": test_accuracy,
            "epochs": epochs, "seconds": seconds}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    main(epochs=args.epochs, seed=args.seed)
