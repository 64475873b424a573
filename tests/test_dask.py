"""xent_fast.dask on a real cluster: a dask.distributed LocalCluster with two worker processes.

Every result is checked against the NumPy API on the same data (itself held to
xent_fast.reference by the rest of the suite) for row chunks, class chunks, both, and uneven
chunks; the last test runs logits larger than both workers' memory limits together.
"""
import os

import numpy as np
import pytest

import xent_fast

pytest.importorskip("dask.distributed", reason="the [dask] extra is not installed")

import dask  # noqa: E402
import dask.array as da  # noqa: E402
from dask.distributed import Client, LocalCluster  # noqa: E402

import xent_fast.dask as xd  # noqa: E402

ml_dtypes = pytest.importorskip("ml_dtypes")

RTOL = {np.float64: 1e-10, np.float32: 2e-5, np.float16: 2e-3, ml_dtypes.bfloat16: 2e-2}
# chunks of a (13, 29) array: rows only, classes only, both, uneven and one-element chunks
CHUNKINGS = [(5, 29), (13, 7), (4, 8), ((6, 1, 6), (1, 20, 8))]


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None, memory_limit="1GiB") as cluster, \
            Client(cluster) as c:
        yield c


def _close(got, expected, dtype):
    got, expected = np.asarray(got, np.float64), np.asarray(expected, np.float64)
    rtol = RTOL[dtype]
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=rtol * scale)


def _data(dtype, shape=(13, 29), seed=0):
    rng = np.random.default_rng(seed)
    x = (3 * rng.standard_normal(shape)).astype(dtype)
    t = rng.integers(0, shape[-1], shape[:-1])
    t.flat[2] = -100
    return rng, x, t


OPTIONS = [
    {},
    dict(label_smoothing=0.2, weight="random"),
    dict(z_loss=1e-2, softcap=4.0, logit_scale=0.7, sample_weight="random"),
    dict(ignore_index=3, label_smoothing=0.1, z_loss=1e-3, weight="random",
         sample_weight="random"),
]


def _options(rng, opts, n_rows, n_class):
    out = dict(opts)
    if out.get("weight") == "random":
        out["weight"] = rng.random(n_class) + 0.5
    if out.get("sample_weight") == "random":
        out["sample_weight"] = rng.random(n_rows)
    return out


@pytest.mark.parametrize("chunks", CHUNKINGS)
@pytest.mark.parametrize("opts", OPTIONS)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_and_grad_match_numpy(client, chunks, opts, reduction):
    rng, x, t = _data(np.float32)
    kw = _options(rng, opts, x.shape[0], x.shape[1])
    t[2] = kw.get("ignore_index", -100)
    X = da.from_array(x, chunks=chunks)
    loss = xd.cross_entropy(X, t, reduction=reduction, **kw)
    assert isinstance(loss, da.Array)
    expected = xent_fast.cross_entropy(x, t, reduction=reduction, **kw)
    got = loss.compute()
    _close(got, expected, np.float32)
    assert got.dtype == expected.dtype and got.shape == np.shape(expected)
    gl = rng.random(x.shape[0]) if reduction == "none" else 1.5
    got = dask.compute(*xd.cross_entropy_and_grad(X, t, reduction=reduction, grad_loss=gl,
                                                  return_lse=True, **kw))
    expected = xent_fast.cross_entropy_and_grad(x, t, reduction=reduction, grad_loss=gl,
                                                return_lse=True, **kw)
    for g, e in zip(got, expected):
        _close(g, e, np.float32)
        assert g.dtype == e.dtype and g.shape == e.shape


@pytest.mark.parametrize("chunks", [(5, 29), (4, 8)])
def test_mean_over_no_weight(client, chunks):
    """Every kept row of weight 0: the 'mean' and the kept rows' gradient are NaN, as in the
    NumPy API, computed without NumPy's division warnings (checked in-process)."""
    import warnings

    _, x, t = _data(np.float32)
    w = np.zeros(x.shape[1])
    X = da.from_array(x, chunks=chunks)
    expected = xent_fast.cross_entropy_and_grad(x, t, weight=w)
    got = dask.compute(*xd.cross_entropy_and_grad(X, t, weight=w))
    assert np.isnan(got[0]) and type(got[0]) is type(expected[0])
    np.testing.assert_array_equal(np.isnan(got[1]), np.isnan(expected[1]))
    with warnings.catch_warnings(), dask.config.set(scheduler="synchronous"):
        warnings.simplefilter("error")
        assert np.isnan(xd.cross_entropy(X, t, weight=w).compute())


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16, ml_dtypes.bfloat16])
@pytest.mark.parametrize("chunks", [(5, 29), (4, 8)])
def test_dtypes(client, dtype, chunks):
    rng, x, t = _data(dtype)
    X = da.from_array(x, chunks=chunks)
    got = dask.compute(*xd.cross_entropy_and_grad(X, t, z_loss=1e-3, return_lse=True))
    expected = xent_fast.cross_entropy_and_grad(x, t, z_loss=1e-3, return_lse=True)
    for g, e in zip(got, expected):
        assert g.dtype == e.dtype
        _close(g, e, dtype)


