"""The flag stage, as tfsk_flag and the sweep both run it: scores in, a flags directory out.

A flags directory holds flags.npz (flagging.py), summary.csv, review.csv and
teacher_check.json (teacher_check.py). They are written together into a staging directory
and swapped in whole, with a review list kept elsewhere (`review_csv`) renamed into place
right after, so a failing or stopped run leaves the previous flags and review list as they
were, never a mix of two runs.
"""

import dataclasses
import os
from typing import Callable, Optional

from absl import logging

from tf_skeptical import flagging, teacher_check
from tf_skeptical.util import files, output_paths, provenance, stopping
from tf_skeptical.util.bad_input import DataError

OUTPUT = output_paths.OutputKind("flags directory", (flagging.FLAGS_FILE, flagging.SUMMARY))


@dataclasses.dataclass(frozen=True)
class FlagParams:
  """What is flagged and how much of it the review list shows."""

  max_percent: float = 20.0  # flagged up to this % of each class's implicit negatives
  min_positives: int = flagging.MIN_POSITIVES  # classes with fewer train positives: no flags
  review_percent: float = 1.0  # the review list holds the flags up to this p
  review_limit: int = 0  # at most this many review rows (0: all)


def check_outputs(out_dir: str, review_csv: Optional[str] = None) -> None:
  """Refuses outputs that are not this stage's, before any work (output_paths.py)."""
  output_paths.check_directory(out_dir, OUTPUT)
  if review_csv and not _inside(review_csv, out_dir):
    output_paths.check_file(review_csv, "review list", flagging.REVIEW_HEADER,
                            "--review_csv")


def _inside(path: str, directory: str) -> bool:
  return os.path.dirname(files.absolute(path)) == files.absolute(directory).rstrip("/")


def check_class_map(scores, class_map, class_map_csv: str, scores_name: str) -> None:
  """The class map must be the one the scored examples were labelled with."""
  if len(class_map) != scores.manifest["num_classes"]:
    raise DataError(class_map_csv, f"{len(class_map)} classes, but the scores in "
                    f"{scores_name} have {scores.manifest['num_classes']}")
  if scores.manifest.get("class_map_id"):
    provenance.check_same("class map", provenance.class_map_id(class_map.mids),
                          class_map_csv, scores.manifest["class_map_id"],
                          f"the examples scored in {scores_name}")


def flag(read_scores: Callable, class_map, class_map_csv: str, out_dir: str,
         params: FlagParams = FlagParams(), ontology=None,
         review_csv: Optional[str] = None, scores_name: str = "the scores"):
  """Flags the scores that read_scores() returns and writes out_dir (and review_csv, by
  default out_dir/review.csv); returns the flags. The scores are read here and dropped
  before the flags are written: at AudioSet's size they are 4 GB."""
  check_outputs(out_dir, review_csv)
  scores = read_scores()
  check_class_map(scores, class_map, class_map_csv, scores_name)
  unknown = scores.manifest.get("unknown_classes") or []
  if unknown:
    logging.warning("%d classes get no flags: the teacher does not know them (%s)",
                    len(unknown), ", ".join(unknown[:20]) + (" ..." if len(unknown) > 20
                                                             else ""))
  flags = flagging.flag_scores(scores, params.max_percent, ontology, params.min_positives)
  names = class_map.display_names
  review_csv = review_csv or os.path.join(out_dir, flagging.REVIEW)
  review_aside = not _inside(review_csv, out_dir)
  with files.output_lock(out_dir), files.staged(out_dir) as staging:
    teacher_check.run(scores, flags, names, os.path.join(staging, teacher_check.CHECK_FILE))
    del scores
    flagging.write_summary(flags, names, os.path.join(staging, flagging.SUMMARY))
    review_tmp = (files.sibling(review_csv, "tmp") if review_aside
                  else os.path.join(staging, os.path.basename(review_csv)))
    if review_aside:
      files.makedirs(os.path.dirname(files.absolute(review_csv)))
    with stopping.removed_on_stop(review_tmp, files.remove):
      try:
        rows = flagging.write_review(flags, class_map.mids, names, review_tmp,
                                     params.review_percent, params.review_limit)
        flagging.write_flags(flags, os.path.join(staging, flagging.FLAGS_FILE))
        files.publish_directory(staging, out_dir, last=flagging.FLAGS_FILE)
        if review_aside:
          files.rename(review_tmp, review_csv)
      finally:
        if review_aside:
          files.remove(review_tmp)
  logging.info("flagged %d entries (up to %g%%) into %s; %d review rows in %s",
               len(flags.rank), params.max_percent, out_dir, rows, review_csv)
  return flags
