"""Flags the top-scored implicit negatives of every class as likely missing labels.

  tfsk_flag --scores=scores --output_dir=flags --review_csv=flags/review.csv
Writes flags.npz (every flagged entry up to --max_percent, with its rank percentile),
summary.csv (per class: implicit negatives, flagged at 0.1 ... 20%), the review list, and
teacher_check.json: how far above random the flags are estimated to be, from the labelled
positives (a warning when too weak to help), and the classes with too few positives.
"""

import os

from absl import flags

from tf_skeptical import flag_stage, scoring
from tf_skeptical.data import examples, ontology
from tf_skeptical.data.class_map import read_class_map
from tf_skeptical_bin import checks, cli

SCORES = flags.DEFINE_string("scores", None, "Scores directory from tfsk_score.")
CLASS_MAP = flags.DEFINE_string(
    "class_map", None, "Class map CSV; default: the one beside the scored examples.")
OUTPUT_DIR = flags.DEFINE_string(
    "output_dir", None, "Where flags.npz, summary.csv, review.csv and teacher_check.json go "
    "(replaced together, or not at all).")
MAX_PERCENT = flags.DEFINE_float(
    "max_percent", flag_stage.FlagParams.max_percent, "Flag up to this % of each class's "
    "implicit negatives; students can then discard any p <= this.")
REVIEW_CSV = flags.DEFINE_string(
    "review_csv", None, "Write the top candidates (clip, class, score, percentile) here, "
    "most confident first, for a listening test or cleaning; default: review.csv in "
    "--output_dir.")
REVIEW_PERCENT = flags.DEFINE_float(
    "review_percent", flag_stage.FlagParams.review_percent, "Candidates up to this % go in "
    "the review CSV.")
REVIEW_LIMIT = flags.DEFINE_integer("review_limit", flag_stage.FlagParams.review_limit,
                                    "At most this many review rows (0 = all).", lower_bound=0)
ONTOLOGY = flags.DEFINE_string(
    "ontology", None, "An AudioSet-layout ontology.json: the ancestors of a clip's labelled "
    "classes are known positives, never flagged (use the same file for tfsk_train's "
    "--ontology).")
MIN_POSITIVES = flags.DEFINE_integer(
    "min_positives", flag_stage.FlagParams.min_positives, "Classes with fewer train "
    "positives get no flags (their teacher has too little to rank by, and a class without "
    "any has no label to miss); 0 flags every class.",
    lower_bound=0)
checks.percent(MAX_PERCENT, low_open=True)
checks.percent(REVIEW_PERCENT)
flags.mark_flags_as_required(["scores", "output_dir"])


def main(argv):
  del argv
  flag_stage.check_outputs(OUTPUT_DIR.value, REVIEW_CSV.value)  # before any reading
  manifest = scoring.read_manifest(SCORES.value)
  class_map_csv = CLASS_MAP.value or os.path.join(manifest["examples"], examples.CLASS_MAP)
  class_map = read_class_map(class_map_csv)
  onto = ontology.read_ontology(ONTOLOGY.value, class_map.mids) if ONTOLOGY.value else None
  params = flag_stage.FlagParams(MAX_PERCENT.value, MIN_POSITIVES.value,
                                 REVIEW_PERCENT.value, REVIEW_LIMIT.value)
  flag_stage.flag(lambda: scoring.read_scores(SCORES.value), class_map, class_map_csv,
                  OUTPUT_DIR.value, params, onto, REVIEW_CSV.value, SCORES.value)


def run():
  cli.run(main)


if __name__ == "__main__":
  run()
