"""Flags the top-scored implicit negatives of every class as likely missing labels.

  tfsk_flag --scores=scores --output_dir=flags --review_csv=flags/review.csv
Writes flags.npz (every flagged entry up to --max_percent, with its rank percentile),
summary.csv (per class: implicit negatives, flagged at 0.1 ... 20%), the review list, and
teacher_check.json: how far above random the flags are estimated to be, from the labelled
positives (a warning when too weak to help), and the classes with too few positives.
"""

import os

from absl import flags, logging

from tf_skeptical.data import examples, ontology
from tf_skeptical.util import files, provenance
from tf_skeptical import flagging, scoring, teacher_check
from tf_skeptical_bin import cli
from tf_skeptical.util.bad_input import DataError
from tf_skeptical.data.class_map import read_class_map

SCORES = flags.DEFINE_string("scores", None, "Scores directory from tfsk_score.")
CLASS_MAP = flags.DEFINE_string(
    "class_map", None, "Class map CSV; default: the one beside the scored examples.")
OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Where flags.npz and summary.csv go.")
MAX_PERCENT = flags.DEFINE_float(
    "max_percent", 20.0, "Flag up to this % of each class's implicit negatives; students "
    "can then discard any p <= this.")
REVIEW_CSV = flags.DEFINE_string(
    "review_csv", None, "Write the top candidates (clip, class, score, percentile) here, "
    "most confident first, for a listening test or cleaning.")
REVIEW_PERCENT = flags.DEFINE_float("review_percent", 1.0, "Candidates up to this % go in "
                                    "the review CSV.")
REVIEW_LIMIT = flags.DEFINE_integer("review_limit", 0, "At most this many review rows "
                                    "(0 = all).")
ONTOLOGY = flags.DEFINE_string(
    "ontology", None, "An AudioSet-layout ontology.json: the ancestors of a clip's labelled "
    "classes are known positives, never flagged (use the same file for tfsk_train's "
    "--ontology).")
MIN_POSITIVES = flags.DEFINE_integer(
    "min_positives", 0, "Classes with fewer train positives get no flags (their teacher has "
    "too little to rank by); 0 flags every class.", lower_bound=0)
flags.mark_flags_as_required(["scores", "output_dir"])


def main(argv):
  del argv
  scores = scoring.read_scores(SCORES.value)
  class_map_csv = CLASS_MAP.value or os.path.join(scores.manifest["examples"],
                                                  examples.CLASS_MAP)
  class_map = read_class_map(class_map_csv)
  if len(class_map) != scores.manifest["num_classes"]:
    raise DataError(class_map_csv, f"{len(class_map)} classes, but the scores in "
                    f"{SCORES.value} have {scores.manifest['num_classes']}")
  if scores.manifest.get("class_map_id"):
    provenance.check_same("class map", provenance.class_map_id(class_map.mids),
                          class_map_csv, scores.manifest["class_map_id"],
                          f"the examples scored in {SCORES.value}")
  onto = ontology.read_ontology(ONTOLOGY.value, class_map.mids) if ONTOLOGY.value else None
  result = flagging.flag_scores(scores, MAX_PERCENT.value, onto, MIN_POSITIVES.value)
  files.makedirs(OUTPUT_DIR.value)
  teacher_check.run(scores, result, class_map.display_names,
                    os.path.join(OUTPUT_DIR.value, teacher_check.CHECK_FILE))
  del scores  # the flags hold what they need; at AudioSet's size the scores are 4 GB
  flagging.write_flags(result, os.path.join(OUTPUT_DIR.value, flagging.FLAGS_FILE))
  flagging.write_summary(result, class_map.display_names,
                         os.path.join(OUTPUT_DIR.value, flagging.SUMMARY))
  logging.info("flagged %d entries (up to %g%%) into %s", len(result.rank), MAX_PERCENT.value,
               OUTPUT_DIR.value)
  if REVIEW_CSV.value:
    rows = flagging.write_review(result, class_map.mids, class_map.display_names,
                                 REVIEW_CSV.value, REVIEW_PERCENT.value, REVIEW_LIMIT.value)
    logging.info("wrote %d review rows to %s", rows, REVIEW_CSV.value)


def run():
  cli.run(main)


if __name__ == "__main__":
  run()
