"""The paper's experiment: teacher -> score -> flag -> one student per p -> table and plots.

Stages whose outputs are complete (their marker file exists) are skipped on a re-run, so
an interrupted sweep continues where it stopped. p = 0 with seed 0 is the teacher itself:
same data, same recipe, nothing masked; every student differs from it only by its mask
(and, with seeds > 1, its seed). Runs differ by a few hundredths of d' from seed to seed
and thread scheduling, so with seeds > 1 every p is trained that many times and the table
holds the means, with the spread of d'. Each p's gain over the baseline is paired by seed
and given 95% intervals, over seeds and over eval clips (verdict.py), with a verdict on
whether it is significant. The best p's student is exported as a tagger.

With rounds = R >= 2 the experiment repeats: the best student of round r (by mean d' over
its seeds, among p > 0) becomes the teacher of round r + 1, which scores the train set
again (its own training clips), flags, and trains a student per p from the same recipe.
Every round is compared with the same baseline (the p = 0 runs), paired by seed.

Runs side by side (side_by_side.py, cfg.jobs): on a CPU the independent runs train in
worker processes of cores / jobs threads each, about 1.7x the throughput of one run with
every thread on 2 cores. The baseline's other seeds and the complete-label reference train
beside the teacher; the students and the perfect mask once the flags exist. A script that
calls run() with jobs >= 2 must do so under `if __name__ == "__main__":` (the workers are
spawned processes, which import the script's main module).

Treatments (treatments.py): each p > 0 is trained with every treatment of the flags that
cfg.treatments names (the paper's mask by default; soft, distill, positive teach instead of
ignoring); the table has a row per round, treatment and p, each paired with the baseline.

Layout of the work directory:
  teacher/          the teacher (a model directory, see training.py)
  scores/           its scores of the train set (scoring.py)
  fold_teachers/fold<k>/, fold_scores/fold<k>/   with teacher_folds = K >= 2: the
                    out-of-fold teachers and each one's scores of its fold (folds.py)
  flags/            flags.npz, summary.csv, review.csv (flagging.py), teacher_check.json
                    (teacher_check.py: are the flags far enough above random to help?)
  students/complete/  with a truth file: trained on the complete labels (what the missing
                    labels cost)
  students/perfect_mask/  with a truth file: masking exactly the missing labels (the most any
                    loss mask can recover)
  students/p<p>/    one model directory per discard percentage (p<p>_seed<s> for seed s);
                    each run's eval clip scores in eval_scores.npz (for the intervals)
  students/<treatment>_p<p>/   the same for a treatment other than the mask
  round<r>/scores/, flags/, students/p<p>/, flag_quality.csv   rounds r >= 2
  tagger/           the best p's student, exported (exporting.py)
  results.csv/.md   the table;  plot_metrics.png, plot_flags.png   the figures
  logs/             TensorBoard: every run's curves and the HParams dashboard
"""

import dataclasses
import os
from typing import Dict, List, Optional, Sequence, Tuple

import matplotlib
import numpy as np
import tensorflow as tf
from absl import logging
from tensorboard.plugins.hparams import api as hp

from tf_skeptical import (evaluation, examples, exporting, files, flagging, inference,
                          folds, ontology, provenance, scoring, side_by_side, teacher_check,
                          training, treatments, verdict)

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the file-only backend)

DEMO_PERCENTS = (0.0, 0.5, 1.0, 2.0, 4.0)
TEACHER, SCORES, FLAGS, STUDENTS, LOGS, TAGGER = (
    "teacher", "scores", "flags", "students", "logs", "tagger")
FOLD_TEACHERS, FOLD_SCORES = "fold_teachers", "fold_scores"
RESULTS_CSV, RESULTS_MD = "results.csv", "results.md"
PLOT_METRICS, PLOT_FLAGS = "plot_metrics.png", "plot_flags.png"
REVIEW_PERCENT = 1.0  # the review list holds the flags up to this p
METRIC_NAMES = {"d_prime": "d'", "lwlrap": "lwlrap", "mAP": "mAP"}


@dataclasses.dataclass(frozen=True)
class SweepConfig:
  train: training.TrainConfig = training.TrainConfig()
  percents: Sequence[float] = DEMO_PERCENTS
  max_percent: float = 20.0
  score_workers: int = 2
  seeds: int = 1  # training runs per p, seeds train.seed, train.seed + 1, ...
  # K >= 2: the flags come from K out-of-fold teachers (folds.py), each scoring the clips
  # it did not train on; 0: from the teacher's scores of its own training clips.
  teacher_folds: int = 0
  # With a truth file: also train on the complete labels (the missing ones added back), the
  # reference for how much the missing labels cost and how much of it masking recovers.
  complete_reference: bool = True
  # With a truth file: also train with exactly the missing labels masked (flags of precision
  # and recall 1), the most that loss masking can recover with any teacher.
  perfect_mask_reference: bool = True
  # R >= 2: the best student of each round is the next round's teacher (module docstring).
  rounds: int = 1
  # What the students make of the flags, each a row per p (treatments.parse: mask, soft,
  # positive, distill (train.distill_weight) or distill<w>).
  treatments: Sequence[str] = (treatments.MASK,)
  # Classes with fewer train positives get no flags (flagging.py); 0: every class.
  flag_min_positives: int = 0
  verdict_params: verdict.VerdictParams = verdict.VerdictParams()
  # Independent runs trained side by side (side_by_side.py); 0: one per core on a CPU.
  jobs: int = 0

  def resolved_jobs(self) -> int:
    return self.jobs or side_by_side.auto_jobs(self.train.strategy)

  def treatment_specs(self) -> List["treatments.Treatment"]:
    specs = [treatments.parse(t, self.train.distill_weight) for t in self.treatments]
    if not specs or len({t.label for t in specs}) != len(specs):
      raise ValueError(f"treatments must be distinct and at least one: {self.treatments}")
    return specs


