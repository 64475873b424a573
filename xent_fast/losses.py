"""The public loss functions and the softmax building blocks.

Every function here is a thin wrapper over one kernel family in xent_fast._api; the docstrings
are the user's reference and state the exact formula (see also xent_fast.reference).
"""
from ._api import (_LOG_PROBS, _LOG_SOFTMAX, _LOGITS, _PROBS, _SOFTMAX, _binary_loss,
                   _class_rows_loss, _logsumexp, _softmax_rows)

_CLASS_PARAMS = """
    targets : array_like
        Either class indices, an integer array with the input's shape minus the class axis, or
        class probabilities (one-hot or soft labels), an array of the input's full shape.
        Probabilities are used as given, as in PyTorch: neither checked to lie in [0, 1] nor to
        sum to 1; the formula applies to any values.
    axis : int, default -1
        The class axis.
    weight : array_like of shape (C,), optional
        A weight per class; ones when None.
    ignore_index : int, default -100
        Rows whose class index equals it contribute 0 to the loss and its gradient and are left
        out of the mean's denominator.  Does not apply to probability targets.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        'none' returns one loss per row (the targets' shape); 'mean' divides the sum by the sum of
        the targets' class weights (index targets) or by the number of rows (probability targets).
    label_smoothing : float in [0, 1], default 0
        Mixes the targets with the uniform distribution: y' = (1 - s) y + s / C."""

_THREADS = """
    num_threads : int, optional
        OpenMP threads for the kernel; None uses OpenMP's default (OMP_NUM_THREADS,
        threadpoolctl's limits).  Results do not depend on it."""

_GRAD_PARAMS = """
    grad_loss : array_like, optional
        The upstream gradient, broadcastable to the loss's shape (a scalar for 'mean'/'sum');
        default 1.
    out : ndarray, optional
        Receives the gradient: a writable array of the input's shape and dtype (float32 is also
        accepted for float16 / bfloat16 input).  Passing the input itself computes the gradient
        in place, with no extra memory."""


_OPTIONS = """
    z_loss : float >= 0, default 0
        Adds ``z_loss * lse**2`` to the loss of every row that is not ignored, with
        ``lse = logsumexp(z)`` of the row's mapped logits (PaLM's auxiliary loss; typical 1e-4).
    softcap : float > 0, optional
        Soft-caps the logits first: ``z = softcap * tanh(z / softcap)`` (Gemma 2's final-logit
        soft-capping; typical 30).  Masked ``-inf`` logits become ``-softcap``.
    logit_scale : float, default 1
        Multiplies the logits first: ``z = logit_scale * logits`` (before the cap); finite, not 0.
    sample_weight : array_like, optional
        Multiplies each row's whole loss; broadcast to the targets' row shape.  'mean' then
        divides by ``sum_i sample_weight_i * weight[t_i]`` over rows that are not ignored (index
        targets) or ``sum_i sample_weight_i`` (probability targets).
    return_lse : bool, default False
        Also return each row's ``lse = logsumexp(z)``: the row shape, float32 for float32 and
        half-precision logits, float64 for float64."""


def _doc(text):
    return (text.replace("{CLASS_PARAMS}", _CLASS_PARAMS).replace("{THREADS}", _THREADS)
            .replace("{GRAD_PARAMS}", _GRAD_PARAMS).replace("{OPTIONS}", _OPTIONS))


def cross_entropy(logits, targets, *, axis=-1, weight=None, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0, eps=0.0, z_loss=0.0, softcap=None, logit_scale=1.0,
                  sample_weight=None, return_lse=False, num_threads=None):
    return _class_rows_loss(_LOGITS, logits, targets, axis, weight, ignore_index, reduction,
                            label_smoothing, eps, num_threads, False, None, None,
                            logit_scale=logit_scale, softcap=softcap, z_loss=z_loss,
                            sample_weight=sample_weight, return_lse=bool(return_lse))


