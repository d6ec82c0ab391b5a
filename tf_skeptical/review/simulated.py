"""A simulated reviewer, for experiments on data whose missing labels are known: it answers
a budget of candidates from the truth file (present where the entry is a known missing
label, absent otherwise) into a verdicts file, as a careful listener would.

teacher order (queue.py): the first `budget` flagged candidates; random: `budget` entries
drawn uniformly from all the implicit negatives of the train set (a review without the
teacher: rank 0 and no teacher score in the file).
"""

import csv
import math

import numpy as np

from tf_skeptical import errors
from tf_skeptical.data import examples
from tf_skeptical.review import queue, verdicts
from tf_skeptical.review.session import flags_file, made_from
from tf_skeptical.util import files

RANDOM = "random"


def read_truth(path: str) -> set:
  """{(clip id, mid)} of a truth file (train_missing_labels.csv: clip_id, mid, ...)."""
  with files.open(path) as f:
    rows = csv.DictReader(line for line in f if not line.startswith("#"))
    if not rows.fieldnames or not {"clip_id", "mid"} <= set(rows.fieldnames):
      raise errors.BadValue(f"{path}: not a truth file (its columns should include clip_id "
                            "and mid)")
    return {(r["clip_id"], r["mid"]) for r in rows}


def review(flags_path: str, truth_csv: str, verdicts_path: str, budget: int,
           order: str = queue.TEACHER, percent: float = 0.0, seed: int = 0,
           examples_dir: str = "") -> dict:
  """Appends `budget` simulated answers to verdicts_path (started for these flags);
  returns the counts of the answers given."""
  from tf_skeptical import flagging
  path = flags_file(flags_path)
  flags = flagging.read_flags(path)
  verdicts.open_for(verdicts_path, made_from(flags, path))
  truth = read_truth(truth_csv)
  info = examples.read_info(examples_dir or flags.made_from["examples"])
  mids, names = info.class_map.mids, info.class_map.display_names
  if order == RANDOM:
    picked = _random_implicit(info.directory, len(mids), budget, seed)
    answers = [verdicts.Answer(clip_id, mids[c], names[c],
                               verdicts.PRESENT if (clip_id, mids[c]) in truth
                               else verdicts.ABSENT, math.nan, 0) for clip_id, c in picked]
  else:
    chosen = queue.candidates(flags, percent or flags.max_percent, order)[:budget]
    answers = []
    for i in chosen:
      clip_id, c = str(flags.clip_ids[flags.clip[i]]), int(flags.cls[i])
      answers.append(verdicts.Answer(
          clip_id, mids[c], names[c],
          verdicts.PRESENT if (clip_id, mids[c]) in truth else verdicts.ABSENT,
          float(flags.score[i]), int(flags.rank[i])))
  verdicts.append(verdicts_path, answers)
  present = sum(a.verdict == verdicts.PRESENT for a in answers)
  return dict(answered=len(answers), present=present, absent=len(answers) - present)


def _random_implicit(examples_dir: str, num_classes: int, budget: int, seed: int):
  """`budget` (clip id, class) entries drawn without replacement from the implicit
  negatives (neither positive nor explicit negative) of the examples."""
  ids, known = [], []
  for clip in examples.iterate(examples_dir):
    ids.append(clip["clip_id"])
    known.append((clip["positives"] + clip["explicit_negatives"]) > 0)
  implicit = np.flatnonzero(~np.stack(known).ravel())
  if budget > implicit.size:
    raise errors.BadValue(f"a budget of {budget} but only {implicit.size} implicit negatives")
  picked = np.sort(np.random.default_rng(seed).choice(implicit, budget, replace=False))
  return [(ids[k // num_classes], int(k % num_classes)) for k in picked]
