"""Progress display on stderr: tqdm when installed, else a plain fallback.

The fallback rewrites one line (``\\r``) on a terminal and prints a line per step otherwise.
"""
from __future__ import annotations

import sys

try:
    from tqdm import tqdm as _tqdm
except ImportError:  # tqdm is in the [bench] extra, not required
    _tqdm = None


class Progress:
    """A step counter with a description; ``write`` prints a message without breaking the bar."""

    def __init__(self, total: int, enabled: bool = True):
        self.total, self.done, self.enabled = total, 0, enabled
        self.bar = None
        if enabled and _tqdm is not None:
            self.bar = _tqdm(total=total, file=sys.stderr, unit="step", dynamic_ncols=True,
                             bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}]")
        self.tty = sys.stderr.isatty()

    def step(self, desc: str):
        """Announce what runs next (before it runs)."""
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.set_description_str(desc, refresh=True)
        elif self.tty:
            sys.stderr.write(f"\r[{self.done:>3}/{self.total}] {desc:<60}")
            sys.stderr.flush()
        else:
            sys.stderr.write(f"[{self.done:>3}/{self.total}] {desc}\n")

    def advance(self, n: int = 1):
        """Count ``n`` finished steps."""
        self.done += n
        if self.bar is not None:
            self.bar.update(n)

    def write(self, msg: str):
        """Print a message line to stderr (above the bar)."""
        if self.bar is not None:
            self.bar.write(msg, file=sys.stderr)
        else:
            if self.tty and self.enabled:
                sys.stderr.write("\r" + " " * 70 + "\r")
            sys.stderr.write(msg + "\n")
            sys.stderr.flush()

    def close(self):
        """Finish the display."""
        if self.bar is not None:
            self.bar.close()
        elif self.enabled and self.tty:
            sys.stderr.write("\n")