@pytest.mark.parametrize("chunks", [(2, 5, 3), (2, 2, 1)])
def test_class_axis_not_last_and_probability_targets(client, chunks):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 9, 3))  # classes along axis 1
    y = rng.random(x.shape)
    y /= y.sum(axis=1, keepdims=True)
    X, Y = da.from_array(x, chunks=chunks), da.from_array(y, chunks=chunks)
    for reduction in ("mean", "none"):
        kw = dict(axis=1, reduction=reduction, label_smoothing=0.1, softcap=2.0)
        got = dask.compute(*xd.cross_entropy_and_grad(X, Y, **kw))
        expected = xent_fast.cross_entropy_and_grad(x, y, **kw)
        for g, e in zip(got, expected):
            _close(g, e, np.float64)
    t = rng.integers(0, 9, (4, 3))
    _close(xd.cross_entropy(X, t, axis=1).compute(), xent_fast.cross_entropy(x, t, axis=1),
           np.float64)


@pytest.mark.parametrize("chunks", CHUNKINGS)
@pytest.mark.parametrize("axis", [-1, 0])
def test_softmax_family(client, chunks, axis):
    _, x, _ = _data(np.float32, seed=2)
    X = da.from_array(x, chunks=chunks)
    for name in ("log_softmax", "softmax"):
        got = getattr(xd, name)(X, axis=axis).compute()
        expected = getattr(xent_fast, name)(x, axis=axis)
        assert got.dtype == expected.dtype
        _close(got, expected, np.float32)
    got = xd.logsumexp(X, axis=axis, keepdims=True).compute()
    expected = xent_fast.logsumexp(x, axis=axis, keepdims=True)
    assert got.shape == expected.shape and got.dtype == expected.dtype
    _close(got, expected, np.float32)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("bias", [False, True])
def test_linear_cross_entropy(client, reduction, bias):
    rng = np.random.default_rng(3)
    h = rng.standard_normal((2, 15, 8)).astype(np.float32)
    w = rng.standard_normal((40, 8)).astype(np.float32)
    b = rng.standard_normal(40).astype(np.float32) if bias else None
    t = rng.integers(0, 40, (2, 15))
    t[0, 4] = -100
    kw = dict(linear_bias=b, reduction=reduction, z_loss=1e-3, sample_weight=rng.random(15),
              chunk_size=4)
    H = da.from_array(h, chunks=(1, 6, 8))
    _close(xd.linear_cross_entropy(H, w, t, **kw).compute(),
           xent_fast.linear_cross_entropy(h, w, t, **kw), np.float32)
    got = dask.compute(*xd.linear_cross_entropy_and_grad(H, da.from_array(w, chunks=10), t,
                                                         **kw))
    expected = xent_fast.linear_cross_entropy_and_grad(h, w, t, **kw)
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert g.shape == e.shape and g.dtype == e.dtype
        _close(g, e, np.float32)


def test_linear_probability_targets_and_dask_weights(client):
    rng = np.random.default_rng(4)
    h, w = rng.standard_normal((21, 5)), rng.standard_normal((12, 5))
    y = rng.random((21, 12))
    y /= y.sum(axis=1, keepdims=True)
    sw = rng.random(21)
    kw = dict(label_smoothing=0.1, softcap=3.0)
    got = dask.compute(*xd.linear_cross_entropy_and_grad(
        da.from_array(h, chunks=(8, 5)), da.from_array(w, chunks=(5, 5)),
        da.from_array(y, chunks=(4, 6)), sample_weight=da.from_array(sw, chunks=10), **kw))
    expected = xent_fast.linear_cross_entropy_and_grad(h, w, y, sample_weight=sw, **kw)
    for g, e in zip(got, expected):
        _close(g, e, np.float64)


