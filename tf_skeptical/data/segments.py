"""AudioSet segments CSV: `#` comment lines, rows `YTID, start_seconds, end_seconds, "mid1,mid2"`.

Explicit negatives (labels a human rated absent) are an optional fifth column in the same
quoted form, `"mid3,mid4"`. Without it every non-positive label is an implicit negative,
as in AudioSet's released CSVs.
"""

import csv
import dataclasses
from typing import List, Tuple

from tf_skeptical.util import files
from tf_skeptical.util.bad_input import DataError
from tf_skeptical.data.class_map import ClassMap, indices_of


@dataclasses.dataclass(frozen=True)
class Segment:
  """One labelled clip, as a row of a segments CSV."""

  clip_id: str
  start_seconds: float
  end_seconds: float
  positives: Tuple[int, ...]
  explicit_negatives: Tuple[int, ...]
  row: int  # 1-based line number in the CSV, for error messages.


def _mids(text: str) -> List[str]:
  return [m.strip() for m in text.split(",") if m.strip()]


def parse_row(fields: List[str], class_map: ClassMap, path: str, row: int) -> Segment:
  """Parses one non-comment CSV row; raises DataError naming file and row."""
  fields = [f.strip() for f in fields]
  if len(fields) not in (4, 5):
    raise DataError(path, f"expected 4 or 5 columns (YTID, start_seconds, end_seconds, "
                    f"\"positive mids\"[, \"negative mids\"]), got {len(fields)}", row=row)
  clip_id = fields[0]
  if not clip_id:
    raise DataError(path, "empty YTID", row=row)
  try:
    start, end = float(fields[1]), float(fields[2])
  except ValueError:
    raise DataError(path, f"start/end seconds {fields[1]!r}, {fields[2]!r} are not numbers",
                    row=row)
  if not 0 <= start < end:
    raise DataError(path, f"need 0 <= start_seconds < end_seconds, got {start}, {end}", row=row)
  positives = indices_of(_mids(fields[3]), class_map, path, row)
  negatives = indices_of(_mids(fields[4]), class_map, path, row) if len(fields) == 5 else []
  both = set(positives) & set(negatives)
  if both:
    names = ", ".join(class_map.mids[i] for i in sorted(both))
    raise DataError(path, f"labels both positive and explicit negative: {names}", row=row)
  return Segment(clip_id, start, end, tuple(sorted(set(positives))),
                 tuple(sorted(set(negatives))), row)


def read_segments(path: str, class_map: ClassMap, skip_bad_rows: bool = False):
  """Reads a segments CSV. Returns (segments, [(row, problem)] of skipped rows).

  Duplicate clip ids are an error: every later stage keys clips by id.
  """
  if not files.exists(path):
    raise DataError(path, "segments CSV does not exist")
  segments, skipped, seen = [], [], {}
  rows = csv.reader(files.text_lines(path), skipinitialspace=True)
  for row, fields in enumerate(rows, start=1):
    if not fields or all(not x.strip() for x in fields) or fields[0].lstrip().startswith("#"):
      continue
    try:
      segment = parse_row(fields, class_map, path, row)
      if segment.clip_id in seen:
        raise DataError(path, f"clip {segment.clip_id} already listed on row "
                        f"{seen[segment.clip_id]}", row=row)
    except DataError as e:
      if not skip_bad_rows:
        raise
      skipped.append((row, e.problem))
      continue
    seen[segment.clip_id] = row
    segments.append(segment)
  return segments, skipped


def write_segments(segments, class_map: ClassMap, path: str, header: str = "") -> None:
  """Writes segments in AudioSet layout (the fifth column only if any clip has negatives)."""
  with_negatives = any(s.explicit_negatives for s in segments)
  with files.atomic_write(path) as f:
    for line in header.splitlines():
      f.write(f"# {line}\n")
    f.write("# YTID, start_seconds, end_seconds, positive_labels"
            + (", negative_labels\n" if with_negatives else "\n"))
    for s in segments:
      pos = ",".join(class_map.mids[i] for i in s.positives)
      line = f'{s.clip_id}, {s.start_seconds:.3f}, {s.end_seconds:.3f}, "{pos}"'
      if with_negatives:
        line += ', "' + ",".join(class_map.mids[i] for i in s.explicit_negatives) + '"'
      f.write(line + "\n")
