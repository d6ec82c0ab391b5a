"""One training run of a sweep, as a worker process takes it, and the scoring of the train
set by a teacher: the pieces the orchestration submits side by side (side_by_side.py)."""

import dataclasses
import os
from typing import Dict, List, Optional, Sequence, Tuple

from absl import logging

from tf_skeptical.util import files, provenance
from tf_skeptical import flagging, folds, inference, scoring, side_by_side, training
from tf_skeptical.sweep import layout
from tf_skeptical.sweep.config import SweepConfig

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


def loaded(kind: str, source, load):
  """load(), kept while runs ask for the same source of this kind (one flags file and one
  set of teacher scores at a time: a round's runs share them)."""
  if _LOADED.get(kind, (None,))[0] != source:
    _LOADED.pop(kind, None)  # the old one freed before the new one is read
    _LOADED[kind] = (source, load())
  return _LOADED[kind][1]


def read_scores(scores_dirs: Sequence[str]) -> scoring.Scores:
  """The teacher's scores of the train set (merged over out-of-fold teachers' folds)."""
  return (scoring.read_scores(scores_dirs[0]) if len(scores_dirs) == 1 else
          scoring.merge_scores([scoring.read_scores(d) for d in scores_dirs]))


def train_run(train_dir: str, eval_dir: Optional[str], run: Run, verbose: int = 2) -> Dict:
  """Trains one run of the sweep (or returns its result if trained on the same flags);
  what a worker process of side_by_side.Runner calls."""
  treatment = run.cfg.treatment_spec
  discards, scores = run.discards, None
  if run.flags_path:
    discards = loaded("flags", (run.flags_path, run.flags_id), lambda: flagging.read_flags(
        run.flags_path)).discards(run.p, with_scores=treatment.needs_flag_scores)
    if treatment.needs_teacher_scores:
      scores = loaded("scores", (run.scores_dirs, run.flags_id),
                      lambda: read_scores(run.scores_dirs))
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


def submit(runner: side_by_side.Runner, train_dir, eval_dir, run: Run):
  """Submits a run; side by side, Keras' epoch lines would interleave, so each run says
  only that it is done (side_by_side.Runner logs it)."""
  return runner.submit(train_run, train_dir, eval_dir, run, 0 if runner.parallel else 2,
                       name=run.model_dir)


def results(futures) -> List[Dict]:
  """The results of submitted runs, in the order submitted."""
  return [future.result() for future in futures]


def score(train_dir: str, model_dir: str, scores_dir: str, cfg: SweepConfig,
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
  model_dirs = [os.path.join(work_dir, layout.FOLD_TEACHERS, fold.name) for fold in fold_list]
  results([submit(runner, train_dir, None, Run(model_dir, dataclasses.replace(
      cfg.train, holdout_folds=fold.count, holdout_fold=fold.index)))
           for fold, model_dir in zip(fold_list, model_dirs)])
  dirs, ids = [], []
  for fold, model_dir in zip(fold_list, model_dirs):
    dirs.append(os.path.join(work_dir, layout.FOLD_SCORES, fold.name))
    score(train_dir, model_dir, dirs[-1], cfg, fold)
    ids.append(provenance.file_id(inference.model_path(model_dir)))
  return dirs, folds.combined_model_id(ids)
