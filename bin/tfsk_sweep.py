r"""The paper's experiment on prepared examples: teacher, scoring, flags, one student per p.

  tfsk_sweep --train=examples/train --eval=examples/eval --work_dir=sweep \
      --percents=paper --truth=data/train_missing_labels.csv
Writes results.csv/.md, plot_metrics.png (d', lwlrap, mAP against % discarded, and each
p's d' gain over the baseline with 95% intervals over seeds and eval clips) and, with
--truth, flag precision/recall (flag_quality.csv, plot_flags.png) and the references (the
complete labels: what the missing labels cost; the perfect mask: the most masking can
recover). The best p's student is
exported to <work_dir>/tagger (SavedModel, TFLite). With --rounds=2 the best student
flags again and a second set of students trains (<work_dir>/round2). With
--treatments=mask,soft,distill,positive every p trains a student per treatment of the flagged
entries (docs/treatments.md), a row each. Re-running skips the stages already complete.
`tensorboard --logdir=<work_dir>` shows every run and HParams.
"""

from absl import flags, logging

from tf_skeptical import sweep
from tf_skeptical_bin import cli, sweep_options, train_options

flags.adopt_module_key_flags(train_options)  # --help lists the training flags too
flags.adopt_module_key_flags(sweep_options)  # and the sweep's

TRAIN = flags.DEFINE_string("train", None, "Train examples directory.")
EVAL = flags.DEFINE_string("eval", None, "Fully labelled eval examples directory.")
WORK_DIR = flags.DEFINE_string("work_dir", None, "Where every stage writes.")
TRUTH = flags.DEFINE_string(
    "truth", None, "CSV of truly missing train labels (clip_id, mid), to measure the flags "
    "and to train the references: the complete labels and the perfect mask.")
flags.mark_flags_as_required(["train", "eval", "work_dir"])


def main(argv):
  del argv
  result = sweep.run(TRAIN.value, EVAL.value, WORK_DIR.value, sweep_options.config_from_flags(),
                     TRUTH.value)
  best, tagger = sweep.export_best(result, TRAIN.value)
  logging.info("results in %s/results.md", WORK_DIR.value)
  print(sweep.results_text(WORK_DIR.value))
  print(sweep.best_line(best, result.table))
  print(f"Tagger: {tagger}" if tagger else
        "Tagger: none (the examples are not log-mel, and a tagger starts from audio)")


def run():
  cli.run(main)


if __name__ == "__main__":
  run()