def round_dir(work_dir: str, round_index: int = 1) -> str:
  """Where a round's scores, flags and students go (round 1: the work directory)."""
  return work_dir if round_index == 1 else os.path.join(work_dir, f"round{round_index}")


def run_dir(work_dir: str, p: float, seed_index: int = 0, round_index: int = 1,
            treatment: str = treatments.MASK) -> str:
  """The model directory of the run at p in a round with a treatment's label (the teacher
  for p = 0, seed 0; the p = 0 runs are the baseline of every round and treatment)."""
  if p == 0 and seed_index == 0:
    return os.path.join(work_dir, TEACHER)
  suffix = f"_seed{seed_index}" if seed_index else ""
  prefix = "" if p == 0 or treatment == treatments.MASK else f"{treatment}_"
  return os.path.join(round_dir(work_dir, 1 if p == 0 else round_index), STUDENTS,
                      f"{prefix}p{p:g}{suffix}")


def row_dir(work_dir: str, row: Dict, seed_index: int = 0) -> str:
  """The model directory of a table row's run with one seed."""
  return run_dir(work_dir, row["discard_percent"], seed_index, row.get("round", 1),
                 row.get("treatment") or treatments.MASK)


COMPLETE, PERFECT_MASK = "complete", "perfect_mask"  # the references (reference_runs)


def reference_dir(work_dir: str, name: str, seed_index: int = 0) -> str:
  """The model directory of a reference run (COMPLETE or PERFECT_MASK) with one seed."""
  return os.path.join(work_dir, STUDENTS, name + (f"_seed{seed_index}" if seed_index else ""))


def complete_dir(work_dir: str, seed_index: int = 0) -> str:
  """The model directory of the complete-label reference run."""
  return reference_dir(work_dir, COMPLETE, seed_index)


# What makes flags the same: the teacher, and the ontology and per-class policy they used.
FLAGS_IDENTITY = ("model_id", "ontology", "min_positives")


@dataclasses.dataclass(frozen=True)
class Run:
  """One training run of the sweep, as a worker process takes it: a student's flags and
  its teacher's scores are named by their files and read where the run trains (a few
  hundred MB at AudioSet's size, not sent between processes); a reference's entries are
  carried (the missing labels: small)."""
  model_dir: str
  cfg: training.TrainConfig
  p: float = 0.0  # a student: its discard percentage of flags_path
  flags_path: str = ""
  discards: Optional[flagging.Discards] = None  # a reference: the entries it masks
  add_positives: Optional[flagging.Discards] = None  # or adds as positives
  scores_dirs: Tuple[str, ...] = ()  # the teacher's scores, for treatments that need them
  flags_id: tuple = ()  # the flags' FLAGS_IDENTITY: a file rewritten by a new teacher differs


_LOADED: Dict[str, tuple] = {}  # kind -> (source, value): this process's last of each kind


def _loaded(kind: str, source, load):
  """load(), kept while runs ask for the same source of this kind (one flags file and one
  set of teacher scores at a time: a round's runs share them)."""
  if _LOADED.get(kind, (None,))[0] != source:
    _LOADED.pop(kind, None)  # the old one freed before the new one is read
    _LOADED[kind] = (source, load())
  return _LOADED[kind][1]


def train_run(train_dir: str, eval_dir: Optional[str], run: Run, verbose: int = 2) -> Dict:
  """Trains one run of the sweep (or returns its result if trained on the same flags);
  what a worker process of side_by_side.Runner calls."""
  treatment = run.cfg.treatment_spec
  discards, scores = run.discards, None
  if run.flags_path:
    discards = _loaded("flags", (run.flags_path, run.flags_id), lambda: flagging.read_flags(
        run.flags_path)).discards(run.p, with_scores=treatment.needs_flag_scores)
    if treatment.needs_teacher_scores:
      scores = _loaded("scores", (run.scores_dirs, run.flags_id),
                       lambda: _read_scores(run.scores_dirs))
  model_dir = run.model_dir
  if training.is_trained(model_dir):
    result = files.read_json(os.path.join(model_dir, training.RESULT))
    made_from = result.get("flags") or {}
    if discards is None or all(made_from.get(k) == discards.made_from.get(k)
                               for k in FLAGS_IDENTITY):
      logging.info("skipping %s: already trained", model_dir)
      return result
    logging.warning("%s was trained on other flags (another teacher, ontology or per-class "
                    "policy): training it again", model_dir)
    files.remove(model_dir)
  logging.info("training %s (%s)", model_dir,
               f"{treatment.label} on {run.p:g}% of implicit negatives" if run.p else
               f"masking {discards.count} entries" if discards else
               f"adding {run.add_positives.count} positives" if run.add_positives else
               "the labels as given")
  return training.train(train_dir, model_dir, run.cfg, eval_dir=eval_dir, discards=discards,
                        verbose=verbose, extra_result=dict(discard_percent=run.p),
                        add_positives=run.add_positives, teacher_scores=scores)


