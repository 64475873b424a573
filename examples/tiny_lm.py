"""Train a tiny next-token model in plain NumPy with a 32000-token vocabulary, through
xent_fast.LinearCrossEntropyLoss: the (tokens x vocabulary) logits are never held whole.

The data come from a known random process, so the best possible loss is known exactly: a Zipfian
bigram chain.  Every token belongs to one of K clusters; after a token of cluster k the next
token is drawn from a Zipf law of exponent s_k over a ranking of the whole vocabulary that is
cluster k's own (a random permutation).  The lowest expected loss of any next-token model is the
chain's conditional entropy

    H = sum_k pi_k * H(Zipf(s_k, V)),

with pi the stationary distribution of the clusters (the current token's cluster), computed
exactly from the K x K cluster transition matrix.  The model: an embedding E (V, D) of the
current token, then the output layer (W (V, D), b (V,)) and cross-entropy, fused:

    loss, dh, dW, db = loss_fn.forward_backward(E[cur], W, next, b)

with Adam on E, W, b (learning rate decayed to a tenth along a cosine).  Every batch is fresh from the chain (B chains advanced one token per
step), so the training loss estimates the expected loss and falls toward H.

Run it:  python examples/tiny_lm.py [--steps 300] [--vocab 32000] [--dim 32] [--batch 256]
(about a minute on two cores; --steps 20 --vocab 2000 for a quick look)
"""
import argparse
import time

import numpy as np

import xent_fast


class ZipfBigram:
    """The chain: cluster of each token, each cluster's ranking and exponent, and its entropy."""

    def __init__(self, vocab, clusters, seed=0):
        rng = np.random.default_rng(seed)
        self.vocab, self.clusters = vocab, clusters
        self.cluster = rng.integers(0, clusters, vocab)
        self.exponent = np.linspace(1.4, 2.2, clusters)
        self.ranking = np.stack([rng.permutation(vocab) for _ in range(clusters)])
        ranks = np.arange(1, vocab + 1, dtype=np.float64)
        p = ranks[None, :] ** -self.exponent[:, None]
        p /= p.sum(axis=1, keepdims=True)
        self.rank_probs = p                          # (K, V): P(rank r | cluster k)
        self.cdf = np.cumsum(p, axis=1)
        self.cdf[:, -1] = 1.0
        self.rng = rng

    def entropy(self):
        """The conditional entropy H(next | current) in nats, exactly (float64)."""
        p = self.rank_probs
        h_k = -np.sum(p * np.log(p), axis=1)
        # M[k, k'] = P(next token in cluster k' | current in cluster k)
        m = np.zeros((self.clusters, self.clusters))
        for k in range(self.clusters):
            np.add.at(m[k], self.cluster[self.ranking[k]], p[k])
        # the stationary pi = pi M: the eigenvector of M.T for eigenvalue 1
        vals, vecs = np.linalg.eig(m.T)
        pi = np.real(vecs[:, np.argmin(np.abs(vals - 1.0))])
        pi /= pi.sum()
        return float(pi @ h_k)

    def step(self, current):
        """The next token of every chain."""
        nxt = np.empty_like(current)
        u = self.rng.random(current.shape)
        c = self.cluster[current]
        for k in range(self.clusters):
            sel = c == k
            r = np.searchsorted(self.cdf[k], u[sel], side="right")
            nxt[sel] = self.ranking[k, np.minimum(r, self.vocab - 1)]
        return nxt


class Adam:
    """Adam over a list of parameter arrays, updated in place."""

    def __init__(self, params, lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8):
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
            p -= (self.lr / c1) * m / (np.sqrt(v / c2) + self.eps)


def main(steps=300, vocab=32000, dim=32, clusters=16, batch=256, lr=0.03, seed=0,
         eval_tokens=4096, verbose=True):
    """Train; return {"loss": per-step losses, "entropy": H, "eval": (before, after), ...}.

    "eval" is the loss on `eval_tokens` fresh tokens from the chain before and after training
    (forward only: xent_fast.linear_cross_entropy).
    """
    t0 = time.perf_counter()
    chain = ZipfBigram(vocab, clusters, seed)
    entropy = chain.entropy()
    rng = np.random.default_rng(seed + 1)
    E = (rng.standard_normal((vocab, dim)) / np.sqrt(dim)).astype(np.float32)
    W = (rng.standard_normal((vocab, dim)) * 0.01).astype(np.float32)
    b = np.zeros(vocab, np.float32)
    opt = Adam([E, W, b], lr=lr)
    loss_fn = xent_fast.LinearCrossEntropyLoss()
    dE = np.zeros_like(E)

    current = rng.integers(0, vocab, batch)
    held_out = rng.integers(0, vocab, eval_tokens)
    for _ in range(5):  # burn-in: each step mixes the chains to the stationary law
        current, held_out = chain.step(current), chain.step(held_out)
    held_out_next = chain.step(held_out)

    def evaluate():
        return float(xent_fast.linear_cross_entropy(E[held_out], W, held_out_next, linear_bias=b))

    before = evaluate()
    if verbose:
        print(f"vocabulary {vocab}, {clusters} clusters, model dim {dim}, batch {batch}; "
              f"uniform guess log(V) = {np.log(vocab):.3f} nats, process entropy H = "
              f"{entropy:.3f} nats")
    losses = []
    for step in range(steps):
        nxt = chain.step(current)
        loss, dh, dW, db = loss_fn.forward_backward(E[current], W, nxt, b)
        dE.fill(0.0)
        np.add.at(dE, current, dh)
        opt.lr = lr * (0.55 + 0.45 * np.cos(np.pi * step / steps))  # cosine decay to 10%
        opt.step([dE, dW, db])
        losses.append(float(loss))
        current = nxt
        if verbose and (step % max(1, steps // 10) == 0 or step == steps - 1):
            recent = np.mean(losses[-20:])
            print(f"step {step:5d}  loss {loss:7.4f}  (last 20: {recent:7.4f}, "
                  f"H + {recent - entropy:6.4f})  {time.perf_counter() - t0:5.1f} s")
    after = evaluate()
    seconds = time.perf_counter() - t0
    if verbose:
        print(f"held-out loss on {eval_tokens} fresh tokens: {before:.4f} nats before training "
              f"(log V = {np.log(vocab):.4f}), {after:.4f} after")
        print(f"the process's conditional entropy (the best any model can do): H = {entropy:.4f} "
              f"nats; gap left {after - entropy:.4f} nats; {seconds:.1f} s")
    return {"loss": losses, "entropy": entropy, "eval": (before, after), "seconds": seconds}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--dim", type=int, default=32)
    ap.add_argument("--clusters", type=int, default=16)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=0.03)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    main(a.steps, a.vocab, a.dim, a.clusters, a.batch, a.lr, a.seed)
