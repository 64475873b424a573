"""Hardening (issue 5): no leak over 10,000 calls, 8 Python threads at once, arrays past 2**31
elements, and hypothesis-driven garbage that may only raise ValueError/TypeError or give the
reference's answer -- never a crash.

Environment switches (used by .ci/sanitize):
  XENT_FAST_SANITIZE=1   the extension runs under AddressSanitizer: skip the RSS part of the leak
                         test (ASan's quarantine holds freed memory on purpose).
  XENT_FAST_SKIP_SLOW=1  skip the few tests that take seconds (the 2**31-element broadcast).
"""

import ctypes
import ctypes.util
import gc
import mmap
import os
import subprocess
import sys
import textwrap
import threading
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _helpers import (ALL_NAMES, FUNCS, assert_close, assert_same_bits, compute_dtype, impl,
                      input_scale, make_case, ref, relayout, tolerances)

pytestmark = pytest.mark.compiled_only

SANITIZED = bool(os.environ.get("XENT_FAST_SANITIZE"))
SKIP_SLOW = bool(os.environ.get("XENT_FAST_SKIP_SLOW"))


def _call(name, args, kwargs, module=None):
    return getattr(impl if module is None else module, name)(*args, **kwargs)


# ----------------------------------------------------------------------------------------------
# 10,000 repeated calls keep memory flat
# ----------------------------------------------------------------------------------------------