def _submit(runner: side_by_side.Runner, train_dir, eval_dir, run: Run):
  """Submits a run; side by side, Keras' epoch lines would interleave, so each run says
  only that it is done (side_by_side.Runner logs it)."""
  return runner.submit(train_run, train_dir, eval_dir, run, 0 if runner.parallel else 2,
                       name=run.model_dir)


def _results(futures) -> List[Dict]:
  """The results of submitted runs, in the order submitted."""
  return [future.result() for future in futures]


def verdicts(work_dir: str, eval_dir: str, percents: Sequence[float], seeds: int,
             params: verdict.VerdictParams = verdict.VerdictParams(),
             round_index: int = 1, treatment: str = treatments.MASK) -> Dict[float, Dict]:
  """Per p > 0 of a round and treatment: the paired gain over the baseline with its
  intervals (verdict.py)."""
  runs = {p: [evaluation.eval_scores(run_dir(work_dir, p, i, round_index, treatment), eval_dir)
              for i in range(seeds)]
          for p in sorted(set(percents) | {0.0})}
  ids, labels, _ = runs[0.0][0]
  if any(list(r[0]) != list(ids) for rs in runs.values() for r in rs):
    raise RuntimeError(f"runs in {work_dir} were evaluated on different eval clips")
  baselines = [r[2] for r in runs[0.0]]
  return {p: verdict.paired_gain(labels, [r[2] for r in rs], baselines, params)
          for p, rs in runs.items() if p > 0}


def _score(train_dir: str, model_dir: str, scores_dir: str, cfg: SweepConfig,
           fold: Optional[folds.Fold] = None) -> None:
  """Scores (one fold of) the train set with a model, unless that model already did."""
  manifest = os.path.join(scores_dir, scoring.MANIFEST)
  if (files.exists(manifest) and files.read_json(manifest).get("model_id")
      == provenance.file_id(inference.model_path(model_dir))):
    return
  logging.info("scoring %s with %s", "fold %d" % fold.index if fold else "the train set",
               model_dir)
  scoring.score(train_dir, model_dir, scores_dir, local_workers=cfg.score_workers, fold=fold)


def fold_teachers(train_dir: str, work_dir: str, cfg: SweepConfig,
                  runner: Optional[side_by_side.Runner] = None):
  """Trains the K out-of-fold teachers (the teacher's recipe, each without its fold; side
  by side on runner's workers) and scores each fold with its own; returns the fold scores'
  directories and the teachers' combined id."""
  if runner is None:
    with side_by_side.Runner(cfg.resolved_jobs()) as own:
      return fold_teachers(train_dir, work_dir, cfg, own)
  fold_list = [folds.Fold(k, cfg.teacher_folds) for k in range(cfg.teacher_folds)]
  model_dirs = [os.path.join(work_dir, FOLD_TEACHERS, fold.name) for fold in fold_list]
  _results([_submit(runner, train_dir, None, Run(model_dir, dataclasses.replace(
      cfg.train, holdout_folds=fold.count, holdout_fold=fold.index)))
            for fold, model_dir in zip(fold_list, model_dirs)])
  dirs, ids = [], []
  for fold, model_dir in zip(fold_list, model_dirs):
    dirs.append(os.path.join(work_dir, FOLD_SCORES, fold.name))
    _score(train_dir, model_dir, dirs[-1], cfg, fold)
    ids.append(provenance.file_id(inference.model_path(model_dir)))
  return dirs, folds.combined_model_id(ids)


def run(train_dir: str, eval_dir: str, work_dir: str, cfg: SweepConfig = SweepConfig(),
        truth_csv: Optional[str] = None) -> List[Dict]:
  """Runs (or resumes) the whole sweep; returns the results table's rows (round 1's
  baseline and students, then each later round's students).

  With cfg.jobs >= 2 (0: side_by_side.auto_jobs) independent runs train side by side: the
  baseline's seeds and the complete-label reference beside the teacher, then every
  student of a round and the perfect mask once the round's flags exist."""
  files.makedirs(work_dir)
  if max(cfg.percents) > cfg.max_percent:
    raise ValueError(f"largest p {max(cfg.percents)} exceeds max_percent {cfg.max_percent}")
  if cfg.rounds >= 2 and not any(p > 0 for p in cfg.percents):
    raise ValueError(f"rounds = {cfg.rounds} needs a p > 0: a round's best student is the "
                     "next round's teacher")
  specs = cfg.treatment_specs()
  class_map = examples.read_info(train_dir).class_map
  truth = evaluation.read_truth(truth_csv, class_map) if truth_csv else None
  with side_by_side.Runner(cfg.resolved_jobs()) as runner:
    return _run(train_dir, eval_dir, work_dir, cfg, truth, truth_csv, specs, class_map,
                runner)