cross_entropy.__doc__ = _doc("""Cross-entropy from raw logits: fused log-softmax + NLL (+ clipping).

    With ``lsm = log_softmax(logits)`` along the class axis and ``c`` the clip of log-probabilities
    to ``[log(eps), log1p(-eps)]``, a row with class index ``t`` has loss
    ``(1 - s) * -w[t] * c(lsm)[t] + (s / C) * -sum_j w[j] * c(lsm)[j]``; with probability targets
    ``y``, ``-sum_j w[j] * y'[j] * c(lsm)[j]``.  With ``eps=0`` this is
    ``torch.nn.functional.cross_entropy``.  The large-model options map each row of logits ``u``
    first, ``z = logit_scale * u`` then ``z = softcap * tanh(z / softcap)``, take the loss above
    of ``z``, add ``z_loss * logsumexp(z)**2`` and multiply by the row's ``sample_weight``; their
    defaults leave the result unchanged, bit for bit.  Each row is read once; the sum is taken in
    float64 in a fixed order, identical for any thread count.

    Parameters
    ----------
    logits : array_like
        Unnormalised scores: float32 or float64, or float16 / bfloat16 (``ml_dtypes.bfloat16``),
        which are read in place and computed in float32 (other real dtypes are computed in
        float64).
    {CLASS_PARAMS}
    eps : float in [0, 0.5), default 0
        Clips probabilities to ``[eps, 1 - eps]`` (the loss of a row is at most ``-log(eps)``);
        0 leaves log-probabilities unchanged.
    {OPTIONS}
    {THREADS}

    Returns
    -------
    loss : numpy scalar or ndarray
        Of the compute dtype (the logits' dtype; float32 for half precision): a scalar for
        'mean'/'sum', one value per row for 'none'.
    lse : ndarray
        With ``return_lse=True`` only: each row's ``logsumexp(z)``.

    Raises
    ------
    ValueError
        For a class index outside ``[0, C)`` (naming its value and position), a shape mismatch,
        an empty class axis or an option out of range.
    TypeError
        For float class indices or non-numeric input.

    Examples
    --------
    >>> import numpy as np, xent_fast
    >>> logits = np.log([[0.7, 0.1, 0.2], [0.1, 0.5, 0.4], [0.02, 0.9, 0.08]])
    >>> xent_fast.cross_entropy(logits, [0, 1, 1], reduction="none").round(8)
    array([0.35667494, 0.69314718, 0.10536052])
    """)


def cross_entropy_and_grad(logits, targets, *, axis=-1, weight=None, ignore_index=-100,
                           reduction="mean", label_smoothing=0.0, eps=0.0, z_loss=0.0,
                           softcap=None, logit_scale=1.0, sample_weight=None, return_lse=False,
                           grad_loss=None, out=None, num_threads=None):
    return _class_rows_loss(_LOGITS, logits, targets, axis, weight, ignore_index, reduction,
                            label_smoothing, eps, num_threads, True, grad_loss, out,
                            logit_scale=logit_scale, softcap=softcap, z_loss=z_loss,
                            sample_weight=sample_weight, return_lse=bool(return_lse))


