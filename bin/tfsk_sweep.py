r"""The paper's experiment on prepared examples: teacher, scoring, flags, one student per p.

  tfsk_sweep --train=examples/train --eval=examples/eval --work_dir=sweep \
      --percents=paper --truth=data/train_missing_labels.csv
Writes results.csv/.md, plot_metrics.png (d', lwlrap, mAP against % discarded, and each
p's d' gain over the baseline with 95% intervals over seeds and eval clips) and, with
--truth, flag precision/recall (flag_quality.csv, plot_flags.png). The best p's student is
exported to <work_dir>/tagger (SavedModel, TFLite). Re-running skips the stages already
complete. `tensorboard --logdir=<work_dir>` shows every run and HParams.
"""

from absl import flags, logging

from tf_skeptical import cli, flagging, sweep, train_options

flags.adopt_module_key_flags(train_options)  # --help lists the training flags too

TRAIN = flags.DEFINE_string("train", None, "Train examples directory.")
EVAL = flags.DEFINE_string("eval", None, "Fully labelled eval examples directory.")
WORK_DIR = flags.DEFINE_string("work_dir", None, "Where every stage writes.")
PERCENTS = flags.DEFINE_string(
    "percents", ",".join(f"{p:g}" for p in sweep.DEMO_PERCENTS),
    "Comma-separated discard percentages (0 = the baseline), or 'paper' for the paper's "
    "grid 0, 0.1 ... 0.9, 1, 2 ... 20.")
MAX_PERCENT = flags.DEFINE_float("max_percent", 20.0, "Flags are written up to this %.")
TRUTH = flags.DEFINE_string(
    "truth", None, "CSV of truly missing train labels (clip_id, mid), to measure the flags.")
SCORE_WORKERS = flags.DEFINE_integer("score_workers", 2, "Local workers for scoring.")
TEACHER_FOLDS = flags.DEFINE_integer(
    "teacher_folds", 0, "K >= 2: flag with K out-of-fold teachers, each trained without one "
    "fold of the train set and scoring that fold, so that no clip is scored by a teacher that "
    "trained on it (K more teacher runs). 0: the teacher scores its own training clips.")
SEEDS = flags.DEFINE_integer("seeds", 1, "Training runs per p (different seeds); the table "
                             "shows their means, the spread of d', and each p's gain over the "
                             "baseline paired by seed. 2 or more give an interval over seeds.")
BOOTSTRAP = flags.DEFINE_integer("bootstrap", sweep.verdict.VerdictParams.bootstrap,
                                 "Eval-set resamples for the gains' 95% intervals over clips.")
flags.mark_flags_as_required(["train", "eval", "work_dir"])


def config_from_flags() -> sweep.SweepConfig:
  return sweep.SweepConfig(train=train_options.config_from_flags(),
                           percents=tuple(flagging.percent_grid(PERCENTS.value)),
                           max_percent=MAX_PERCENT.value, score_workers=SCORE_WORKERS.value,
                           seeds=SEEDS.value, teacher_folds=TEACHER_FOLDS.value,
                           verdict_params=sweep.verdict.VerdictParams(
                               bootstrap=BOOTSTRAP.value))


def main(argv):
  del argv
  table = sweep.run(TRAIN.value, EVAL.value, WORK_DIR.value, config_from_flags(), TRUTH.value)
  best, tagger = sweep.export_best(table, WORK_DIR.value, TRAIN.value)
  logging.info("results in %s/results.md", WORK_DIR.value)
  print(sweep.results_text(WORK_DIR.value))
  print(sweep.best_line(best, table))
  print(f"Tagger: {tagger}")


def run():
  cli.run(main)


if __name__ == "__main__":
  run()
