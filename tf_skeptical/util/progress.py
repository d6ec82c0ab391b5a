"""Periodic progress lines for long work inside Beam workers, where a bar cannot draw."""

import time

from absl import logging


class ProgressLog:
  """Counts items and logs `what: n/total (rate/s)` at most every `every_seconds`."""

  def __init__(self, what: str, total: int = 0, every_seconds: float = 10.0):
    self.what, self.total, self.every = what, total, every_seconds
    self.count = 0
    self.start = self.last = time.monotonic()

  def add(self, n: int = 1) -> None:
    self.count += n
    now = time.monotonic()
    if now - self.last >= self.every:
      self.last = now
      self.log()

  def log(self) -> None:
    rate = self.count / max(time.monotonic() - self.start, 1e-9)
    of_total = f"/{self.total}" if self.total else ""
    logging.info("%s: %d%s%s (%.1f/s)", self.what, self.count, of_total, _MARK, rate)


_MARK = " on this worker"


def is_progress_line(text: str) -> bool:
  """Whether a log message is a ProgressLog line (what the binaries keep of a Beam worker's
  log)."""
  return _MARK + " (" in text
