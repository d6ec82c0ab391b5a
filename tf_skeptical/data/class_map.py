"""The class map: CSV `index,mid,display_name`, AudioSet's class_labels_indices.csv layout."""

import csv
import dataclasses
import functools
from typing import Dict, Sequence, Tuple

from tf_skeptical.util import files
from tf_skeptical.util.bad_input import DataError

HEADER = ("index", "mid", "display_name")
CLASS_MAP_FILE = "class_map.csv"  # the class map's name inside examples and export directories


@dataclasses.dataclass(frozen=True)
class ClassMap:
  mids: Tuple[str, ...]
  display_names: Tuple[str, ...]

  def __len__(self) -> int:
    return len(self.mids)

  @functools.cached_property
  def index_of(self) -> Dict[str, int]:
    return {mid: i for i, mid in enumerate(self.mids)}


def read_class_map(path: str) -> ClassMap:
  """Reads and validates a class map: indices 0..C-1 in order, no gaps, no repeats."""
  if not files.exists(path):
    raise DataError(path, "class map file does not exist")
  rows = list(csv.reader(files.text_lines(path)))
  if not rows or tuple(c.strip() for c in rows[0]) != HEADER:
    raise DataError(path, f"expected header {','.join(HEADER)}", row=1)
  mids, names, seen = [], [], {}
  for row_number, row in enumerate(rows[1:], start=2):
    if not row or all(not c.strip() for c in row):
      continue
    if len(row) != 3:
      raise DataError(path, f"expected 3 columns, got {len(row)}", row=row_number)
    index_text, mid, name = (c.strip() for c in row)
    try:
      index = int(index_text)
    except ValueError:
      raise DataError(path, f"index {index_text!r} is not an integer", row=row_number)
    if index != len(mids):
      problem = "repeats" if index < len(mids) else "skips"
      raise DataError(
          path, f"index {index} {problem} an index (expected {len(mids)}): "
          "indices must run 0, 1, 2, ... without gaps or repeats", row=row_number)
    if not mid:
      raise DataError(path, "empty mid", row=row_number)
    if mid in seen:
      raise DataError(path, f"mid {mid} already used on row {seen[mid]}", row=row_number)
    seen[mid] = row_number
    mids.append(mid)
    names.append(name)
  if not mids:
    raise DataError(path, "class map has no classes")
  return ClassMap(tuple(mids), tuple(names))


def write_class_map(class_map: ClassMap, path: str) -> None:
  with files.atomic_write(path) as f:
    writer = csv.writer(f)
    writer.writerow(HEADER)
    for i, (mid, name) in enumerate(zip(class_map.mids, class_map.display_names)):
      writer.writerow([i, mid, name])


def indices_of(mids: Sequence[str], class_map: ClassMap, path: str, row: int):
  """Maps mids to class indices, or raises naming the unknown mid."""
  index_of = class_map.index_of
  out = []
  for mid in mids:
    if mid not in index_of:
      raise DataError(path, f"unknown label mid {mid!r} (not in the class map)", row=row)
    out.append(index_of[mid])
  return out