def _seeded(cfg: SweepConfig, i: int) -> training.TrainConfig:
  return dataclasses.replace(cfg.train, seed=cfg.train.seed + i)


def _run(train_dir, eval_dir, work_dir, cfg, truth, truth_csv, specs, class_map, runner):
  """run()'s stages, with the runner that trains the independent runs."""
  teacher_dir = run_dir(work_dir, 0.0)
  baseline = [_submit(runner, train_dir, eval_dir, Run(run_dir(work_dir, 0.0, i),
                                                       _seeded(cfg, i)))
              for i in range(cfg.seeds)]  # seed 0 is the teacher
  entries = evaluation.truth_as_entries(truth) if truth is not None else None
  references = {}
  if truth is not None and cfg.complete_reference:
    references[COMPLETE] = [_submit(runner, train_dir, eval_dir, Run(
        reference_dir(work_dir, COMPLETE, i), _seeded(cfg, i), add_positives=entries))
        for i in range(cfg.seeds)]

  # Scores and flags are reused only if these teachers made them (a retrained teacher's
  # model differs, and so does its id).
  if cfg.teacher_folds >= 2:
    scores_dirs, teacher_id = fold_teachers(train_dir, work_dir, cfg, runner)
  else:
    baseline[0].result()
    scores_dirs = [os.path.join(work_dir, SCORES)]
    teacher_id = provenance.file_id(inference.model_path(teacher_dir))
    _score(train_dir, teacher_dir, scores_dirs[0], cfg)
  teacher = (f"{cfg.teacher_folds} out-of-fold teachers" if cfg.teacher_folds >= 2
             else "the teacher")

  table, quality = [], []
  for r in range(1, cfg.rounds + 1):
    if r > 1:  # the best student of the last round teaches this one, scoring in-sample
      best = max((row for row in table if row["round"] == r - 1 and row["discard_percent"]),
                 key=lambda row: row["d_prime"])
      teacher_dir = row_dir(work_dir, best)
      teacher = f"round {r - 1}'s {_run_label(best)} student"
      logging.info("round %d: the teacher is %s, %s (d' %.3f)", r, teacher, teacher_dir,
                   best["d_prime"])
      scores_dirs = [os.path.join(round_dir(work_dir, r), SCORES)]
      teacher_id = provenance.file_id(inference.model_path(teacher_dir))
      _score(train_dir, teacher_dir, scores_dirs[0], cfg)
    flags_dir = os.path.join(round_dir(work_dir, r), FLAGS)
    flags = _flags(scores_dirs, teacher_id, flags_dir, class_map, cfg)
    flags_path = os.path.join(flags_dir, flagging.FLAGS_FILE)
    flags_id = tuple(flags.made_from.get(k) for k in FLAGS_IDENTITY)
    _loaded("flags", (flags_path, flags_id), lambda: flags)  # runs here share this copy
    if r == 1 and truth is not None and cfg.perfect_mask_reference:
      perfect = dataclasses.replace(entries, made_from=truth_provenance(flags.made_from,
                                                                         truth_csv))
      references[PERFECT_MASK] = [_submit(runner, train_dir, eval_dir, Run(
          reference_dir(work_dir, PERFECT_MASK, i), _seeded(cfg, i), discards=perfect))
          for i in range(cfg.seeds)]
    futures = {(treatments.MASK, 0.0): baseline} if r == 1 else {}
    for i in range(cfg.seeds):
      for t in specs:
        treated = dataclasses.replace(_seeded(cfg, i), treatment=t.name,
                                      distill_weight=t.distill_weight)
        for p in (p for p in cfg.percents if p > 0):
          futures.setdefault((t.label, p), []).append(_submit(runner, train_dir, eval_dir, Run(
              run_dir(work_dir, p, i, r, t.label), treated, p, flags_path,
              scores_dirs=tuple(scores_dirs) if t.needs_teacher_scores else (),
              flags_id=flags_id)))
    results = {key: _results(fs) for key, fs in futures.items()}
    round_quality = {}
    if truth is not None:
      percents = [p for p in sorted(set(cfg.percents) | {1.0}) if p <= cfg.max_percent]
      rows = [dict(row, round=r) for row in evaluation.flag_quality(flags, truth, percents)]
      evaluation.write_rows(rows, os.path.join(round_dir(work_dir, r),
                                               evaluation.FLAG_QUALITY))
      round_quality = {row["percent"]: row for row in rows}
      quality += rows
    gains = {t.label: verdicts(work_dir, eval_dir, cfg.percents, cfg.seeds,
                               cfg.verdict_params, r, t.label) for t in specs}
    order = ([(treatments.MASK, 0.0)] if r == 1 else []) + [
        (t.label, p) for t in specs for p in sorted(cfg.percents) if p > 0]
    table += [_table_row(p, results[(label, p)], round_quality.get(p, {}),
                         gains[label].get(p) if p else None, r, teacher, label)
              for label, p in order]

  summaries = {name: reference_summary(work_dir, eval_dir, cfg, name, _results(fs),
                                       entries.count)
               for name, fs in references.items()}
  write_table(table, work_dir, summaries)
  plot(table, quality, work_dir)
  write_hparams(table, work_dir)
  return table


