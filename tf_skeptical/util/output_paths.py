"""Output paths checked before any work: a stage replaces only what that stage writes.

A directory output is built beside its target and swapped in (files.publish_directory),
and a training run writes into its model directory: either would take a user's file or
folder with it if the path named one by mistake. So every stage calls `check_directory`
(or `check_file`) on its outputs first, and a path that exists and is not what the stage
writes is refused in one line that names it, before anything is created. A location that
cannot be written (a part of the path is a file, a read-only or foreign directory) is
refused the same way.
"""

import csv
import dataclasses
import os
from typing import Optional, Sequence

from tf_skeptical.util import files
from tf_skeptical.util.bad_input import DataError


@dataclasses.dataclass(frozen=True)
class OutputKind:
  """What a stage writes: `what` in messages; `own`, names of which any one present marks
  a directory as that stage's (its manifest, or the parts it writes first)."""

  what: str
  own: Sequence[str]


def check_directory(path: str, kind: OutputKind, flag: str = "--output_dir") -> None:
  """Refuses `path` (a DataError) unless it is new, empty, or already `kind`'s."""
  if not files.exists(path):
    check_creatable(path, flag)
    return
  if not files.isdir(path):
    raise DataError(path, f"exists and is a file, not a {kind.what}: give {flag} a new or "
                    "empty directory (the file is kept as it is)")
  entries = files.listdir(path)
  if entries and not set(entries) & set(kind.own):
    shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
    raise DataError(path, f"holds other files ({shown}) and is not a {kind.what} (it has "
                    f"none of {', '.join(kind.own)}): give {flag} a new or empty directory "
                    "(nothing was changed)")
  if not files.is_url(path):  # its staging directory and lock go beside it
    _check_writable(os.path.dirname(os.path.abspath(path)), path, flag)
    _check_writable(path, path, flag)


def check_file(path: str, what: str, header: Optional[Sequence[str]] = None,
               flag: str = "") -> None:
  """Refuses a file output `path` that is a directory, or an existing file whose first row
  is not `header` (so not one this stage wrote), or that cannot be created."""
  name = f"give {flag} another path" if flag else "choose another path"
  if not files.exists(path):
    check_creatable(path, flag)
    return
  if files.isdir(path):
    raise DataError(path, f"is a directory, not a {what}: {name}")
  if header is not None:
    with files.open(path) as f:
      first = next(csv.reader([f.readline().lstrip("\ufeff")]), [])
    if list(first) != list(header):
      raise DataError(path, f"exists and is not a {what} (its first row is not "
                      f"{','.join(header)}): {name} (the file is kept as it is)")
  _check_writable(os.path.dirname(files.absolute(path)) or ".", path, flag)


def check_creatable(path: str, flag: str = "") -> None:
  """Refuses a new path whose nearest existing ancestor is a file or cannot be written."""
  if files.is_url(path):
    return  # a bucket says so when written; nothing to walk
  ancestor = os.path.dirname(os.path.abspath(path))
  while not os.path.exists(ancestor):
    ancestor = os.path.dirname(ancestor)
  if not os.path.isdir(ancestor):
    raise DataError(path, f"cannot be created: {ancestor} is a file, not a directory"
                    f"{f' (give {flag} another path)' if flag else ''}")
  _check_writable(ancestor, path, flag)


def _check_writable(directory: str, path: str, flag: str) -> None:
  if files.is_url(directory) or os.access(directory, os.W_OK | os.X_OK):
    return
  why = "on a read-only file system" if _read_only(directory) else "not writable by this user"
  raise DataError(path, f"cannot be written: {directory} is {why}"
                  f"{f' (give {flag} another path)' if flag else ''}")


def _read_only(directory: str) -> bool:
  try:
    return bool(os.statvfs(directory).f_flag & os.ST_RDONLY)
  except OSError:
    return False
