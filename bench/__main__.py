"""``python -m bench``: see :mod:`bench.cli` or ``python -m bench --help``."""
import sys

from .cli import main

sys.exit(main())
