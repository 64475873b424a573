"""Loss layers for training loops written in plain NumPy, in the shape of ``torch.nn`` losses.

A layer holds its options; ``forward(input, targets)`` (or calling the layer) returns the loss and
remembers *references* to the two arrays; ``backward(grad_loss=None)`` returns d(loss)/d(input)::

    loss_fn = xent_fast.CrossEntropyLoss(label_smoothing=0.1)
    loss = loss_fn(logits, y)          # forward
    dlogits = loss_fn.backward()       # gradient, the logits' shape and dtype

What is kept between the two calls is only what backward needs: the two references, no copy, no
softmax, nothing of size N x C.  ``backward`` calls the fused ``*_and_grad`` function, which
recomputes each row's log-sum-exp in the same pass that writes the gradient row (one read of the
logits, the same a stored softmax would cost), so the only N x C memory is the gradient itself,
and none at all with ``out=`` or ``inplace=True``.  ``forward_backward`` does both in one pass.

Every number comes from xent_fast's public functions; this module only routes arguments.
"""
import numpy as np

from ._validate import as_array
from .losses import (binary_cross_entropy, binary_cross_entropy_and_grad,
                     binary_cross_entropy_with_logits, binary_cross_entropy_with_logits_and_grad,
                     categorical_cross_entropy, categorical_cross_entropy_and_grad, cross_entropy,
                     cross_entropy_and_grad)
from .linear import linear_cross_entropy, linear_cross_entropy_and_grad

__all__ = ["CrossEntropyLoss", "CategoricalCrossEntropyLoss", "BinaryCrossEntropyLoss",
           "BinaryCrossEntropyWithLogitsLoss", "LinearCrossEntropyLoss"]


class _Loss:
    """The shared machinery of the loss layers (not public).

    A subclass names its two functions (``_loss`` and ``_loss_and_grad``, from xent_fast) and its
    options (``_options``, the functions' keyword arguments apart from ``grad_loss`` and ``out``),
    and stores each option as an attribute of the same name in ``__init__``.  Options are read
    from the attributes at every call, so ``layer.reduction = "sum"`` takes effect at the next
    forward; their values are checked by the functions, at the first forward.
    """

    _loss = None            # f(input, targets, **options) -> loss
    _loss_and_grad = None   # f(input, targets, **options, grad_loss=, out=) -> (loss, grad)
    _options = ()

    def __init__(self, **options):
        for name, value in options.items():
            setattr(self, name, value)
        self._saved = None  # (input, targets) of the last forward, while backward may use them

    def _kwargs(self):
        return {name: getattr(self, name) for name in self._options}

    def forward(self, input, targets):
        """Compute the loss and remember the arguments for :meth:`backward`.

        Parameters
        ----------
        input : array_like
            The prediction: logits, or probabilities for the probability-based losses.
        targets : array_like
            The targets, as the layer's function accepts them.

        Returns
        -------
        loss : numpy scalar or ndarray
            A scalar for ``reduction='mean'``/``'sum'``, one value per row (or element) for
            ``'none'``.

        Notes
        -----
        The layer keeps references to ``input`` and ``targets`` (array-likes are converted once
        with ``np.asarray``), not copies: modifying them in place before :meth:`backward` changes
        the gradient it returns.
        """
        self._saved = None  # a failed forward leaves nothing stale for backward
        input, targets = as_array(input, "input"), as_array(targets, "targets")
        loss = self._loss(input, targets, **self._kwargs())
        self._saved = (input, targets)
        return loss

    def __call__(self, input, targets):
        """Same as :meth:`forward`."""
        return self.forward(input, targets)

    def backward(self, grad_loss=None, *, out=None, inplace=False):
        """The gradient of the last forward's loss with respect to its ``input``.

        Parameters
        ----------
        grad_loss : array_like, optional
            The upstream gradient d(total)/d(loss), broadcastable to the loss's shape (a scalar
            for 'mean'/'sum'); default 1.
        out : ndarray, optional
            Receives the gradient: a writable array of the input's shape and dtype.
        inplace : bool, default False
            Write the gradient over the forward's ``input`` array itself (no new memory).  The
            input is then gone, so a further ``backward`` raises RuntimeError until the next
            forward.

        Returns
        -------
        grad : ndarray
            d(loss)/d(input) scaled by ``grad_loss``: the input's shape and dtype (``out``, or the
            input itself with ``inplace=True``).

        Raises
        ------
        RuntimeError
            When there is no forward to differentiate: before the first forward, after a forward
            that raised, or after an in-place backward.
        ValueError, TypeError
            For ``out`` given together with ``inplace=True``, and as the layer's function does
            for a bad ``grad_loss`` or ``out`` (nothing is written then and the layer's state
            is kept).
        """
        if self._saved is None:
            raise RuntimeError(
                f"{type(self).__name__}.backward() needs a forward() first: there is no forward "
                "to differentiate (none yet, the last one raised, or an in-place backward "
                "overwrote its input)")
        return self._run(*self._saved, grad_loss, out, inplace)[1]

    def forward_backward(self, input, targets, grad_loss=None, *, out=None, inplace=False):
        """The loss and its gradient in one fused pass (:meth:`forward` then :meth:`backward`).

        Parameters are those of :meth:`forward` and :meth:`backward`; ``inplace=True`` writes the
        gradient over ``input`` (which must then be a float32/float64 ndarray).

        Returns
        -------
        loss : numpy scalar or ndarray
            As :meth:`forward`.
        grad : ndarray
            As :meth:`backward`.
        """
        self._saved = None
        return self._run(as_array(input, "input"), as_array(targets, "targets"), grad_loss, out,
                         inplace)

    def _run(self, input, targets, grad_loss, out, inplace):
        """Call the fused function; keep (input, targets) unless the gradient overwrote input."""
        if inplace:
            if out is not None:
                raise ValueError("give out= or inplace=True, not both")
            out = input
        loss, grad = self._loss_and_grad(input, targets, **self._kwargs(),
                                               grad_loss=grad_loss, out=out)
        # Conservative: an `out` that may overlap the input has destroyed it for a later backward.
        overwritten = out is not None and np.may_share_memory(out, input)
        self._saved = None if overwritten else (input, targets)
        return loss, grad

    def __repr__(self):
        return "%s(%s)" % (type(self).__name__,
                           ", ".join(f"{k}={getattr(self, k)!r}" for k in self._options))


