"""The method's choices on a second, harder dataset: the AudioSet-like simulation with an
ontology (a present child makes its parent present, and the parent is often the label
missing), at embedding level, so that every choice trains in minutes on 2 cores.

  python -m experiments.harder_set [--clips=20000] [--classes=200] [--seeds=3] [--folds=3] [--percents=0,2,4]

Generates the set (`tfsk_simulate_audioset --child_share=0.5`), prepares it, runs the sweep
with two rounds and the complete-label reference (sweep.py, `embedding_mlp`), trains K
out-of-fold teachers with the same recipe, and reports:
- flag precision and recall at 0.5, 1, 2, 4% of the in-sample teacher, the out-of-fold
  teachers, round 2's teacher (the best round-1 student) and cleanlab on the out-of-fold
  probabilities;
- the flags of classes with fewer than 5 train positives (the teacher check lists them)
  against the rest, and the best p's students with those classes' flags dropped, paired by
  seed with the students that keep them;
- every student's (p = 2, 4% by default, both rounds) d' gain over the baseline with its
  95% intervals (and its lwlrap gain), what the missing labels cost (the complete labels)
  and the most masking can recover (the perfect mask: exactly the missing labels masked).
Everything lands in --work_dir/harder_set (kept: a re-run reuses finished stages).
"""

import dataclasses
import os

import numpy as np

import harness as common
from experiments import peers
from experiments.teachers import quality_rows


def _parse():
  import argparse
  extra = argparse.ArgumentParser(add_help=False)
  extra.add_argument("--clips", type=int, default=20000)
  extra.add_argument("--eval_clips", type=int, default=3000)
  extra.add_argument("--bootstrap", type=int, default=200)
  extra.add_argument("--classes", type=int, default=200)
  extra.add_argument("--seeds", type=int, default=3)
  extra.add_argument("--folds", type=int, default=3)
  extra.add_argument("--percents", default="0,2,4", help="The students' discard percentages.")
  extra.add_argument("--epochs", type=int, default=8)
  args = common.parse_args(__doc__, extra)
  return args, args


def dataset(work: str, clips: int, eval_clips: int, classes: int):
  """The harder set, simulated and prepared once: (train examples, eval examples, truth)."""
  from tf_skeptical.datasets import audioset_simulation as sim
  from tf_skeptical.data import examples
  from tf_skeptical import prepare
  data = os.path.join(work, "sim")
  if not os.path.exists(os.path.join(data, sim.SUMMARY)):
    sim.generate(data, sim.SimulationParams(
        train_clips=clips, eval_clips=eval_clips, num_classes=classes, smallest_class=2e-4,
        child_share=0.5))
  out = []
  for split in (sim.TRAIN, sim.EVAL):
    ex = os.path.join(work, "examples", split)
    if not os.path.exists(os.path.join(ex, examples.MANIFEST)):
      prepare.prepare_embeddings(os.path.join(data, split, "*.tfrecord"),
                                 os.path.join(data, sim.CLASS_MAP), ex)
    out.append(ex)
  return out[0], out[1], os.path.join(data, sim.TRUTH)


def few_positive_rows(cfg, sweep_dir, train_dir, eval_dir, flags, truth, table):
  """Classes with fewer than CheckParams.min_positives train positives: their flags'
  precision against the rest's, and the best p's students without their flags, paired by
  seed with the sweep's students at that p (which keep them)."""
  from tf_skeptical import evaluation, scoring, sweep, teacher_check, training, verdict
  from tf_skeptical.targets import Targets
  scores = scoring.read_scores(os.path.join(sweep_dir, sweep.SCORES))
  counts = np.bincount(scores.positives[1], minlength=scores.scores.shape[1])
  few = counts < teacher_check.CheckParams.min_positives
  del scores
  rows = [common.row(f"classes with fewer than {teacher_check.CheckParams.min_positives} "
                     "train positives", int(few.sum()))]
  only = {name: dataclasses.replace(flags, num_implicit=np.where(keep, flags.num_implicit, 0))
          for name, keep in (("few-positive classes", few), ("other classes", ~few))}
  for name, keep in (("few-positive classes", few), ("other classes", ~few)):
    for r in evaluation.flag_quality(only[name], truth, (1.0,)):
      missing = sum(1 for _, c in truth if keep[c])
      implicit = int(flags.num_implicit[keep].sum())
      rows += [common.row(f"{name}: flag precision at 1%", r["precision"]),
               common.row(f"  {name}: base rate", missing / max(implicit, 1))]
  best = max((r for r in table if r["round"] == 1 and r["discard_percent"] > 0),
             key=lambda r: r["d_prime"])
  p = best["discard_percent"]
  dropped = only["other classes"]  # the few-positive classes' flags dropped
  students, kept = [], []
  for i in range(cfg.seeds):
    model_dir = os.path.join(sweep_dir, "few_positive_dropped", f"p{p:g}_seed{i}")
    if not training.is_trained(model_dir):
      seeded = dataclasses.replace(cfg.train, seed=cfg.train.seed + i)
      training.train(train_dir, model_dir, seeded, eval_dir=eval_dir, verbose=0,
                     targets=Targets(flagged=dropped.entries(p), percent=p))
    students.append(evaluation.eval_scores(model_dir, eval_dir)[2])
    _, labels, s = evaluation.eval_scores(sweep.run_dir(sweep_dir, p, i), eval_dir)
    kept.append(s)
  g = verdict.paired_gain(labels, students, kept, cfg.verdict_params)
  rows.append(common.row(f"p = {p:g}%, few-positive classes' flags dropped vs kept: d' "
                         f"{verdict.describe(g)}", g["gain"]))
  return rows