def _rss_bytes():
    """Resident set size now (Linux /proc), or the peak RSS elsewhere (also flat when no leak)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


class _MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                 "uordblks", "fordblks", "keepcost")]


def _malloc_in_use():
    """Bytes in use by malloc (glibc's mallinfo2: exact, unlike RSS), or None elsewhere."""
    if SANITIZED or not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        fn = libc.mallinfo2
    except (OSError, AttributeError):
        return None
    fn.restype = _MallInfo2
    info = fn()
    return int(info.uordblks) + int(info.hblkhd)


def _leak_cases():
    """(label, zero-argument callable): every kernel family, with and without out=, and the
    error paths (a bad class index is found inside the kernel, after buffers were allocated)."""
    rng = np.random.default_rng(0)
    n, C = 300, 17
    x64 = rng.standard_normal((n, C))
    x32 = x64.astype(np.float32)
    t = rng.integers(0, C, n)
    t[::7] = -100
    y = rng.dirichlet(np.ones(C), n)
    w = rng.uniform(0.5, 2.0, C)
    p = rng.uniform(0.01, 0.99, (n, C))
    yb = rng.uniform(0.0, 1.0, (n, C))
    g_out = np.empty_like(x64)
    s_out = np.empty_like(x32)
    bad_t = t.copy()
    bad_t[n // 2] = C + 3
    xT = np.asfortranarray(x64)
    cases = [
        ("cross_entropy mean", lambda: impl.cross_entropy(x64, t, weight=w, label_smoothing=0.1)),
        ("cross_entropy none f32", lambda: impl.cross_entropy(x32, t, reduction="none")),
        ("cross_entropy probs", lambda: impl.cross_entropy(x64, y, eps=1e-7, reduction="sum")),
        ("cross_entropy axis 0", lambda: impl.cross_entropy(xT.T, t, axis=0)),
        ("cross_entropy_and_grad", lambda: impl.cross_entropy_and_grad(x64, t)),
        ("cross_entropy_and_grad out",
         lambda: impl.cross_entropy_and_grad(x64, t, out=g_out, reduction="none", grad_loss=2.0)),
        ("nll_loss", lambda: impl.nll_loss(x64, t, reduction="none")),
        ("categorical_cross_entropy_and_grad",
         lambda: impl.categorical_cross_entropy_and_grad(p, t, weight=w)),
        ("binary_cross_entropy_and_grad",
         lambda: impl.binary_cross_entropy_and_grad(p, yb, reduction="none")),
        ("binary_cross_entropy_with_logits_and_grad",
         lambda: impl.binary_cross_entropy_with_logits_and_grad(x64, yb, pos_weight=w)),
        ("log_softmax", lambda: impl.log_softmax(x64)),
        ("softmax out", lambda: impl.softmax(x32, out=s_out)),
        ("logsumexp", lambda: impl.logsumexp(x32, axis=0)),
    ]

    def bad_target():
        try:
            impl.cross_entropy_and_grad(x64, bad_t, out=g_out)
        except ValueError:
            return
        raise AssertionError("a bad class index was accepted")

    def bad_option():
        try:
            impl.cross_entropy(x64, t, reduction="avg")
        except ValueError:
            return
        raise AssertionError("reduction='avg' was accepted")

    cases += [("bad target", bad_target), ("bad option", bad_option)]
    return cases


def test_memory_stays_flat_over_10000_calls():
    """15 kinds of call x 1,000 rounds (15,000 calls, ~1.5 s) after a warm-up: Python memory
    blocks, glibc's malloc'd bytes and the RSS stay where they were."""
    cases = _leak_cases()
    rounds = 1000
    for _ in range(200):  # warm-up: caches, OpenMP pool, malloc arenas reach their steady state
        for _, fn in cases:
            fn()
    gc.collect()
    rss0, blocks0, heap0 = _rss_bytes(), sys.getallocatedblocks(), _malloc_in_use()
    rss_slack = 4 << 20
    for i in range(1, rounds + 1):
        for _, fn in cases:
            fn()
        if i % 100 == 0 and not SANITIZED:  # stop early on a fast leak
            grown = _rss_bytes() - rss0
            assert grown < rss_slack, "RSS grew by %.1f MiB after %d rounds" % (grown / 2**20, i)
    gc.collect()
    blocks = sys.getallocatedblocks() - blocks0
    heap = None if heap0 is None else _malloc_in_use() - heap0
    rss = _rss_bytes() - rss0
    # one leaked Python object per call of any one case adds >= 1,000 blocks (noise: ~0)
    assert blocks < 300, "%d Python memory blocks more after %d x %d calls" % (
        blocks, rounds, len(cases))
    # one leaked malloc of 64 bytes per call of any one case adds >= 64 kB (noise: < 1 kB)
    if heap is not None:
        assert heap < 48 << 10, "malloc'd bytes in use grew by %d after %d x %d calls" % (
            heap, rounds, len(cases))
    if not SANITIZED:
        assert rss < rss_slack, "RSS grew by %.1f MiB" % (rss / 2**20)


# ----------------------------------------------------------------------------------------------
# 8 Python threads at once
# ----------------------------------------------------------------------------------------------

N_THREADS = 8


def _thread_jobs(seed):
    """A list of (name, args, kwargs) whose results must not depend on what other threads do."""
    rng = np.random.default_rng(seed)
    jobs = []
    for name, shape, dtype, opts in [
        ("cross_entropy", (3000, 67), np.float64, dict(label_smoothing=0.05)),
        ("cross_entropy", (1500, 129), np.float32, dict(reduction="none")),
        ("cross_entropy_and_grad", (2000, 40), np.float64, dict(num_threads=2)),
        ("categorical_cross_entropy_and_grad", (800, 33), np.float32, {}),
        ("nll_loss", (4000, 9), np.float64, dict(reduction="sum")),
        ("binary_cross_entropy_with_logits_and_grad", (500, 31), np.float64, {}),
        ("log_softmax", (1000, 100), np.float32, dict(num_threads=1)),
        ("logsumexp", (700, 65), np.float64, {}),
    ]:
        args, kwargs = make_case(name, rng, shape, dtype=dtype, **opts)
        jobs.append((name, args, kwargs))
    return jobs


def _results(name, args, kwargs):
    res = _call(name, args, kwargs)
    return res if isinstance(res, tuple) else (res,)


def _bad_target_message(seed):
    """A call whose error message names a position that differs between threads."""
    n = 100 + seed
    x = np.zeros((n, 5))
    t = np.zeros(n, np.int64)
    t[seed * 7 + 3] = 5 + seed
    try:
        impl.cross_entropy(x, t)
    except ValueError as e:
        return str(e)
    return "no error"


def test_eight_threads_at_once_match_serial_results():
    jobs = [_thread_jobs(seed) for seed in range(N_THREADS)]
    expected = [[_results(*job) for job in js] for js in jobs]
    expected_msg = [_bad_target_message(seed) for seed in range(N_THREADS)]
    for seed, msg in enumerate(expected_msg):
        assert str(seed * 7 + 3) in msg and str(5 + seed) in msg, msg
    barrier = threading.Barrier(N_THREADS)
    got = [None] * N_THREADS
    errors = []

    def work(k):
        try:
            barrier.wait()
            out = []
            for _ in range(3):
                out.append(([_results(*job) for job in jobs[k]], _bad_target_message(k)))
            got[k] = out
        except BaseException as e:  # reported by the main thread
            errors.append((k, repr(e)))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(N_THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=300)
    assert not any(th.is_alive() for th in threads), "a thread hangs"
    assert not errors, errors
    for k in range(N_THREADS):
        for results, msg in got[k]:
            assert msg == expected_msg[k]
            for (name, _, _), res, exp in zip(jobs[k], results, expected[k]):
                for a, b in zip(res, exp):
                    assert_same_bits(a, b, "%s in thread %d" % (name, k))


def test_threads_racing_on_the_very_first_call():
    """Kernel set-up (CPU dispatch, OpenMP start) done by 8 threads at once in a new process."""
    code = textwrap.dedent("""
        import threading, numpy as np, xent_fast as xf
        rng = np.random.default_rng(1)
        x = rng.standard_normal((2000, 50)).astype(np.float32)
        t = rng.integers(0, 50, 2000)
        barrier = threading.Barrier(8)
        got = [None] * 8
        def work(k):
            barrier.wait()
            got[k] = (xf.cross_entropy_and_grad(x, t), xf.softmax(x), xf.isa())
        ths = [threading.Thread(target=work, args=(k,)) for k in range(8)]
        [th.start() for th in ths]
        [th.join() for th in ths]
        (loss, grad), sm, isa = xf.cross_entropy_and_grad(x, t), xf.softmax(x), xf.isa()
        for (l2, g2), s2, i2 in got:
            assert l2.tobytes() == loss.tobytes() and g2.tobytes() == grad.tobytes()
            assert s2.tobytes() == sm.tobytes() and i2 == isa
        print("ok")
    """)
    # the child imports the very package under test (an in-place build found through the
    # parent's cwd as well as an installed one)
    env = dict(os.environ)
    pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(impl.__file__)))
    env["PYTHONPATH"] = os.pathsep.join([pkg_parent] + [p for p in [env.get("PYTHONPATH")] if p])
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, cwd=os.path.dirname(os.path.abspath(__file__)), env=env)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", (
        "exit %d\n%s\n%s" % (proc.returncode, proc.stdout, proc.stderr[-4000:]))


