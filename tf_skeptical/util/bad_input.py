"""Bad input: one error type that names the file and row, and the report of skipped clips.

By default every reader stops at the first problem; with `--skip_bad_clips` the problem
becomes a counted skip, listed in a CSV report next to the outputs.
"""

import collections
import contextlib
import csv
import dataclasses
import re
from typing import Iterable, Optional

from tf_skeptical.errors import UserError
from tf_skeptical.util import files


class DataError(UserError, ValueError):
  """A problem in an input file, located by file and (1-based) row where known."""

  def __init__(self, path: str, problem: str, row: Optional[int] = None):
    self.path = str(path)
    self.row = row
    self.problem = problem
    where = f"{self.path}, row {row}" if row is not None else self.path
    super().__init__(f"{where}: {problem}")


@dataclasses.dataclass(frozen=True)
class Skip:
  """One clip that was left out, and why."""

  path: str
  row: Optional[int]
  clip_id: str
  reason: str


def write_skip_report(skips: Iterable[Skip], path: str) -> collections.Counter:
  """Writes skipped clips as CSV (atomically) and returns the count per reason kind."""
  skips = sorted(skips, key=lambda s: (s.path, s.row or 0, s.clip_id))
  counts = collections.Counter(s.reason.split(":")[0] for s in skips)
  with files.atomic_write(path) as f:
    writer = csv.writer(f)
    writer.writerow(["file", "row", "clip_id", "reason"])
    for s in skips:
      writer.writerow([s.path, "" if s.row is None else s.row, s.clip_id, s.reason])
  return counts


@contextlib.contextmanager
def worker_errors_as_data_errors():
  """Re-raises a DataError that a Beam worker raised (and Beam wrapped) as a DataError.

  Runners wrap worker exceptions in their own; the user should still see only
  "file, row N: problem".
  """
  try:
    yield
  except DataError:
    raise
  except Exception as e:  # runners differ in what they wrap with
    found = re.search(r"DataError: (.+?)(?: \[while running|$)", str(e), re.S)
    if not found:
      raise
    path, _, problem = found.group(1).strip().partition(": ")
    raise DataError(path, problem) from e
