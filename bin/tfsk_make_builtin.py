"""Writes the built-in dataset: synthesised sound events whose missing train labels are known.

  tfsk_make_builtin --output_dir=data --train_clips=3000 --eval_clips=1000
"""

from absl import flags, logging

from tf_skeptical.datasets import builtin_data
from tf_skeptical_bin import checks, cli

_DEFAULTS = builtin_data.BuiltinDataParams()
OUTPUT_DIR = flags.DEFINE_string("output_dir", "tfsk_work/builtin",
                                 "Where the audio, segments CSVs, class map and truth go.")
NUM_CLASSES = flags.DEFINE_integer("num_classes", _DEFAULTS.num_classes,
                                   f"Sound classes (2..{builtin_data.MAX_CLASSES}).")
TRAIN_CLIPS = flags.DEFINE_integer("train_clips", _DEFAULTS.train_clips, "Train clips.")
EVAL_CLIPS = flags.DEFINE_integer("eval_clips", _DEFAULTS.eval_clips,
                                  "Eval clips (fully labelled).")
CLIP_SECONDS = flags.DEFINE_float("clip_seconds", _DEFAULTS.clip_seconds, "Clip length.")
MISSING_RATE = flags.DEFINE_float(
    "missing_rate", _DEFAULTS.missing_rate,
    "Missing train labels as a fraction of the train set's implicit negatives.")
EXPLICIT_NEGATIVES = flags.DEFINE_float(
    "explicit_negatives_per_clip", _DEFAULTS.explicit_negatives_per_clip,
    "Mean number of classes per train clip that raters marked absent.")
SEED = flags.DEFINE_integer("seed", _DEFAULTS.seed, "Random seed: same seed, same dataset.")
checks.positive(NUM_CLASSES, TRAIN_CLIPS, EVAL_CLIPS, CLIP_SECONDS)
checks.fraction(MISSING_RATE, high_open=True)
checks.non_negative(EXPLICIT_NEGATIVES)


def params_from_flags() -> builtin_data.BuiltinDataParams:
  return builtin_data.BuiltinDataParams(
      num_classes=NUM_CLASSES.value, train_clips=TRAIN_CLIPS.value,
      eval_clips=EVAL_CLIPS.value, clip_seconds=CLIP_SECONDS.value,
      missing_rate=MISSING_RATE.value,
      explicit_negatives_per_clip=EXPLICIT_NEGATIVES.value, seed=SEED.value)


def main(argv):
  del argv
  summary = builtin_data.generate(OUTPUT_DIR.value, params_from_flags())
  logging.info("wrote %s: %d missing train labels = %.2f%% of %d implicit negatives",
               OUTPUT_DIR.value, summary["train_missing_labels"],
               100 * summary["missing_rate_of_implicit_negatives"],
               summary["train_implicit_negatives"])


def run():
  cli.run(main)


if __name__ == "__main__":
  run()