@pytest.mark.parametrize("name", [n for n in ALL_NAMES if FUNCS[n].grad])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_empty_batch_with_grad_loss(name, reduction):
    """An empty batch with an (empty or scalar) upstream gradient: nothing may be read from the
    empty arrays (found by the sanitizer run: a read of grad_loss[0] past a 0-element buffer)."""
    rng = np.random.default_rng(3)
    args, kwargs = make_case(name, rng, (0, 8), reduction=reduction)
    loss_shape = (0, 8) if FUNCS[name].family in ("bce", "bcel") else (0,)
    kwargs["grad_loss"] = np.ones(loss_shape) if reduction == "none" else 2.0
    loss, grad = _call(name, args, kwargs)
    rloss, rgrad = _call(name, args, kwargs, module=ref)
    assert_close(loss, rloss, 0, 0, "loss")
    assert grad.shape == rgrad.shape == (0, 8)


# ----------------------------------------------------------------------------------------------
# past 2**31 elements
# ----------------------------------------------------------------------------------------------


@pytest.mark.skipif(SKIP_SLOW, reason="XENT_FAST_SKIP_SLOW: the 2**31-element pass takes seconds")
def test_broadcast_rows_past_2_31_elements():
    """A zero-stride view of one row repeated past 2**31 elements: the mean of identical rows is
    the loss of the one row (forward only; about 2 s on 2 cores)."""
    C = 1000
    n = 2**31 // C + 1
    rng = np.random.default_rng(5)
    row = rng.standard_normal(C).astype(np.float32)
    x = np.broadcast_to(row, (n, C))
    assert x.size > 2**31 and x.strides[0] == 0
    t = np.broadcast_to(np.int64(617), (n,))
    loss = impl.cross_entropy(x, t)
    one = ref.cross_entropy(row[None, :], [617], reduction="none")[0]
    assert np.asarray(loss).dtype == np.float32
    assert_close(loss, one, 1e-5, 0.0, "mean of %d identical rows" % n)