def _read_scores(scores_dirs: Sequence[str]) -> scoring.Scores:
  """The teacher's scores of the train set (merged over out-of-fold teachers' folds)."""
  return (scoring.read_scores(scores_dirs[0]) if len(scores_dirs) == 1 else
          scoring.merge_scores([scoring.read_scores(d) for d in scores_dirs]))


def _flags(scores_dirs: Sequence[str], teacher_id: str, flags_dir: str, class_map,
           cfg: SweepConfig) -> flagging.Flags:
  """The flags of these scores (with the teacher check, summary and review list), unless
  the flags in flags_dir were made by the same teacher(s) with the same ontology and
  per-class policy."""
  flags_path = os.path.join(flags_dir, flagging.FLAGS_FILE)
  onto_path = cfg.train.ontology or None
  want = dict(model_id=teacher_id, ontology=onto_path, min_positives=cfg.flag_min_positives)
  made_from = flagging.read_flags(flags_path).made_from if files.exists(flags_path) else {}
  if any(made_from.get(k) != want[k] for k in FLAGS_IDENTITY):
    logging.info("flagging up to %g%% of each class's implicit negatives", cfg.max_percent)
    files.makedirs(flags_dir)
    scores = _read_scores(scores_dirs)
    onto = ontology.read_ontology(onto_path, class_map.mids) if onto_path else None
    flags = flagging.flag_scores(scores, cfg.max_percent, onto, cfg.flag_min_positives)
    names = class_map.display_names
    teacher_check.run(scores, flags, names, os.path.join(flags_dir, teacher_check.CHECK_FILE))
    del scores
    flagging.write_summary(flags, names, os.path.join(flags_dir, flagging.SUMMARY))
    flagging.write_review(flags, class_map.mids, names,
                          os.path.join(flags_dir, flagging.REVIEW), percent=REVIEW_PERCENT)
    flagging.write_flags(flags, flags_path)
  return flagging.read_flags(flags_path)


_NO_GAIN = dict(paired_runs=0, **{
    prefix + key: float("nan") for prefix in verdict.METRICS.values()
    for key in ("gain", "gain_seed_low", "gain_seed_high", "gain_clip_low", "gain_clip_high")},
    **{prefix + "significant": "" for prefix in verdict.METRICS.values()})


def _table_row(p: float, results: List[Dict], quality: Dict, gain: Optional[Dict],
               round_index: int, teacher: str, treatment: str = treatments.MASK) -> Dict:
  """One row of the table: the runs' mean metrics, d' spread, flag quality and gain."""
  evals = [r["eval"] for r in results]
  mean = {k: float(np.mean([e[k] for e in evals])) for k in ("d_prime", "lwlrap", "mAP", "AUC")}
  return dict(round=round_index, treatment=treatment if p else "", discard_percent=p,
              teacher=teacher if p else "",
              masked_entries=results[0].get("masked_entries", 0), runs=len(evals), **mean,
              d_prime_min=min(e["d_prime"] for e in evals),
              d_prime_max=max(e["d_prime"] for e in evals),
              flag_precision=quality.get("precision", float("nan")),
              flag_recall=quality.get("recall", float("nan")),
              base_rate=quality.get("base_rate", float("nan")), **(gain or _NO_GAIN))


def truth_provenance(flags_made_from: Dict, truth_csv: str) -> Dict:
  """The perfect mask's provenance: the flags' clip set and class map, made by the truth
  file (whose content id stands where a teacher's model id would)."""
  return dict(flags_made_from, flags=truth_csv,
              model_id="truth " + provenance.file_id(truth_csv))


def reference_runs(train_dir, eval_dir, work_dir, cfg: SweepConfig, truth: set,
                   made_from: Dict) -> Dict[str, Dict]:
  """The references a student is measured against, with a truth file, each run once per
  seed (side by side with cfg.jobs) and paired with the baseline by seed: COMPLETE, trained
  on the complete labels (its gain is what the missing labels cost), and PERFECT_MASK,
  masking exactly the missing labels (what flags of precision and recall 1 would give: the
  most loss masking can recover, since a mask only removes wrong negatives and never adds
  the positive). made_from: the perfect mask's provenance (truth_provenance). run() trains
  them beside its other runs; this is for an experiment that wants them alone."""
  entries = evaluation.truth_as_entries(truth)
  kinds = {}
  if cfg.complete_reference:
    kinds[COMPLETE] = dict(add_positives=entries)
  if cfg.perfect_mask_reference:
    kinds[PERFECT_MASK] = dict(discards=dataclasses.replace(entries, made_from=made_from))
  with side_by_side.Runner(cfg.resolved_jobs()) as runner:
    futures = {name: [_submit(runner, train_dir, eval_dir, Run(
        reference_dir(work_dir, name, i), _seeded(cfg, i), **how)) for i in range(cfg.seeds)]
        for name, how in kinds.items()}
    return {name: reference_summary(work_dir, eval_dir, cfg, name, _results(fs),
                                    entries.count)
            for name, fs in futures.items()}