cross_entropy_and_grad.__doc__ = _doc("""Cross-entropy and its gradient w.r.t. the logits in one fused pass.

    The gradient of :func:`cross_entropy`'s formula: ``softmax(z) * S - a * m`` per row,
    where ``a`` are the smoothed, weighted target coefficients, ``m`` is 0 where the clip is
    active and ``S = sum_j a_j m_j`` (plus ``2 z_loss lse``); 0 for ignored rows; times the row's
    sample weight and ``dz/dlogits`` (``logit_scale * (1 - (z / softcap)**2)``); scaled by the
    reduction and by ``grad_loss``.  Computed in float32 for half-precision logits and rounded
    once into the gradient's dtype.  Each row's gradient is written while the row is in cache; nothing of the
    logits' size is allocated besides the gradient itself (nothing at all with ``out=``).

    Parameters
    ----------
    logits : array_like
        Unnormalised scores.
    {CLASS_PARAMS}
    eps : float in [0, 0.5), default 0
        Probability clipping, as in :func:`cross_entropy`; clipped entries get zero gradient.
    {OPTIONS}
    {GRAD_PARAMS}
    {THREADS}

    Returns
    -------
    loss : numpy scalar or ndarray
        As :func:`cross_entropy`.
    grad : ndarray
        d(loss)/d(logits), the logits' shape and dtype (``out`` when given).
    lse : ndarray
        With ``return_lse=True`` only, as :func:`cross_entropy`.

    Raises
    ------
    ValueError, TypeError
        As :func:`cross_entropy`, and for a bad ``out`` or ``grad_loss``; a bad class index is
        found before anything is written to ``out``.
    """)


def nll_loss(log_probs, targets, *, axis=-1, weight=None, ignore_index=-100, reduction="mean",
             num_threads=None):
    return _class_rows_loss(_LOG_PROBS, log_probs, targets, axis, weight, ignore_index,
                            reduction, 0.0, 0.0, num_threads, False, None, None)


nll_loss.__doc__ = _doc("""Negative log-likelihood of log-probabilities (PyTorch's ``nll_loss``).

    ``loss_i = -w[t_i] * log_probs[i, t_i]``; ``cross_entropy(x, t)`` equals
    ``nll_loss(log_softmax(x), t)``.

    Parameters
    ----------
    log_probs : array_like
        Log-probabilities, e.g. from :func:`log_softmax`.
    {CLASS_PARAMS}
    {THREADS}

    Returns
    -------
    loss : numpy scalar or ndarray
        As :func:`cross_entropy`.
    """).replace("""
    label_smoothing : float in [0, 1], default 0
        Mixes the targets with the uniform distribution: y' = (1 - s) y + s / C.""", "")


def categorical_cross_entropy(probs, targets, *, axis=-1, eps=1e-7, weight=None,
                              ignore_index=-100, reduction="mean", label_smoothing=0.0,
                              num_threads=None):
    return _class_rows_loss(_PROBS, probs, targets, axis, weight, ignore_index, reduction,
                            label_smoothing, eps, num_threads, False, None, None)


categorical_cross_entropy.__doc__ = _doc("""Categorical cross-entropy of probabilities (softmax outputs).

    The seeds' formula ``-sum_j y_j * log(clip(p_j, eps, 1 - eps))``, i.e. :func:`cross_entropy`
    with ``c(lsm)`` replaced by ``log(clip(p, eps, 1 - eps))``; the probabilities are not
    renormalised.

    Parameters
    ----------
    probs : array_like
        Predicted probabilities.
    {CLASS_PARAMS}
    eps : float in [0, 0.5), default 1e-7
        Clipping that keeps ``log(0)`` away: a probability of 0 on the target gives ``-log(eps)``.
    {THREADS}

    Returns
    -------
    loss : numpy scalar or ndarray
        As :func:`cross_entropy`.

    Examples
    --------
    >>> import xent_fast
    >>> float(xent_fast.categorical_cross_entropy([0.7, 0.1, 0.2], 0))
    0.35667494393873245
    """)


def categorical_cross_entropy_and_grad(probs, targets, *, axis=-1, eps=1e-7, weight=None,
                                       ignore_index=-100, reduction="mean", label_smoothing=0.0,
                                       grad_loss=None, out=None, num_threads=None):
    return _class_rows_loss(_PROBS, probs, targets, axis, weight, ignore_index, reduction,
                            label_smoothing, eps, num_threads, True, grad_loss, out)