def _huge_zeros(n, dtype):
    """n zeros in lazily mapped memory: only the pages written to become resident.  MAP_NORESERVE
    lets the mapping pass the kernel's overcommit check on a machine with less memory than n."""
    nbytes = n * np.dtype(dtype).itemsize
    flags = getattr(mmap, "MAP_PRIVATE", 0) | getattr(mmap, "MAP_ANONYMOUS", 0) | \
        getattr(mmap, "MAP_NORESERVE", 0)
    try:
        mm = mmap.mmap(-1, nbytes, flags=flags) if flags else mmap.mmap(-1, nbytes)
    except (OSError, OverflowError, ValueError) as e:
        pytest.skip("cannot map %d GiB of address space: %s" % (nbytes >> 30, e))
    return np.frombuffer(mm, dtype)


def _sparse_far_rows(dtype, rows, C, gap):
    """A (len(rows), C) view whose rows lie `gap` elements apart in one huge, mostly untouched
    buffer, so element offsets pass 2**31."""
    buf = _huge_zeros(gap * (len(rows) - 1) + C, dtype)
    for i, r in enumerate(rows):
        buf[i * gap: i * gap + C] = r
    view = np.lib.stride_tricks.as_strided(buf, shape=(len(rows), C),
                                           strides=(gap * buf.itemsize, buf.itemsize))
    return view, buf


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_element_offsets_past_2_31(dtype):
    """Two rows 2**31 + 33 elements apart, read and written through 64-bit offsets (a 32-bit
    offset would read or write the wrong place): forward pass, gradient into such an `out`,
    log_softmax, the reversed view (offsets below -2**31) and the class axis first (a class stride
    past 2**31).  Costs address space (8.6 GB float32, 17.2 GB float64), not memory."""
    C, gap = 33, 2**31 + 33
    rng = np.random.default_rng(11)
    rows = rng.standard_normal((2, C)) * 3
    x, _keep = _sparse_far_rows(dtype, rows, C, gap)
    dense = rows.astype(dtype)
    t = np.array([3, 32])
    rtol, atol = tolerances(dtype, input_scale(dense))

    assert_close(impl.cross_entropy(x, t, reduction="none"),
                 ref.cross_entropy(dense, t, reduction="none"), rtol, atol, "loss rows")
    assert_close(impl.cross_entropy(x[::-1], t[::-1], reduction="none"),
                 ref.cross_entropy(dense[::-1], t[::-1], reduction="none"), rtol, atol,
                 "reversed rows")
    assert_close(impl.log_softmax(x), ref.log_softmax(dense), rtol, atol, "log_softmax")
    assert_close(impl.logsumexp(x.T, axis=0), ref.logsumexp(dense, axis=1), rtol, atol,
                 "logsumexp, class stride past 2**31")
    assert_close(impl.cross_entropy(x.T, t, axis=0, reduction="sum"),
                 ref.cross_entropy(dense, t, reduction="sum"), rtol, 2 * atol, "class axis 0")
    del x, _keep
    out, _keep_out = _sparse_far_rows(dtype, np.full((2, C), 7.0), C, gap)
    loss, grad = impl.cross_entropy_and_grad(dense, t, out=out)
    rloss, rgrad = ref.cross_entropy_and_grad(dense, t)
    assert grad is out
    assert_close(loss, rloss, rtol, atol, "mean")
    assert_close(grad, rgrad, rtol, atol, "gradient written 2**31 elements apart")