class CrossEntropyLoss(_Loss):
    """Cross-entropy from raw logits, as a layer: :func:`xent_fast.cross_entropy` forward,
    :func:`xent_fast.cross_entropy_and_grad` backward.

    The options are those of :func:`xent_fast.cross_entropy` and have its meaning; with
    ``eps=0`` the loss is ``torch.nn.CrossEntropyLoss``'s (class axis ``axis`` instead of dim 1).

    Parameters
    ----------
    axis : int, default -1
        The class axis of the logits.
    weight : array_like of shape (C,), optional
        A weight per class; ones when None.
    ignore_index : int, default -100
        Rows with this class index contribute 0 to the loss and the gradient.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
    label_smoothing : float in [0, 1], default 0
    eps : float in [0, 0.5), default 0
        Clips probabilities to ``[eps, 1 - eps]``; clipped entries get zero gradient.
    z_loss : float >= 0, default 0
        Adds ``z_loss * logsumexp(z)**2`` per row that is not ignored.
    softcap : float > 0, optional
        Soft-caps the logits: ``z = softcap * tanh(z / softcap)``.
    logit_scale : float, default 1
        Multiplies the logits first.
    sample_weight : array_like, optional
        Per-row weights of the next forward (broadcast to the targets' row shape); they change
        from batch to batch, so set the attribute before each forward
        (``loss_fn.sample_weight = w``).
    num_threads : int, optional
        OpenMP threads; None uses OpenMP's default.  Results do not depend on it.

    Examples
    --------
    >>> import numpy as np, xent_fast
    >>> loss_fn = xent_fast.CrossEntropyLoss()
    >>> logits = np.log([[0.7, 0.1, 0.2], [0.1, 0.5, 0.4]])
    >>> round(float(loss_fn(logits, [0, 1])), 8)
    0.52491106
    >>> loss_fn.backward().round(3)
    array([[-0.15,  0.05,  0.1 ],
           [ 0.05, -0.25,  0.2 ]])
    """

    _loss = staticmethod(cross_entropy)
    _loss_and_grad = staticmethod(cross_entropy_and_grad)
    _options = ("axis", "weight", "ignore_index", "reduction", "label_smoothing", "eps",
                "z_loss", "softcap", "logit_scale", "sample_weight", "num_threads")

    def __init__(self, *, axis=-1, weight=None, ignore_index=-100, reduction="mean",
                 label_smoothing=0.0, eps=0.0, z_loss=0.0, softcap=None, logit_scale=1.0,
                 sample_weight=None, num_threads=None):
        super().__init__(axis=axis, weight=weight, ignore_index=ignore_index,
                         reduction=reduction, label_smoothing=label_smoothing, eps=eps,
                         z_loss=z_loss, softcap=softcap, logit_scale=logit_scale,
                         sample_weight=sample_weight, num_threads=num_threads)