def main():
  known, args = _parse()
  if args.quick:
    print("harder_set: trains dozens of students; not a --quick benchmark, skipped")
    return
  from tf_skeptical import evaluation, flagging, scoring, sweep, training, verdict
  from tf_skeptical.data import examples
  work = os.path.join(args.work_dir, "harder_set")
  train_dir, eval_dir, truth_csv = dataset(work, known.clips, known.eval_clips, known.classes)
  cfg = sweep.SweepConfig(
      train=training.TrainConfig(model="embedding_mlp", width=0.5, epochs=known.epochs,
                                 batch_size=256),
      percents=tuple(float(p) for p in known.percents.split(",")), max_percent=20.0, score_workers=1, seeds=known.seeds,
      rounds=2, verdict_params=verdict.VerdictParams(bootstrap=known.bootstrap))
  sweep_dir = os.path.join(work, "sweep")
  result = sweep.run(train_dir, eval_dir, sweep_dir, cfg, truth_csv)
  table = result.table
  truth = evaluation.read_truth(truth_csv, examples.read_info(train_dir).class_map)
  in_sample = flagging.read_flags(os.path.join(sweep_dir, sweep.FLAGS, flagging.FLAGS_FILE))
  second = flagging.read_flags(os.path.join(sweep.round_dir(sweep_dir, 2), sweep.FLAGS,
                                            flagging.FLAGS_FILE))
  dirs, _ = sweep.fold_teachers(train_dir, os.path.join(work, "folds"),
                                dataclasses.replace(cfg, teacher_folds=known.folds))
  oof_scores = scoring.merge_scores([scoring.read_scores(d) for d in dirs])
  oof = flagging.flag_scores(oof_scores, cfg.max_percent)
  rows = quality_rows("in-sample teacher", in_sample, truth)
  rows += quality_rows(f"out-of-fold teachers (K = {known.folds})", oof, truth)
  rows += quality_rows("round 2 (best round-1 student as teacher)", second, truth)
  rows += peers.flag_rows(oof_scores, oof, truth, label="on out-of-fold probabilities: ")
  del oof_scores
  rows += few_positive_rows(cfg, sweep_dir, train_dir, eval_dir, in_sample, truth, table)
  for r in table:
    name = ("baseline (p = 0)" if not r["discard_percent"] else
            f"round {r['round']}, p = {r['discard_percent']:g}%")
    rows.append(common.row(f"{name}: d' (mean of {r['runs']})", r["d_prime"]))
    if r.get("paired_runs"):
      rows.append(common.row(f"  gain {verdict.describe(r)}", r["gain"]))
      rows.append(common.row(f"  lwlrap gain {verdict.describe(r, 'lwlrap')}",
                             r["lwlrap_gain"]))
  refs = result.references  # trained by the sweep beside its students
  for name, what in ((sweep.COMPLETE, "complete labels: cost of the missing labels"),
                     (sweep.PERFECT_MASK, "perfect mask: the most masking recovers")):
    for metric in verdict.METRICS:
      rows.append(common.row(f"{what}, {metric} {verdict.describe(refs[name], metric)}",
                             refs[name][verdict.METRICS[metric] + "gain"]))
  common.report("harder_set", rows, common.EXPERIMENTS)


if __name__ == "__main__":
  main()