# ----------------------------------------------------------------------------------------------
# hypothesis-driven garbage
# ----------------------------------------------------------------------------------------------

GARBAGE_DTYPES = [np.float16, np.float32, np.float64, np.longdouble, np.int8, np.uint8, np.int32,
                  np.int64, np.uint64, np.bool_, np.complex64, np.complex128, object, "U4", "S4",
                  "M8[s]", "m8[s]", [("a", "f8"), ("b", "i4")]]
SPECIAL_VALUES = [np.nan, np.inf, -np.inf, 1e308, -1e308, 1e30, -1e30, 5e-324, -0.0, 0.0, 1.0,
                  -1.0, 0.5, 2.0, 1e-300]
BAD_INDICES = [1, -1, -2, -99, -100, -101, 2**31 - 1, 2**31, -2**31, 2**32 + 1, 2**62, -2**63,
               2**63 - 1]
ODD_OBJECTS = [None, "abc", b"xy", 3, 2.5, True, [], [[]], [1, [2, 3]], {"a": 1}, object(),
               np.float64(1.5), np.array(None), np.array("1.0"), (1, 2), slice(1)]
GARBAGE_OPTIONS = {
    "axis": [-3, -2, -1, 0, 1, 2, 3, 2**63 - 1, -2**63, 2**64, 1.0, None, "0", (0,),
             np.int64(0), np.uint8(1), True],
    "weight": "array",
    "pos_weight": "array",
    "ignore_index": [-100, 0, 1, -1, 2**63 - 1, -2**63, 2**63, 2**70, -2**70, 1.5, True,
                     np.int8(3), np.uint64(2**64 - 1), "a", None, np.float64(2.0)],
    "reduction": ["none", "mean", "sum", "MEAN", "", None, 1, b"mean", np.str_("sum"), ["mean"]],
    "label_smoothing": [0, 0.1, 1.0, 1.0000001, -0.0, -1e-300, np.nan, np.inf, -np.inf, "0.1",
                        None, True, np.float32(0.5), 1e308, [0.1], np.array(0.2)],
    "eps": [0, 1e-7, 0.25, 0.4999999, 0.5, -1e-9, np.nan, np.inf, "1e-7", None, True, 1e-300,
            5e-324, np.float16(0.1), [1e-7]],
    "num_threads": [None, 1, 2, 3, 4096, 10**6, 2**31, 2**63 - 1, 2**63, 0, -1, 1.5, "2", True,
                    np.int32(2)],
    "grad_loss": "array",
    "out": "out",
}


def _unaligned(a):
    buf = np.zeros(a.nbytes + 1, np.uint8)
    u = buf[1:].view(a.dtype).reshape(a.shape)
    u[...] = a
    return u


