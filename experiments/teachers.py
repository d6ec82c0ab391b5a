"""Which teacher finds the missing labels best: in-sample, out-of-fold, and cleanlab on
out-of-fold probabilities, at equal per-class budgets, on a finished demo (known truth).

  python -m experiments.teachers --demo_dir=tfsk_work [--folds=5]

In-sample: the demo teacher's scores of its own training clips (the paper's teacher).
Out-of-fold: K teachers with the demo teacher's recipe, each trained without one fold and
scoring it (folds.py); trained here once, into <demo_dir>/teachers_bench.
cleanlab: its multi-label issue finder on the out-of-fold probabilities, at its own budget
and at ours (experiments/peers.py's comparison, on these probabilities).
Round 2 (when the demo ran with --rounds=2): the flags of the best round-1 student.
"""

import json
import os

import harness as common
from experiments import peers

PERCENTS = (0.5, 1.0, 2.0, 4.0)


def quality_rows(name, flags, truth):
  from tf_skeptical import evaluation
  rows = []
  for r in evaluation.flag_quality(flags, truth, PERCENTS):
    rows += [common.row(f"{name} at {r['percent']:g}%: precision", r["precision"]),
             common.row(f"  {name} at {r['percent']:g}%: recall", r["recall"])]
  return rows


def main():
  given = common.demo_benchmark("teachers", __doc__, folds=(int, 5))
  if given is None:
    return
  known, work = given
  from tf_skeptical.datasets import builtin_data
  from tf_skeptical import evaluation, flagging, scoring, sweep, training
  from tf_skeptical.data import examples
  sweep_dir = os.path.join(work, "sweep")
  train_dir = os.path.join(work, "examples", "train")
  cmap = examples.read_info(train_dir).class_map
  truth = evaluation.read_truth(os.path.join(work, "builtin", builtin_data.TRUTH), cmap)
  in_sample = flagging.read_flags(os.path.join(sweep_dir, sweep.FLAGS, flagging.FLAGS_FILE))
  with open(os.path.join(sweep_dir, sweep.TEACHER, training.RESULT)) as f:
    recipe = training.TrainConfig(**json.load(f)["config"])
  cfg = sweep.SweepConfig(train=recipe, teacher_folds=known.folds)
  dirs, _ = sweep.fold_teachers(train_dir, os.path.join(work, "teachers_bench"), cfg)
  oof_scores = scoring.merge_scores([scoring.read_scores(d) for d in dirs])
  oof = flagging.flag_scores(oof_scores, in_sample.max_percent)
  rows = quality_rows("in-sample teacher", in_sample, truth)
  rows += quality_rows(f"out-of-fold teachers (K = {known.folds})", oof, truth)
  second = os.path.join(sweep.round_dir(sweep_dir, 2), sweep.FLAGS, flagging.FLAGS_FILE)
  if os.path.exists(second):  # the demo ran with --rounds=2
    rows += quality_rows("round 2 (best round-1 student as teacher)",
                         flagging.read_flags(second), truth)
  rows += peers.flag_rows(oof_scores, oof, truth, label="on out-of-fold probabilities: ")
  common.report("teachers", rows, common.EXPERIMENTS)


if __name__ == "__main__":
  main()