def reference_summary(work_dir: str, eval_dir: str, cfg: SweepConfig, name: str,
                      results: List[Dict], missing_labels: int) -> Dict:
  """A reference's mean d' and lwlrap over its seeds and its gain over the baseline,
  paired by seed (verdict.paired_gain)."""
  _, labels, _ = evaluation.eval_scores(run_dir(work_dir, 0.0), eval_dir)
  baselines = [evaluation.eval_scores(run_dir(work_dir, 0.0, i), eval_dir)[2]
               for i in range(cfg.seeds)]
  scores = [evaluation.eval_scores(reference_dir(work_dir, name, i), eval_dir)[2]
            for i in range(cfg.seeds)]
  return dict(d_prime=float(np.mean([r["eval"]["d_prime"] for r in results])),
              lwlrap=float(np.mean([r["eval"]["lwlrap"] for r in results])),
              missing_labels=missing_labels,
              **verdict.paired_gain(labels, scores, baselines, cfg.verdict_params))


def write_table(table: List[Dict], work_dir: str, references: Optional[Dict] = None) -> str:
  """results.csv and results.md: the table, then the references (reference_runs) and how
  much of the missing labels' cost the best p recovers."""
  evaluation.write_rows(table, os.path.join(work_dir, RESULTS_CSV))
  base = table[0]
  runs = table[0].get("runs", 1)
  rounds = max(r.get("round", 1) for r in table) > 1
  lines = ["d' = sqrt(2) * Phi^-1(AUC averaged over classes), as AudioSet papers report it.",
           f"Means over {runs} run(s) per p (seeds); d' range = lowest..highest run.\n" if runs > 1
           else "",
           "Gains: d' and lwlrap over the baseline, paired by seed, with 95% intervals over "
           "seeds and over eval clips (bootstrap); significant when every interval excludes 0.\n",
           "Round r >= 2: the flags of the best student of round r - 1 (its teacher column).\n"
           if rounds else "",
           "Treatment: what the student does with the flagged entries (mask: left out of the "
           "loss; soft: the teacher's score as target; distill<w>: every target (1 - w) x "
           "label + w x teacher, flagged ones the teacher's; positive: made positives).\n",
           ("| round | teacher " if rounds else "") +
           "| treatment | discard % | flagged entries | d' | d' range | lwlrap | mAP | "
           "flag precision | flag recall | d' gain [95% intervals]: verdict | lwlrap gain "
           "[95% intervals]: verdict |",
           ("|---:|---" if rounds else "") +
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"]
  for r in table:
    def delta(k):
      d = r[k] - base[k]
      return f"{r[k]:.3f}" + ("" if r is base else f" ({d:+.3f})")
    prec = "" if np.isnan(r["flag_precision"]) else f"{r['flag_precision']:.3f}"
    rec = "" if np.isnan(r["flag_recall"]) else f"{r['flag_recall']:.3f}"
    spread = f"{r.get('d_prime_min', r['d_prime']):.3f}..{r.get('d_prime_max', r['d_prime']):.3f}"
    gains = (f"{verdict.describe(r)} | {verdict.describe(r, 'lwlrap')}"
             if r.get("paired_runs") else "baseline | baseline")
    lines.append((f"| {r['round']} | {r['teacher']} " if rounds else "") +
                 f"| {r.get('treatment') or 'baseline'} "
                 f"| {r['discard_percent']:g} | {r['masked_entries']} | {delta('d_prime')} | "
                 f"{spread} | {delta('lwlrap')} | {delta('mAP')} | {prec} | {rec} | {gains} |")
  lines += _reference_lines(table, references or {})
  if not np.isnan(table[-1]["base_rate"]):
    lines.append(f"\nBase rate (missing labels among implicit negatives, the precision of "
                 f"random flags): {table[-1]['base_rate']:.4f}")
  text = "\n".join(l for l in lines if l) + "\n"
  path = os.path.join(work_dir, RESULTS_MD)
  with files.atomic_write(path) as f:
    f.write(text)
  return text


def _reference_lines(table: List[Dict], references: Dict[str, Dict]) -> List[str]:
  """What the missing labels cost, what a perfect mask recovers, and the best p's share of
  each, for d' and for lwlrap."""
  complete, perfect = references.get(COMPLETE), references.get(PERFECT_MASK)
  lines = []
  if not references:
    return lines
  for name, ref, what in ((COMPLETE, complete, "Complete labels (the {n} missing ones added "
                           "back)"),
                          (PERFECT_MASK, perfect, "Perfect mask (exactly the {n} missing labels "
                           "masked: flags of precision and recall 1)")):
    if ref:
      lines.append(f"\n{what.format(n=ref['missing_labels'])}, same recipe and seeds: d' "
                   f"{ref['d_prime']:.3f}, gain {verdict.describe(ref)}; lwlrap "
                   f"{ref['lwlrap']:.3f}, gain {verdict.describe(ref, 'lwlrap')}.")
  best = max(table[1:] or table, key=lambda r: r["d_prime"])
  if not best.get("paired_runs"):
    return lines
  which = f", round {best['round']}" if len(_by_round(table)) > 1 else ""
  if (best.get("treatment") or treatments.MASK) != treatments.MASK:
    which = f", {best['treatment']}{which}"
  for metric, prefix in verdict.METRICS.items():
    shares = [f"{100 * best[prefix + 'gain'] / ref[prefix + 'gain']:.0f}% of {label}"
              for ref, label in ((complete, "what the missing labels cost"),
                                 (perfect, "what a perfect mask gains"))
              if ref and ref[prefix + "gain"] > 0]
    if complete and perfect and complete[prefix + "gain"] > 0:
      shares.append(f"a perfect mask itself recovers "
                    f"{100 * perfect[prefix + 'gain'] / complete[prefix + 'gain']:.0f}% of the "
                    f"cost")
    name = METRIC_NAMES[metric]
    lines.append(f"By {name}, the best p ({best['discard_percent']:g}%{which}) recovers "
                 + "; ".join(shares) + "." if shares else
                 f"By {name}, no reference beat the baseline: nothing to recover.")
  return lines


def results_text(work_dir: str) -> str:
  """results.md as written by the last run."""
  with files.open(os.path.join(work_dir, RESULTS_MD)) as f:
    return f.read()


def _percent_axis(ax, percents):
  """The paper's grid is far from uniform: evenly spaced points labelled with their p."""
  ax.set_xticks(range(len(percents)), [f"{p:g}" for p in percents])
  ax.set_xlabel("% of implicit negatives per class")
  ax.grid(alpha=0.3)


def _by_round(rows: List[Dict]) -> Dict[int, List[Dict]]:
  out = {}
  for r in rows:
    out.setdefault(r.get("round", 1), []).append(r)
  return out


def _series(table: List[Dict]) -> Dict[str, List[Dict]]:
  """The students' rows by (round, treatment), named for a plot's legend."""
  rounds = len(_by_round(table)) > 1
  out = {}
  for r in table:
    if r["discard_percent"] > 0:
      name = (r.get("treatment") or treatments.MASK) + (
          f", round {r.get('round', 1)}" if rounds else "")
      out.setdefault(name, []).append(r)
  return out


def plot(table: List[Dict], quality: List[Dict], work_dir: str) -> List[str]:
  """The paper's figure (metrics against % discarded, baseline dashed; one line per round)
  and flag quality."""
  percents = sorted({r["discard_percent"] for r in table})
  x = {p: i for i, p in enumerate(percents)}
  base, series = table[0], _series(table)
  paths = []
  fig, axes = plt.subplots(1, 5, figsize=(21, 3.6))
  for ax, key, label in zip(axes, ("d_prime", "lwlrap", "mAP"),
                            ("d' (from mean AUC)", "lwlrap", "mAP")):
    for k, (name, rows) in enumerate(series.items()):
      rows = [base] + rows
      xs = [x[r["discard_percent"]] for r in rows]
      line, = ax.plot(xs, [r[key] for r in rows], "o-", label=f"{name} (mean over seeds)")
      if key == "d_prime" and base.get("runs", 1) > 1:
        ax.fill_between(xs, [r["d_prime_min"] for r in rows], [r["d_prime_max"] for r in rows],
                        alpha=0.15, color=line.get_color(),
                        label="range over seeds" if k == 0 else None)
    ax.axhline(base[key], color="gray", ls="--", label="baseline (p = 0)")
    ax.set_title(f"{label} on the eval set")
    _percent_axis(ax, percents)
  axes[0].legend()
  _plot_gains(axes[3], table, x, "d_prime")
  _plot_gains(axes[4], table, x, "lwlrap")
  fig.tight_layout()
  paths.append(os.path.join(work_dir, PLOT_METRICS))
  files.save_figure(fig, paths[-1], dpi=110)
  plt.close(fig)
  if quality:
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    by_round = _by_round(quality)
    grid = sorted({r["percent"] for r in quality})
    for k, rows in by_round.items():
      rows = sorted(rows, key=lambda r: r["percent"])
      xs = [grid.index(r["percent"]) for r in rows]
      suffix = "" if len(by_round) == 1 else f", round {k}"
      ax.plot(xs, [r["precision"] for r in rows], "o-", color=f"C{k - 1}",
              label="precision" + suffix)
      ax.plot(xs, [r["recall"] for r in rows], "s:", color=f"C{k - 1}", label="recall" + suffix)
    ax.axhline(quality[0]["base_rate"], color="gray", ls="--", label="base rate (random flags)")
    ax.set_title("flags against the known missing labels")
    _percent_axis(ax, grid)
    ax.legend()
    fig.tight_layout()
    paths.append(os.path.join(work_dir, PLOT_FLAGS))
    files.save_figure(fig, paths[-1], dpi=110)
    plt.close(fig)
  return paths


def _plot_gains(ax, table: List[Dict], x: Dict[float, int], metric: str) -> None:
  """Each p's paired gain in a metric (verdict.METRICS) with its 95% intervals (clips, and
  seeds where there are 2+), the rounds' and treatments' side by side."""
  k = verdict.METRICS[metric]
  series = _series(table)
  names = list(series)
  labelled = set()
  for name, rows in series.items():
    for r in rows:
      if not r.get("paired_runs"):
        continue
      g = r[k + "gain"]
      j = names.index(name)
      i = x[r["discard_percent"]] + (0.5 / len(names)) * (j - (len(names) - 1) / 2)
      suffix = "" if len(names) == 1 else f", {name}"
      color = f"C{j}"
      ax.errorbar(i - 0.05, g, yerr=[[g - r[k + "gain_clip_low"]], [r[k + "gain_clip_high"] - g]],
                  fmt="o", color=color, capsize=4,
                  label=None if ("clip", suffix) in labelled else "95%: eval clips" + suffix)
      labelled.add(("clip", suffix))
      if not np.isnan(r[k + "gain_seed_low"]):
        ax.errorbar(i + 0.05, g, yerr=[[g - r[k + "gain_seed_low"]],
                                       [r[k + "gain_seed_high"] - g]],
                    fmt="s", color=color, capsize=4, alpha=0.6,
                    label=None if ("seed", suffix) in labelled else "95%: seeds" + suffix)
        labelled.add(("seed", suffix))
      if r[k + "significant"]:
        ax.annotate("*", (i, max(r[k + "gain_clip_high"], g)), ha="center", va="bottom")
  ax.axhline(0, color="gray", ls="--")
  ax.set_title(f"{METRIC_NAMES[metric]} gain over the baseline (* significant)")
  _percent_axis(ax, sorted(x, key=x.get))
  ax.set_xlim(-0.5, len(x) - 0.5)  # room for the rounds' offsets
  ax.legend()


def export_best(table: List[Dict], work_dir: str, train_dir: str):
  """Exports the best run by mean d' (the baseline if no student beats it) to
  work_dir/tagger, unless that export exists; returns (its table row, the tagger dir, or
  None when the examples are not log-mel: a tagger needs the audio frontend)."""
  best = max(table, key=lambda r: r["d_prime"])
  kind = examples.read_info(train_dir).features.kind
  if kind != examples.LOG_MEL:
    logging.info("not exporting a tagger: %s holds %s features, and a tagger starts from "
                 "audio", train_dir, kind)
    return best, None
  tagger = os.path.join(work_dir, TAGGER)
  model = row_dir(work_dir, best)
  metadata = os.path.join(tagger, exporting.METADATA)
  if (not files.exists(metadata) or files.read_json(metadata).get("model_id")
      != provenance.file_id(inference.model_path(model))):
    logging.info("exporting the best run (p = %s) to %s", _run_name(best), tagger)
    exporting.export(model, os.path.join(train_dir, examples.CLASS_MAP), tagger,
                     calibration_files=exporting.calibration_audio(train_dir))
  return best, tagger


def _run_name(row: Dict) -> str:
  """"2%", "2% (soft)", or "2% (soft, round 2)" after the first round (the mask unnamed)."""
  treatment = row.get("treatment") or treatments.MASK
  what = [treatment] if row["discard_percent"] and treatment != treatments.MASK else []
  if row.get("round", 1) > 1:
    what.append(f"round {row['round']}")
  return f"{row['discard_percent']:g}%" + (f" ({', '.join(what)})" if what else "")


def _run_label(row: Dict) -> str:
  """"p = 2%" or "p = 2% soft": how a round's teacher is named."""
  t = row.get("treatment") or treatments.MASK
  return f"p = {row['discard_percent']:g}%" + ("" if t == treatments.MASK else f" {t}")


def best_line(best: Dict, table: List[Dict]) -> str:
  text = (f"Best discard percentage by mean d': {_run_name(best)} "
          f"(d' {best['d_prime']:.3f} vs baseline {table[0]['d_prime']:.3f})")
  return text + (f"; gain {verdict.describe(best)}." if best.get("paired_runs") else ".")


def write_hparams(table: List[Dict], work_dir: str) -> None:
  """One TensorBoard run per round and p with its hparams and final metrics (the HParams
  dashboard)."""
  root = os.path.join(work_dir, LOGS)
  metric_names = ("d_prime", "lwlrap", "mAP")
  with tf.summary.create_file_writer(root).as_default():
    hp.hparams_config(hparams=[hp.HParam("discard_percent", hp.RealInterval(0.0, 100.0)),
                               hp.HParam("round", hp.IntInterval(1, 100)),
                               hp.HParam("treatment", hp.Discrete(sorted(
                                   {r.get("treatment") or "baseline" for r in table})))],
                      metrics=[hp.Metric(f"final/{m}", display_name=m) for m in metric_names])
  for r in table:
    k = r.get("round", 1)
    t = r.get("treatment") or treatments.MASK
    name = (f"{t}_" if r["discard_percent"] and t != treatments.MASK else "") + (
        f"p{r['discard_percent']:g}") + (f"_round{k}" if k > 1 else "")
    with tf.summary.create_file_writer(os.path.join(root, name)).as_default():
      hp.hparams({"discard_percent": float(r["discard_percent"]), "round": int(k),
                  "treatment": r.get("treatment") or "baseline"}, trial_id=name)
      for m in metric_names:
        tf.summary.scalar(f"final/{m}", r[m], step=0)
