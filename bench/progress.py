"""Progress display on stderr: a tqdm bar when installed and stderr is a terminal, else plain lines.

The plain fallback rewrites one line (``\\r``) on a terminal and prints a line per step otherwise
(CI logs), so logs stay readable.
"""
from __future__ import annotations

import sys

try:
    from tqdm import tqdm as _tqdm
except ImportError:  # tqdm is in the [bench] extra, not required
    _tqdm = None


class Progress:
    """A step counter with a description; ``write`` prints a message without breaking the bar."""

    def __init__(self, enabled: bool = True):
        self.total, self.done, self.enabled = 0, 0, enabled
        self.tty = sys.stderr.isatty()
        self.bar = None

    def start(self, total: int):
        """Begin counting ``total`` steps (messages before this print as plain lines)."""
        self.total = total
        if self.enabled and self.tty and _tqdm is not None:
            self.bar = _tqdm(total=total, file=sys.stderr, unit="step", dynamic_ncols=True,
                             bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} "
                                        "[{elapsed}<{remaining}]")

    def step(self, desc: str):
        """Announce what runs next (before it runs)."""
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.set_description_str(desc, refresh=True)
        elif self.tty:
            sys.stderr.write(f"\r[{self.done:>3}/{self.total}] {desc:<70}")
            sys.stderr.flush()
        else:
            sys.stderr.write(f"[{self.done:>3}/{self.total}] {desc}\n")
            sys.stderr.flush()

    def advance(self, n: int = 1):
        """Count ``n`` finished steps."""
        self.done += n
        if self.bar is not None:
            self.bar.update(n)

    def write(self, msg: str):
        """Print a message line to stderr (above the bar)."""
        if self.bar is not None:
            self.bar.write(msg, file=sys.stderr)
            return
        if self.tty and self.enabled and self.total:
            sys.stderr.write("\r" + " " * 80 + "\r")
        sys.stderr.write(msg + "\n")
        sys.stderr.flush()

    def close(self):
        """Finish the display."""
        if self.bar is not None:
            self.bar.close()
        elif self.enabled and self.tty and self.total:
            sys.stderr.write("\n")