class CategoricalCrossEntropyLoss(_Loss):
    """Categorical cross-entropy on probabilities (softmax outputs), as a layer:
    :func:`xent_fast.categorical_cross_entropy` forward, its ``_and_grad`` backward
    (the gradient with respect to the probabilities).

    Prefer :class:`CrossEntropyLoss` on the logits when you have them: it is stable and its
    gradient skips the softmax's Jacobian.

    Parameters
    ----------
    axis : int, default -1
        The class axis of the probabilities.
    eps : float in (0, 0.5), default 1e-7
        Probabilities are clipped to ``[eps, 1 - eps]``; clipped entries get zero gradient.
    weight, ignore_index, reduction, label_smoothing, num_threads
        As in :class:`CrossEntropyLoss`.
    """

    _loss = staticmethod(categorical_cross_entropy)
    _loss_and_grad = staticmethod(categorical_cross_entropy_and_grad)
    _options = ("axis", "eps", "weight", "ignore_index", "reduction", "label_smoothing",
                "num_threads")

    def __init__(self, *, axis=-1, eps=1e-7, weight=None, ignore_index=-100, reduction="mean",
                 label_smoothing=0.0, num_threads=None):
        super().__init__(axis=axis, eps=eps, weight=weight, ignore_index=ignore_index,
                         reduction=reduction, label_smoothing=label_smoothing,
                         num_threads=num_threads)


class BinaryCrossEntropyLoss(_Loss):
    """Binary cross-entropy on probabilities, element-wise, as a layer (``torch.nn.BCELoss``
    with clipping): :func:`xent_fast.binary_cross_entropy` forward, its ``_and_grad`` backward.

    Parameters
    ----------
    eps : float, default 1e-7
        Probabilities are clipped to ``[eps, 1 - eps]``; clipped entries get zero gradient.
    weight : array_like, optional
        Broadcasts against the probabilities.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        'mean' averages over all elements.
    num_threads : int, optional
        As in :class:`CrossEntropyLoss`.
    """

    _loss = staticmethod(binary_cross_entropy)
    _loss_and_grad = staticmethod(binary_cross_entropy_and_grad)
    _options = ("eps", "weight", "reduction", "num_threads")

    def __init__(self, *, eps=1e-7, weight=None, reduction="mean", num_threads=None):
        super().__init__(eps=eps, weight=weight, reduction=reduction, num_threads=num_threads)


class BinaryCrossEntropyWithLogitsLoss(_Loss):
    """Binary cross-entropy on raw logits, element-wise and stable, as a layer
    (``torch.nn.BCEWithLogitsLoss``): :func:`xent_fast.binary_cross_entropy_with_logits`
    forward, its ``_and_grad`` backward.

    Parameters
    ----------
    weight : array_like, optional
        Broadcasts against the logits.
    pos_weight : array_like, optional
        Weight of the positive term, broadcast along the last axis.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        'mean' averages over all elements.
    num_threads : int, optional
        As in :class:`CrossEntropyLoss`.
    """

    _loss = staticmethod(binary_cross_entropy_with_logits)
    _loss_and_grad = staticmethod(binary_cross_entropy_with_logits_and_grad)
    _options = ("weight", "pos_weight", "reduction", "num_threads")

    def __init__(self, *, weight=None, pos_weight=None, reduction="mean", num_threads=None):
        super().__init__(weight=weight, pos_weight=pos_weight, reduction=reduction,
                         num_threads=num_threads)