@st.composite
def _array_garbage(draw, base, rng):
    """A corrupted version of a valid array: other dtype, special values, odd layout or shape."""
    a = np.asarray(base)
    kind = draw(st.sampled_from(["dtype", "values", "layout", "shape", "object", "values",
                                 "layout"]))
    if kind == "dtype":
        dt = draw(st.sampled_from(GARBAGE_DTYPES))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return a.astype(dt)
        except (TypeError, ValueError):
            return np.array(a.tolist(), dtype=object)
    if kind == "values":
        a = np.array(a, dtype=a.dtype if a.dtype.kind == "f" else np.float64)
        if a.size:
            for _ in range(draw(st.integers(1, 4))):
                with np.errstate(over="ignore"):  # 1e308 into float32 is inf, on purpose
                    a.flat[draw(st.integers(0, a.size - 1))] = draw(
                        st.sampled_from(SPECIAL_VALUES))
        return a
    if kind == "layout":
        layout = draw(st.sampled_from(["F", "strided", "reversed", "readonly", "transposed",
                                       "unaligned", "byteswapped", "broadcast"]))
        if layout == "unaligned":
            return _unaligned(a) if a.dtype.itemsize > 1 else a
        if layout == "byteswapped":
            return a.astype(a.dtype.newbyteorder())
        if layout == "broadcast":
            if a.ndim == 0 or a.shape[0] == 0:
                return a
            return np.broadcast_to(a[:1], a.shape)
        return relayout(a, layout)
    if kind == "shape":
        how = draw(st.sampled_from(["extra", "drop", "empty", "scalar", "swap", "grow"]))
        if how == "extra":
            return a[..., None]
        if how == "drop":
            return a.reshape(-1)[: max(0, a.size - 1)]
        if how == "empty":
            return a[:0] if a.ndim else a.reshape(1)[:0]
        if how == "scalar":
            return a.reshape(-1)[0] if a.size else a.reshape(-1)
        if how == "swap":
            return a.T
        return np.concatenate([a, a], axis=0) if a.ndim else np.stack([a, a])
    return draw(st.sampled_from(ODD_OBJECTS))


@st.composite
def _target_garbage(draw, fn, base, n_class):
    """Class indices with one bad value (huge, negative, C, ...) in some integer dtype, or an
    otherwise corrupted targets array."""
    t = np.asarray(base)
    if fn.index_targets and t.dtype.kind in "iu" and t.size and draw(st.booleans()):
        bad = draw(st.sampled_from(BAD_INDICES + [n_class, n_class + 1]))
        fits = [dt for dt in (np.int8, np.int32, np.int64, np.uint64)
                if np.iinfo(dt).min <= bad <= np.iinfo(dt).max]
        t = t.astype(draw(st.sampled_from(fits)))
        t.flat[draw(st.integers(0, t.size - 1))] = bad
        return t
    return draw(_array_garbage(t, None))


def _garbage_out(draw, x):
    x = np.asarray(x)
    dt = x.dtype if x.dtype in (np.float32, np.float64) else np.dtype(np.float64)
    how = draw(st.sampled_from(["shape", "dtype", "readonly", "broadcast", "list", "int", "0d",
                                "strided", "fortran", "none"]))
    if how == "shape":
        return np.empty(x.shape + (1,), dt)
    if how == "dtype":
        return np.empty(x.shape, np.float32 if dt == np.float64 else np.float64)
    if how == "readonly":
        o = np.empty(x.shape, dt)
        o.setflags(write=False)
        return o
    if how == "broadcast":
        return np.broadcast_to(np.empty(x.shape[-1:], dt), x.shape) if x.ndim else None
    if how == "list":
        return x.tolist()
    if how == "int":
        return np.empty(x.shape, np.int64)
    if how == "0d":
        return np.empty((), dt)
    if how == "strided":
        return np.full(tuple(2 * s for s in x.shape), 7, dt)[tuple(slice(None, None, 2)
                                                                   for _ in x.shape)]
    if how == "fortran":
        return np.full(x.shape, 7, dt, order="F")
    return None