categorical_cross_entropy_and_grad.__doc__ = _doc("""Categorical cross-entropy and its gradient w.r.t. the probabilities.

    ``d loss / d p_j = -a_j / p_j`` where ``eps <= p_j <= 1 - eps`` and 0 where the clip is
    active (``a`` the smoothed, weighted target coefficients), scaled by the reduction and by
    ``grad_loss``.

    Parameters
    ----------
    probs : array_like
        Predicted probabilities.
    {CLASS_PARAMS}
    eps : float in [0, 0.5), default 1e-7
        Probability clipping.
    {GRAD_PARAMS}
    {THREADS}

    Returns
    -------
    loss : numpy scalar or ndarray
    grad : ndarray
        d(loss)/d(probs).
    """)


def binary_cross_entropy(probs, targets, *, eps=1e-7, weight=None, reduction="mean",
                         num_threads=None):
    return _binary_loss(False, probs, targets, eps, weight, None, reduction, num_threads,
                        False, None, None)


_BINARY_PARAMS = """
    targets : array_like
        Targets, the input's shape: labels 0 and 1 or soft labels in [0, 1].  As in PyTorch they
        are not checked: values outside [0, 1] enter the formula as they are.
    weight : array_like, optional
        Broadcast against the input (as in PyTorch); it must not enlarge the input's shape.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        'mean' averages over all elements."""

binary_cross_entropy.__doc__ = _doc("""Binary cross-entropy of probabilities, clipped.

    ``-w * (y * log(clip(p)) + (1 - y) * log(1 - clip(p)))`` element-wise with
    ``clip(p) = clip(p, eps, 1 - eps)``; a term whose target share is 0 contributes 0.

    Parameters
    ----------
    probs : array_like
        Predicted probabilities of the positive class.
    {BINARY}
    eps : float in [0, 0.5), default 1e-7
        Probability clipping.
    {THREADS}

    Returns
    -------
    loss : numpy scalar or ndarray
        Of the input's dtype; the input's shape for 'none'.
    """.replace("{BINARY}", _BINARY_PARAMS))


def binary_cross_entropy_and_grad(probs, targets, *, eps=1e-7, weight=None, reduction="mean",
                                  grad_loss=None, out=None, num_threads=None):
    return _binary_loss(False, probs, targets, eps, weight, None, reduction, num_threads,
                        True, grad_loss, out)


binary_cross_entropy_and_grad.__doc__ = _doc("""Binary cross-entropy and its gradient w.r.t. the probabilities.

    ``d loss / d p = -w * (y / p - (1 - y) / (1 - p))`` where ``eps <= p <= 1 - eps``, else 0.

    Parameters
    ----------
    probs : array_like
        Predicted probabilities.
    {BINARY}
    eps : float in [0, 0.5), default 1e-7
        Probability clipping.
    {GRAD_PARAMS}
    {THREADS}

    Returns
    -------
    loss : numpy scalar or ndarray
    grad : ndarray
    """.replace("{BINARY}", _BINARY_PARAMS))


def binary_cross_entropy_with_logits(logits, targets, *, weight=None, pos_weight=None,
                                     reduction="mean", num_threads=None):
    return _binary_loss(True, logits, targets, 0.0, weight, pos_weight, reduction, num_threads,
                        False, None, None)


_POS_WEIGHT = """
    pos_weight : array_like, optional
        Weight of the positive term, broadcast along the last axis (one per class)."""

binary_cross_entropy_with_logits.__doc__ = _doc("""Binary cross-entropy on raw logits, numerically stable.

    PyTorch's formula: with ``lw = 1 + (pos_weight - 1) * y``,
    ``loss = w * ((1 - y) * x + lw * (log1p(exp(-|x|)) + max(-x, 0)))``, finite for any finite x.

    Parameters
    ----------
    logits : array_like
        Unnormalised scores.
    {BINARY}{POS}
    {THREADS}

    Returns
    -------
    loss : numpy scalar or ndarray
    """.replace("{BINARY}", _BINARY_PARAMS).replace("{POS}", _POS_WEIGHT))