class LinearCrossEntropyLoss(_Loss):
    """A linear output layer and cross-entropy, fused, as a layer:
    :func:`xent_fast.linear_cross_entropy` forward, its ``_and_grad`` backward.

    ``forward(input, linear_weight, targets, linear_bias=None)`` returns the loss of the logits
    ``input @ linear_weight.T + linear_bias`` and keeps references to its arguments (no logits:
    they are never held whole); ``backward(grad_loss=None)`` recomputes them a chunk at a time and
    returns ``(grad_input, grad_linear_weight)``, plus ``grad_linear_bias`` when a bias was given.
    ``forward_backward`` does both in one pass over the chunks (half the matrix products of
    forward then backward): use it in a training loop.

    Parameters
    ----------
    weight, ignore_index, reduction, label_smoothing, eps
        As in :class:`CrossEntropyLoss`.
    z_loss, softcap, logit_scale
        As in :func:`xent_fast.linear_cross_entropy` (passed on when not at their defaults).
    chunk_size : int, optional
        Rows per chunk; None chooses from a memory budget (see
        :func:`xent_fast.linear_cross_entropy`).
    num_threads : int, optional
        As in :func:`xent_fast.linear_cross_entropy`.

    Examples
    --------
    >>> import numpy as np, xent_fast
    >>> rng = np.random.default_rng(0)
    >>> h, W, b = rng.standard_normal((5, 3)), rng.standard_normal((7, 3)), np.zeros(7)
    >>> loss_fn = xent_fast.LinearCrossEntropyLoss(chunk_size=2)
    >>> loss = loss_fn(h, W, [0, 1, 2, 3, 4], b)
    >>> [g.shape for g in loss_fn.backward()]
    [(5, 3), (7, 3), (7,)]
    """

    _loss = staticmethod(linear_cross_entropy)
    _loss_and_grad = staticmethod(linear_cross_entropy_and_grad)
    _options = ("weight", "ignore_index", "reduction", "label_smoothing", "eps", "z_loss",
                "softcap", "logit_scale", "chunk_size", "num_threads")

    def __init__(self, *, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0,
                 eps=0.0, z_loss=0.0, softcap=None, logit_scale=1.0, chunk_size=None,
                 num_threads=None):
        super().__init__(weight=weight, ignore_index=ignore_index, reduction=reduction,
                         label_smoothing=label_smoothing, eps=eps, z_loss=z_loss,
                         softcap=softcap, logit_scale=logit_scale, chunk_size=chunk_size,
                         num_threads=num_threads)

    def forward(self, input, linear_weight, targets, linear_bias=None, *, sample_weight=None):
        """Compute the loss and remember the arguments for :meth:`backward`.

        Parameters
        ----------
        input : array_like of shape (..., D)
            Hidden states.
        linear_weight : array_like of shape (V, D)
            The output layer's weight.
        targets : array_like
            Class indices of shape ``input.shape[:-1]`` or probabilities of shape
            ``input.shape[:-1] + (V,)``.
        linear_bias : array_like of shape (V,), optional
            The output layer's bias.
        sample_weight : array_like, optional
            Per-row weights, as in :func:`xent_fast.linear_cross_entropy`.

        Returns
        -------
        loss : numpy scalar or ndarray
            A scalar for 'mean'/'sum', one value per row for 'none'.

        Notes
        -----
        References to the arguments are kept, not copies: modifying them in place (an
        optimiser step) before :meth:`backward` changes the gradients it returns.
        """
        self._saved = None
        args = self._arrays(input, linear_weight, targets, linear_bias, sample_weight)
        loss = self._loss(*args[:3], linear_bias=args[3], sample_weight=args[4],
                          **self._kwargs())
        self._saved = args
        return loss

    def __call__(self, input, linear_weight, targets, linear_bias=None, *, sample_weight=None):
        """Same as :meth:`forward`."""
        return self.forward(input, linear_weight, targets, linear_bias,
                            sample_weight=sample_weight)

    def backward(self, grad_loss=None):
        """The gradients of the last forward's loss.

        Parameters
        ----------
        grad_loss : array_like, optional
            The upstream gradient, broadcastable to the loss's shape; default 1.

        Returns
        -------
        grad_input, grad_linear_weight : ndarray
            d(loss)/d(input) and d(loss)/d(linear_weight).
        grad_linear_bias : ndarray
            d(loss)/d(linear_bias); only when the forward had a bias.

        Raises
        ------
        RuntimeError
            Before the first forward or after a forward that raised.
        """
        if self._saved is None:
            raise RuntimeError(
                f"{type(self).__name__}.backward() needs a forward() first: there is no forward "
                "to differentiate (none yet, or the last one raised)")
        return self._run(self._saved, grad_loss)[1:]

    def forward_backward(self, input, linear_weight, targets, linear_bias=None, grad_loss=None,
                         *, sample_weight=None):
        """The loss and its gradients in one pass over the chunks.

        Parameters are those of :meth:`forward` and :meth:`backward`.

        Returns
        -------
        loss : numpy scalar or ndarray
        grad_input, grad_linear_weight[, grad_linear_bias] : ndarray
            As :meth:`backward`.
        """
        self._saved = None
        args = self._arrays(input, linear_weight, targets, linear_bias, sample_weight)
        result = self._run(args, grad_loss)
        self._saved = args
        return result

    @staticmethod
    def _arrays(input, linear_weight, targets, linear_bias, sample_weight):
        return tuple(None if a is None else np.asarray(a)
                     for a in (input, linear_weight, targets, linear_bias, sample_weight))

    def _run(self, args, grad_loss):
        return self._loss_and_grad(*args[:3], linear_bias=args[3], sample_weight=args[4],
                                   grad_loss=grad_loss, **self._kwargs())
