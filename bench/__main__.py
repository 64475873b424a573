"""``python -m bench``: see :mod:`bench.cli` or ``python -m bench --help``;
``python -m bench linear``: the fused linear + cross-entropy, see :mod:`bench.linear`;
``python -m bench dask``: a Dask cluster against one process, see :mod:`bench.cluster`."""
import sys

if sys.argv[1:2] == ["linear"]:
    from .linear import main

    sys.exit(main(sys.argv[2:]))

if sys.argv[1:2] == ["dask"]:
    from .cluster import main

    sys.exit(main(sys.argv[2:]))

from .cli import main  # noqa: E402

sys.exit(main())
