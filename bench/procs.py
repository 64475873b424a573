"""Starting and talking to worker processes (:mod:`bench.worker`) over JSON lines."""
from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import tempfile
import threading

from .threads import worker_env

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the checkout: bench/..


class WorkerError(RuntimeError):
    """The worker died, hung past its time-out or answered nonsense."""


class WorkerProcess:
    """One ``python -m bench.worker FAMILY`` subprocess and its reply queue."""

    def __init__(self, family: str, threads: int, verbose: bool = False):
        self.family = family
        self.stderr = None if verbose else tempfile.TemporaryFile(mode="w+b")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.worker", family, "--threads", str(threads)],
            cwd=ROOT, env=worker_env(threads, family), text=True, bufsize=1,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr)
        self.replies = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.replies.put(line)
        self.replies.put(None)  # EOF: the worker exited

    def receive(self, timeout: float) -> dict:
        """The next reply; raises WorkerError on exit, time-out or a non-JSON line."""
        try:
            line = self.replies.get(timeout=timeout)
        except queue.Empty:
            self.kill()
            raise WorkerError(f"{self.family} worker timed out after {timeout:.0f} s") from None
        if line is None:
            self.proc.wait()
            raise WorkerError(f"{self.family} worker exited (code {self.proc.returncode}); "
                              f"stderr tail:\n{self.stderr_tail()}")
        try:
            return json.loads(line)
        except json.JSONDecodeError:
            raise WorkerError(f"{self.family} worker sent a non-JSON line: {line[:200]!r}") from None

    def request(self, obj: dict, timeout: float) -> dict:
        """Send one request and wait for its reply."""
        try:
            self.proc.stdin.write(json.dumps(obj) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # the reader reports the exit
        return self.receive(timeout)

    def stderr_tail(self, n: int = 2000) -> str:
        """The last ``n`` characters the worker wrote to stderr (when captured)."""
        if self.stderr is None:
            return "(stderr not captured)"
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")[-n:]

    def close(self):
        """Ask the worker to quit; kill it if it does not within 10 s."""
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write('{"op": "quit"}\n')
                self.proc.stdin.flush()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.kill()

    def kill(self):
        """Kill this worker (only this process, by its own handle)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