def test_lazy_until_computed(client):
    def boom(block):
        raise RuntimeError("computed")

    X = da.zeros((8, 10), chunks=(4, 5)).map_blocks(boom, dtype=np.float64)
    t = np.zeros(8, np.int64)
    results = [xd.cross_entropy(X, t), *xd.cross_entropy_and_grad(X, t), xd.logsumexp(X),
               xd.softmax(X), xd.linear_cross_entropy(X, np.ones((3, 10)), t)]
    assert all(isinstance(r, da.Array) for r in results)
    with pytest.raises(RuntimeError, match="computed"):
        results[0].compute()


def test_bad_input(client):
    X = da.zeros((8, 10), chunks=(4, 5))
    t = np.zeros(8, np.int64)
    with pytest.raises(ValueError, match="softcap"):
        xd.cross_entropy(X, t, softcap=-1.0)
    with pytest.raises(ValueError, match="targets must have shape"):
        xd.cross_entropy(X, np.zeros(7, np.int64))
    with pytest.raises(ValueError, match="sample_weight"):
        xd.cross_entropy(X, t, sample_weight=np.ones(3))
    with pytest.raises(ValueError, match="one chunk"):
        xd.cross_entropy(X, t, eps=1e-3)
    with pytest.raises(TypeError, match="integer dtype"):
        xd.cross_entropy(X, np.zeros(8))
    assert np.isfinite(xd.cross_entropy(X.rechunk((4, 10)), t, eps=1e-3).compute())
    bad = t.copy()
    bad[5] = 10
    with pytest.raises(ValueError, match="10"):
        xd.cross_entropy(X, bad).compute()


def _pattern(block_info=None):
    """Logits generated where the block is computed: a cheap deterministic pattern of its place."""
    (r0, r1), (c0, c1) = block_info[None]["array-location"]
    i = np.arange(r0, r1, dtype=np.int64)[:, None]
    j = np.arange(c0, c1, dtype=np.int64)[None, :]
    return ((i * 7919 + j * 104729) % 1009).astype(np.float32) / 100.0


def test_logits_larger_than_the_workers_memory(client):
    """3.2 GB of float32 logits on two workers limited to 1 GiB each: the loss is right and no
    worker is lost or restarted."""
    n, v, rows = 24576, 32768, 2048
    pids = client.run(os.getpid)
    X = da.map_blocks(_pattern, chunks=((rows,) * (n // rows), (v // 4,) * 4), dtype=np.float32)
    T = (da.arange(n, chunks=rows) * 31) % v
    assert X.nbytes > 3e9
    loss, lse = dask.compute(*xd.cross_entropy(X, T, z_loss=1e-4, return_lse=True))
    expected_sum, expected_lse = 0.0, []
    for r in range(0, n, rows):
        block = _pattern({None: {"array-location": [(r, r + rows), (0, v)]}})
        s, l = xent_fast.cross_entropy(block, (np.arange(r, r + rows) * 31) % v, z_loss=1e-4,
                                       reduction="sum", return_lse=True)
        expected_sum += float(s)
        expected_lse.append(l)
    _close(loss, expected_sum / n, np.float32)
    _close(lse, np.concatenate(expected_lse), np.float32)
    assert client.run(os.getpid) == pids


@pytest.mark.parametrize("name", xd.__all__)
def test_signatures_are_the_numpy_apis_and_the_stubs(name):
    """The same parameters as the NumPy function (less ``out=``, which a lazy result cannot
    take), in the same order with the same defaults, and the stub agrees."""
    import ast
    import inspect
    import pathlib

    def params(fn):
        return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()
                if p.name != "out"]

    assert params(getattr(xd, name)) == params(getattr(xent_fast, name))
    stub = pathlib.Path(xd.__file__).with_suffix(".pyi")
    fns = {n.name: n for n in ast.parse(stub.read_text()).body if isinstance(n, ast.FunctionDef)}
    a = fns[name].args
    assert [arg.arg for arg in a.args + a.kwonlyargs] == [p[0] for p in params(getattr(xd, name))]
    defaults = [ast.literal_eval(d) for d in a.defaults + a.kw_defaults]
    assert defaults == [p[2] for p in params(getattr(xd, name)) if p[2] is not inspect._empty]