def binary_cross_entropy_with_logits_and_grad(logits, targets, *, weight=None, pos_weight=None,
                                              reduction="mean", grad_loss=None, out=None,
                                              num_threads=None):
    return _binary_loss(True, logits, targets, 0.0, weight, pos_weight, reduction, num_threads,
                        True, grad_loss, out)


binary_cross_entropy_with_logits_and_grad.__doc__ = _doc("""Binary cross-entropy on logits and its gradient.

    ``d loss / d x = w * ((1 - y) - lw * sigmoid(-x))``.

    Parameters
    ----------
    logits : array_like
        Unnormalised scores.
    {BINARY}{POS}
    {GRAD_PARAMS}
    {THREADS}

    Returns
    -------
    loss : numpy scalar or ndarray
    grad : ndarray
    """.replace("{BINARY}", _BINARY_PARAMS).replace("{POS}", _POS_WEIGHT))


def logsumexp(x, axis=-1, *, keepdims=False, num_threads=None):
    return _logsumexp(x, axis, keepdims, num_threads)


logsumexp.__doc__ = _doc("""``log(sum(exp(x)))`` over one or several axes, computed stably.

    As ``scipy.special.logsumexp`` and ``torch.logsumexp``: several axes are reduced together
    (in one kernel call), an empty reduction gives ``-inf`` (the log of an empty sum), and a 0-d
    ``x`` (axis 0 or -1) gives its value.

    Parameters
    ----------
    x : array_like
        Input, float32 or float64 (other real dtypes are computed in float64).
    axis : int, tuple of int or None, default -1
        The axis or axes to reduce; None reduces all, ``()`` none.  Naming an axis twice is a
        ValueError.
    keepdims : bool, default False
        Keep the reduced axes, with length 1.
    {THREADS}

    Returns
    -------
    ndarray or numpy scalar
        x's shape without the reduced axes (a scalar when none is left), x's dtype; ``-inf`` for
        an all ``-inf`` slice (as SciPy).

    Examples
    --------
    >>> import numpy as np, xent_fast
    >>> float(xent_fast.logsumexp([[0.0, 0.0], [0.0, 0.0]], axis=(0, 1)))  # log(4)
    1.3862943611198906
    """)


def log_softmax(x, axis=-1, *, out=None, num_threads=None):
    return _softmax_rows(_LOG_SOFTMAX, x, axis, out, num_threads)


log_softmax.__doc__ = _doc("""``x - logsumexp(x)`` along an axis.

    As ``torch.log_softmax``: an empty ``x`` (any axis of length 0, the class axis included)
    gives an empty result of its shape, and a 0-d ``x`` (axis 0 or -1) gives 0.

    Parameters
    ----------
    x : array_like
        Input, float32 or float64.
    axis : int, default -1
        The class axis.
    out : ndarray, optional
        Receives the result; may be ``x`` itself.
    {THREADS}

    Returns
    -------
    ndarray
        x's shape and dtype.
    """)


def softmax(x, axis=-1, *, out=None, num_threads=None):
    return _softmax_rows(_SOFTMAX, x, axis, out, num_threads)


softmax.__doc__ = _doc("""``exp(x - logsumexp(x))`` along an axis.

    As ``torch.softmax``: an empty ``x`` (any axis of length 0, the class axis included) gives
    an empty result of its shape, and a 0-d ``x`` (axis 0 or -1) gives 1.

    Parameters
    ----------
    x : array_like
        Input, float32 or float64.
    axis : int, default -1
        The class axis.
    out : ndarray, optional
        Receives the result; may be ``x`` itself.
    {THREADS}

    Returns
    -------
    ndarray
        x's shape and dtype; each slice sums to 1.

    Examples
    --------
    >>> import xent_fast
    >>> xent_fast.softmax([[-9.0, 5.0, 10.0]])
    array([[5.56529773e-09, 6.69285089e-03, 9.93307144e-01]])
    """)
