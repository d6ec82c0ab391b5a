"""One training run of a sweep, as a worker process takes it, and the scoring of the train
set by a teacher: the pieces the orchestration submits side by side (side_by_side.py)."""

import dataclasses
import os
from typing import Dict, List, Optional, Sequence, Tuple

from absl import logging

from tf_skeptical import flagging, folds, inference, scoring, side_by_side, training
from tf_skeptical.data import examples, ontology
from tf_skeptical.entries import Entries
from tf_skeptical import targets
from tf_skeptical.targets import Targets
from tf_skeptical.treatments import Treatment
from tf_skeptical.util import files
from tf_skeptical.sweep import layout
from tf_skeptical.sweep.config import SweepConfig

# What makes flags the same: the teacher, and the ontology and per-class policy they used.
FLAGS_IDENTITY = ("model_id", "ontology", "min_positives")


@dataclasses.dataclass(frozen=True)
class Run:
  """One training run of the sweep, as a worker process takes it, and what it is told
  (`targets()`): a student's flags and its teacher's scores are named by their files and
  read where the run trains (a few hundred MB at AudioSet's size, not sent between
  processes); a reference's entries are carried (the missing labels: small)."""
  model_dir: str
  cfg: training.TrainConfig
  treatment: Treatment = Treatment()
  p: float = 0.0  # a student: its discard percentage of flags_path
  flags_path: str = ""
  flags_id: tuple = ()  # the flags' FLAGS_IDENTITY: a file rewritten by a new teacher differs
  scores_dirs: Tuple[str, ...] = ()  # the teacher's scores, for treatments that need them
  masked: Optional[Entries] = None  # a reference: exactly these entries masked
  added_positives: Optional[Entries] = None  # or added as positives
  ontology: str = ""  # labels propagated with this ontology ("": as given)
  reviewed: str = ""  # a listening test's verdicts file (review/verdicts.py), or ""

  def targets(self, mids) -> Targets:
    """What the run is told (targets.read), its flags and scores read here, in the worker,
    and kept while the next runs ask for the same ones."""
    if self.masked is not None or self.added_positives is not None:
      onto = ontology.read_ontology(self.ontology, mids) if self.ontology else None
      return Targets(flagged=self.masked, added_positives=self.added_positives, ontology=onto)
    flags = (_last_read("flags", (self.flags_path, self.flags_id),
                        lambda: flagging.read_flags(self.flags_path)) if self.p else None)
    scores = (_last_read("scores", (self.scores_dirs, self.flags_id),
                         lambda: read_scores(self.scores_dirs))
              if self.p and self.treatment.needs_teacher_scores else None)
    return targets.read(percent=self.p, treatment=self.treatment, teacher_scores=scores,
                        ontology=self.ontology, mids=mids, flags=flags,
                        reviewed=self.reviewed)


_LAST_READ: Dict[str, tuple] = {}  # kind -> (source, value): this process's last of each kind


def _last_read(kind: str, source, read):
  """read(), kept while a worker's runs ask for the same source of this kind (one flags
  file and one set of teacher scores at a time: a round's runs share them); the old one is
  freed before the new one is read."""
  if _LAST_READ.get(kind, (None,))[0] != source:
    _LAST_READ.pop(kind, None)
    _LAST_READ[kind] = (source, read())
  return _LAST_READ[kind][1]


def read_scores(scores_dirs: Sequence[str]) -> scoring.Scores:
  """The teacher's scores of the train set (merged over out-of-fold teachers' folds)."""
  return (scoring.read_scores(scores_dirs[0]) if len(scores_dirs) == 1 else
          scoring.merge_scores([scoring.read_scores(d) for d in scores_dirs]))


def train_run(train_dir: str, eval_dir: Optional[str], run: Run, verbose: int = 2) -> Dict:
  """Trains one run of the sweep (or returns its result if trained on the same flags);
  what a worker process of side_by_side.Runner calls."""
  told = run.targets(examples.read_info(train_dir).class_map.mids)
  model_dir = run.model_dir
  if training.is_trained(model_dir):
    result = files.read_json(os.path.join(model_dir, training.RESULT))
    made_from = result.get("flags") or {}
    same_flags = told.flagged is None or all(
        made_from.get(k) == told.flagged.made_from.get(k) for k in FLAGS_IDENTITY)
    same_verdicts = (result.get("verdicts") or {}).get("id") == told.verdicts_id
    if same_flags and same_verdicts:
      logging.info("skipping %s: already trained", model_dir)
      return result
    logging.warning("%s was trained on other %s: training it again", model_dir,
                    "verdicts (another listening test's answers, or none)" if same_flags
                    else "flags (another teacher, ontology or per-class policy)")
    files.remove(model_dir)
  logging.info("training %s on %s", model_dir, told.describe())
  return training.train(train_dir, model_dir, run.cfg, targets=told, eval_dir=eval_dir,
                        verbose=verbose)


def submit(runner: side_by_side.Runner, train_dir, eval_dir, run: Run):
  """Submits a run; side by side, Keras' epoch lines would interleave, so each run says
  only that it is done (side_by_side.Runner logs it)."""
  return runner.submit(train_run, train_dir, eval_dir, run, 0 if runner.parallel else 2,
                       name=run.model_dir)


def results(futures) -> List[Dict]:
  """The results of submitted runs, in the order submitted."""
  return [future.result() for future in futures]


def score(train_dir: str, model_dir: str, scores_dir: str, cfg: SweepConfig,
          fold: Optional[folds.Fold] = None, teacher_class_map: str = "") -> None:
  """Scores (one fold of) the train set with a model (or YAMNet's weights, with its class
  map), unless that model already did."""
  manifest = os.path.join(scores_dir, scoring.MANIFEST)
  if (files.exists(manifest) and files.read_json(manifest).get("model_id")
      == inference.model_id(model_dir)):
    return
  logging.info("scoring %s with %s", "fold %d" % fold.index if fold else "the train set",
               model_dir)
  scoring.score(train_dir, model_dir, scores_dir, local_workers=cfg.score_workers, fold=fold,
                teacher_class_map=teacher_class_map or None)


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
      cfg.train, holdout_folds=fold.count, holdout_fold=fold.index), ontology=cfg.propagated))
           for fold, model_dir in zip(fold_list, model_dirs)])
  dirs, ids = [], []
  for fold, model_dir in zip(fold_list, model_dirs):
    dirs.append(os.path.join(work_dir, layout.FOLD_SCORES, fold.name))
    score(train_dir, model_dir, dirs[-1], cfg, fold)
    ids.append(inference.model_id(model_dir))
  return dirs, folds.combined_model_id(ids)
