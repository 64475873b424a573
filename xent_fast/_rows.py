"""The "rows" view of arrays: a class axis plus row axes, strides in elements, no copy.

The kernels walk rows in C order over the row axes (every axis but the class axis).  Adjacent row
axes that every array steps through as one (stride of the outer = size * stride of the inner) are
merged, and axes of length 1 dropped, so the common layouts reach the kernels as a single row axis.
"""


def rows_layout(shape, axis, strides_list):
    """Describe arrays of `shape` (class axis `axis`) for the kernels.

    Parameters
    ----------
    shape : tuple of int
        The full shape, class axis included.
    axis : int
        The class axis, non-negative.
    strides_list : list of tuple of int
        Element strides of each array over the full shape (0 on the class axis for arrays that
        have one value per row, such as class-index targets).

    Returns
    -------
    n_class : int
    row_shape : tuple of int
    strides : list of (s_class, row_strides) tuples, one per array
    """
    n_class = shape[axis]
    dims = [d for d in range(len(shape)) if d != axis]
    sizes = [shape[d] for d in dims]
    per_array = [[s[d] for d in dims] for s in strides_list]
    if 0 in sizes:
        sizes, per_array = [0], [[0] for _ in strides_list]
    else:
        keep = [k for k, n in enumerate(sizes) if n != 1]
        sizes = [sizes[k] for k in keep]
        per_array = [[st[k] for k in keep] for st in per_array]
        k = len(sizes) - 1
        while k > 0:
            # Merge axis k-1 into axis k when every array steps through both as one.
            if all(st[k - 1] == sizes[k] * st[k] for st in per_array):
                sizes[k] *= sizes[k - 1]
                del sizes[k - 1]
                for st in per_array:
                    del st[k - 1]
            k -= 1
    strides = [(s[axis], tuple(st)) for s, st in zip(strides_list, per_array)]
    return n_class, tuple(sizes), strides
