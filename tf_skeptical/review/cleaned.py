"""The cleaned dataset a listening test hands back, for a maintainer to publish.

`export` writes a directory with
  train_segments.csv  the train segments CSV the examples were prepared from, in AudioSet's
                      layout, with every confirmed (present) entry added to its clip's
                      positive labels and every rejected (absent) entry in the explicit
                      negatives column (segments.py; written only when there are some);
  changes.csv         one row per present or absent verdict: clip_id, mid, display_name,
                      verdict, teacher_score (unsure ones change nothing and are left out).
Written under a temporary name and put in place whole.
"""

import csv
import dataclasses
import os

from tf_skeptical import errors
from tf_skeptical.data import examples
from tf_skeptical.data.segments import read_segments, write_segments
from tf_skeptical.review import verdicts as verdicts_lib
from tf_skeptical.util import files, output_paths, provenance

SEGMENTS = "train_segments.csv"
CHANGES = "changes.csv"
CHANGES_HEADER = ["clip_id", "mid", "display_name", "verdict", "teacher_score"]
OUTPUT = output_paths.OutputKind("cleaned labels directory", (CHANGES,))


def export(verdicts_path: str, examples_dir: str, out_dir: str) -> dict:
  """Writes out_dir (module docstring) from the verdicts on the train examples' clips;
  returns the counts. The verdicts must answer these examples' clip set and class map."""
  output_paths.check_directory(out_dir, OUTPUT)
  info = examples.read_info(examples_dir)
  source = info.extra.get("source")
  if not source or not files.exists(source):
    raise errors.BadValue(f"{examples_dir}: its segments CSV ({source}) is not there (examples "
                          "prepared from embeddings, or the CSV moved): nothing to clean")
  answered = verdicts_lib.read(verdicts_path)
  provenance.check_made_from(answered.made_from, f"verdicts {verdicts_path}", info)
  segments, _ = read_segments(source, info.class_map)
  by_id = {s.clip_id: i for i, s in enumerate(segments)}
  answered = verdicts_lib.read(verdicts_path, info.class_map.mids, list(by_id))
  index = info.class_map.index_of
  added, rejected = {}, {}
  for (clip_id, mid), a in answered.answers.items():
    if a.verdict == verdicts_lib.PRESENT:
      added.setdefault(clip_id, set()).add(index[mid])
    elif a.verdict == verdicts_lib.ABSENT:
      rejected.setdefault(clip_id, set()).add(index[mid])
  cleaned = [dataclasses.replace(
      s, positives=tuple(sorted(set(s.positives) | added.get(s.clip_id, set()))),
      explicit_negatives=tuple(sorted(
          (set(s.explicit_negatives) | rejected.get(s.clip_id, set()))
          - added.get(s.clip_id, set()))))
      for s in segments]
  counts = answered.counts()
  header = (f"{os.path.basename(source)} cleaned by a listening test ({verdicts_path}): "
            f"{counts['present']} labels added, {counts['absent']} entries confirmed absent")
  with files.output_lock(out_dir), files.staged(out_dir) as tmp:
    write_segments(cleaned, info.class_map, os.path.join(tmp, SEGMENTS), header=header)
    with files.atomic_write(os.path.join(tmp, CHANGES)) as f:
      w = csv.writer(f, lineterminator="\n")
      w.writerow(CHANGES_HEADER)
      for a in answered.answers.values():
        if a.verdict != verdicts_lib.UNSURE:
          w.writerow([a.clip_id, a.mid, a.display_name, a.verdict, f"{a.teacher_score:.5f}"])
    files.publish_directory(tmp, out_dir, last=CHANGES)
  return counts