@st.composite
def garbage_calls(draw):
    """(name, args, kwargs): a valid call of a public function with 1-3 parts made garbage."""
    name = draw(st.sampled_from(ALL_NAMES))
    fn = FUNCS[name]
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    ndim = draw(st.integers(1, 3))
    shape = tuple(draw(st.integers(1, 5)) for _ in range(ndim))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    args, kwargs = make_case(fn, rng, shape, axis=-1, dtype=dtype)
    args = list(args)
    x0 = args[0]
    n_class = shape[-1]
    targets = ["first"] + (["targets"] if len(args) > 1 else []) + sorted(fn.options)
    for part in draw(st.lists(st.sampled_from(targets), min_size=1, max_size=3, unique=True)):
        if part == "first":
            args[0] = draw(_array_garbage(args[0], rng))
        elif part == "targets":
            args[1] = draw(_target_garbage(fn, args[1], n_class))
        else:
            spec = GARBAGE_OPTIONS[part]
            if spec == "array":
                if part == "grad_loss":
                    loss_shape = shape if fn.family in ("bce", "bcel") else shape[:-1]
                    base = (rng.uniform(0.5, 2.0, loss_shape)
                            if kwargs.get("reduction", "mean") == "none" else np.float64(1.5))
                elif fn.family in ("bce", "bcel"):
                    base = rng.uniform(0.5, 2.0, shape[-1:])
                else:
                    base = rng.uniform(0.5, 2.0, (n_class,))
                kwargs[part] = draw(_array_garbage(base, rng))
            elif spec == "out":
                kwargs[part] = _garbage_out(draw, x0)
            else:
                kwargs[part] = draw(st.sampled_from(spec))
    return name, tuple(args), kwargs


def _copy_arg(v):
    if isinstance(v, np.ndarray):
        return v.copy()
    if isinstance(v, list):
        return [_copy_arg(e) for e in v]
    return v


def _scale_of(*vals):
    try:
        arrs = [np.asarray(v, dtype=np.float64) for v in vals if v is not None]
        return input_scale(*arrs)
    except (TypeError, ValueError):
        return 1.0


def _loss_tolerance(name, args, kwargs, expected, dtype, scale):
    """(rtol, atol) of a loss: per-row tolerance times the number of summed rows."""
    rtol, atol = tolerances(dtype, scale)
    fn = FUNCS[name]
    red = kwargs.get("reduction", "mean")
    if fn.is_loss and red in ("mean", "sum"):
        fwd = name[: -len("_and_grad")] if fn.grad else name
        kw = {k: _copy_arg(v) for k, v in kwargs.items() if k not in ("grad_loss", "out")}
        kw["reduction"] = "none"
        with np.errstate(all="ignore"):
            rows = np.asarray(getattr(ref, fwd)(*[_copy_arg(a) for a in args], **kw),
                              dtype=np.float64)
        finite = np.abs(rows[np.isfinite(rows)])
        atol = atol * max(1, rows.size) + rtol * float(finite.sum())
        if red == "mean" and rows.size and np.isfinite(expected) and expected != 0:
            total = float(np.sum(rows))
            if np.isfinite(total) and total != 0:
                atol *= abs(float(expected) / total)
    return rtol, atol


def _not_finite_or_huge(value):
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    return bool(a.size) and not (np.isfinite(a).all() and np.abs(a).max() <= 1e30)


def _outside_the_spec(name, args, kwargs):
    """True for inputs whose results docs/DESIGN.md leaves open (which NaN or inf comes out is then
    a matter of operation order): a weight, pos_weight, grad_loss or probability target holding
    NaN, an infinity or a value that overflows float32 products (> 1e30), or logits holding +inf
    (only -inf, as a mask, and NaN are specified)."""
    fn = FUNCS[name]
    if any(_not_finite_or_huge(kwargs.get(k)) for k in ("weight", "pos_weight", "grad_loss")):
        return True
    if len(args) > 1:
        t = np.asarray(args[1])
        if t.dtype.kind == "f" and _not_finite_or_huge(t):
            return True
    if fn.family in ("ce", "lsm", "sm", "lse", "bcel"):
        x = np.asarray(args[0])
        if x.dtype.kind in "biuf":
            x = x.astype(compute_dtype(x.dtype))
            return bool(np.isposinf(x).any())
    return False


@settings(max_examples=max(settings.default.max_examples * 10, 500))
@given(garbage_calls())
def test_garbage_raises_value_or_type_error_or_matches_reference(call):
    name, args, kwargs = call
    ref_args = [_copy_arg(a) for a in args]
    ref_kwargs = {k: _copy_arg(v) for k, v in kwargs.items()}
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            got = _call(name, args, kwargs)
        except (ValueError, TypeError):
            return  # a clean rejection is always fine
        try:
            expected = _call(name, ref_args, ref_kwargs, module=ref)
        except (ValueError, TypeError) as e:
            raise AssertionError("xent_fast.%s accepted input that the reference rejects (%s: "
                                 "%s)" % (name, type(e).__name__, e)) from None
        got = got if isinstance(got, tuple) else (got,)
        expected = expected if isinstance(expected, tuple) else (expected,)
        assert len(got) == len(expected)
        if _outside_the_spec(name, ref_args, ref_kwargs):
            # docs/DESIGN.md says nothing of NaN, infinite or overflowing weights and upstream
            # gradients (which NaN or inf comes out is a matter of operation order): the call
            # must still be clean, with the reference's shapes and dtypes
            for g, e in zip(got, expected):
                assert np.shape(g) == np.shape(e)
                assert np.asarray(g).dtype == np.asarray(e).dtype
            return
        first = np.asarray(args[0])
        dtype = compute_dtype(first.dtype)
        scale = _scale_of(args[0], kwargs.get("weight"), kwargs.get("pos_weight"),
                          kwargs.get("grad_loss"))
        for k, (g, e) in enumerate(zip(got, expected)):
            assert np.asarray(g).dtype == np.asarray(e).dtype, (k, np.asarray(g).dtype,
                                                                np.asarray(e).dtype)
            if k == 0 and FUNCS[name].is_loss:
                rtol, atol = _loss_tolerance(name, ref_args, ref_kwargs, e, dtype, scale)
            else:
                rtol, atol = tolerances(dtype, scale)
                if FUNCS[name].grad:
                    gl = kwargs.get("grad_loss")
                    atol *= _scale_of(gl) if gl is not None else 1.0
            assert_close(g, e, rtol, atol, "%s output %d" % (name, k))


def _one_byte_off(a):
    """A copy of float64 `a` in a buffer one byte off 8-byte alignment (as an array unpickled
    from a byte stream can be)."""
    raw = np.zeros(a.nbytes + 1, np.uint8)
    out = raw[1:].view(np.float64).reshape(a.shape)
    out[...] = a
    assert not out.flags.aligned
    return out


def test_unaligned_float64_side_arrays_give_the_aligned_results():
    # The kernels read class weights, sample weights, upstream gradients and partials as
    # doubles: an unaligned buffer must reach them as an aligned copy (UBSan checks the reads).
    rng = np.random.default_rng(5)
    x = rng.standard_normal((9, 7))
    t = rng.integers(0, 7, 9)
    w, sw, gl = rng.random(7) + 0.5, rng.random(9), rng.random(9)
    kw = dict(reduction="none", grad_loss=gl, sample_weight=sw, weight=w)
    expected = impl.cross_entropy_and_grad(x, t, **kw)
    got = impl.cross_entropy_and_grad(x, t, **dict(kw, weight=_one_byte_off(w),
                                                   sample_weight=_one_byte_off(sw),
                                                   grad_loss=_one_byte_off(gl)))
    assert_same_bits(got[0], expected[0])
    assert_same_bits(got[1], expected[1])
    if not hasattr(impl, "vocab_parallel"):
        return
    vp = impl.vocab_parallel
    parts = vp.shard_partials(x, t, 0, 7, weight=w)
    assert_same_bits(vp.finish_partials(_one_byte_off(parts), reduction="none"),
                     vp.finish_partials(parts, reduction="none"))
