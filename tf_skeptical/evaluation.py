"""Evaluation: clip-level metrics of a model, and the quality of flags where the truth is known.

Flag quality at p: precision = truly missing labels among the flagged entries / flagged
entries; recall = truly missing labels flagged / all truly missing labels. The base rate is
the missing labels' share of all implicit negatives: the precision of flagging at random.
"""

import csv
import os
from typing import Dict, Iterable, List, Optional

import numpy as np
import tensorflow as tf

from tf_skeptical.data import examples
from tf_skeptical.util import files, output_paths
from tf_skeptical import inference, metrics
from tf_skeptical.data.class_map import ClassMap
from tf_skeptical.entries import Entries
from tf_skeptical.flagging import Flags

EVAL_JSON = "eval.json"
FLAG_QUALITY = "flag_quality.csv"
OUTPUT = output_paths.OutputKind("evaluation directory", (EVAL_JSON, FLAG_QUALITY, "logs"))
EVAL_SCORES = "eval_scores.npz"  # a trained run's eval clip scores, beside its model


def evaluate(model, eval_dir: str, pooling: str = "mean", hop_frames: Optional[int] = None,
             model_name: str = "model") -> metrics.Evaluation:
  """Clip-level metrics of a model on eval examples (tfsk_evaluate; training evaluates its
  own model through inference.predict_clip_scores).

  hop_frames: frames between patches; default the model's frontend's (YAMNet: 48).
  """
  _, labels, scores = inference.predict_clip_scores(model, eval_dir, model_name=model_name,
                                                    hop_frames=hop_frames, pooling=pooling)
  return metrics.evaluate(labels, scores)


def evaluate_model(model_path: str, eval_dir: str, pooling: str = "mean",
                   hop_frames: Optional[int] = None) -> metrics.Evaluation:
  """`evaluate` of a trained model, from its directory or .keras file."""
  return evaluate(inference.load_model(model_path), eval_dir, pooling, hop_frames, model_path)


def write_eval_scores(model_dir: str, ids, labels, scores, pooling: str = "mean") -> None:
  """Keeps a run's eval clip scores beside the model they came from (training writes them
  from its last evaluation, so that comparing runs predicts nothing again)."""
  model_id = inference.model_id(model_dir)
  with files.local_output(os.path.join(model_dir, EVAL_SCORES)) as tmp:
    np.savez(tmp, clip_ids=ids, labels=labels, scores=scores, model_id=np.str_(model_id),
             pooling=np.str_(pooling))


def eval_scores(model_dir: str, eval_dir: str):
  """A run's eval clip scores (mean-pooled): (clip ids, labels, scores), from the run's
  directory when they are of its model and eval clips, else predicted and kept there."""
  path = os.path.join(model_dir, EVAL_SCORES)
  model_id = inference.model_id(model_dir)
  if files.exists(path):
    with files.open(path, "rb") as f, np.load(f) as z:
      pooling = str(z["pooling"]) if "pooling" in z.files else "mean"
      if (str(z["model_id"]) == model_id and pooling == "mean"
          and len(z["clip_ids"]) == examples.read_info(eval_dir).num_clips):
        return z["clip_ids"], z["labels"], z["scores"]
  ids, labels, scores = inference.predict_clip_scores(inference.load_model(model_dir),
                                                      eval_dir, model_name=model_dir)
  write_eval_scores(model_dir, ids, labels, scores)
  return ids, labels, scores


def read_truth(path: str, class_map: ClassMap) -> set:
  """A truth file (CSV clip_id, mid: present events whose train label is missing, as the
  built-in data writes it) -> {(clip_id, class_index)}."""
  index_of = class_map.index_of
  with files.open(path) as f:
    return {(row["clip_id"], index_of[row["mid"]]) for row in csv.DictReader(f)}


def truth_as_entries(truth: set) -> Entries:
  """The truth's (clip, class) entries grouped by clip, as the input pipeline takes them."""
  by_clip = {}
  for clip_id, c in sorted(truth):
    by_clip.setdefault(clip_id, []).append(c)
  return Entries.from_lists(list(by_clip), list(by_clip.values()))


def write_evaluation(evaluation: metrics.Evaluation, class_names, out_dir: str,
                     tensorboard_dir: Optional[str] = None, step: int = 0) -> str:
  """eval.json (summary + per class) and, optionally, the summary as TensorBoard scalars."""
  files.makedirs(out_dir)
  per_class = {name: {k: (None if np.isnan(v[i]) else float(v[i]))
                      for k, v in evaluation.per_class.items()}
               for i, name in enumerate(class_names)}
  path = os.path.join(out_dir, EVAL_JSON)
  files.write_json(path, dict(summary=evaluation.summary(), per_class=per_class))
  if tensorboard_dir:
    with tf.summary.create_file_writer(tensorboard_dir).as_default():
      for k, v in evaluation.summary().items():
        tf.summary.scalar(f"eval/{k}", v, step=step)
  return path


def flag_quality(flags: Flags, truth: set, percents: Iterable[float]) -> List[Dict]:
  """Precision and recall of the flags against {(clip_id, class)} truly missing labels, over
  the classes the teacher can rank (those with train positives: it never saw the others
  present, so its flags there are guesses), with the count of the other classes, the flags
  they took and how many of those were right beside them (flags files that do not record
  the classes' positives: every class counts).

  Entries are matched as integers (clip index x classes + class), a chunk of flags at a
  time: at AudioSet's p = 20% there are 2e8 flags, whose clip ids as strings alone would
  take 10 GB."""
  num_classes = flags.num_implicit.size
  ids = np.array([k for k, _ in truth], dtype=str)
  classes = np.fromiter((c for _, c in truth), np.int64, count=len(truth))
  row = np.searchsorted(flags.clip_ids, ids) if ids.size else np.zeros(0, np.int64)
  # Only truly missing labels among the scored clips can ever be flagged.
  scored = row < flags.clip_ids.size
  scored[scored] = flags.clip_ids[row[scored]] == ids[scored]
  truth_keys = np.sort(row[scored] * num_classes + classes[scored])
  total_missing = int(truth_keys.size)
  occurring = (np.ones(num_classes, bool) if flags.num_positives is None
               else flags.num_positives > 0)
  missing_here = int(occurring[truth_keys % num_classes].sum()) if total_missing else 0
  hit = np.zeros(flags.cls.size, bool)
  for a in range(0, hit.size if total_missing else 0, 1 << 22):
    b = a + (1 << 22)
    keys = flags.clip[a:b].astype(np.int64) * num_classes + flags.cls[a:b]
    at = np.minimum(np.searchsorted(truth_keys, keys), total_missing - 1)
    hit[a:b] = truth_keys[at] == keys
  on_occurring = occurring[flags.cls]
  base_rate = missing_here / max(int(flags.num_implicit[occurring].sum()), 1)
  rows = []
  for p in percents:
    if p <= 0:
      continue
    selected = flags.selected(p)
    here, elsewhere = selected & on_occurring, selected & ~on_occurring
    n, tp = int(here.sum()), int((here & hit).sum())
    rows.append(dict(percent=p, flagged=n, truly_missing=tp,
                     precision=tp / n if n else float("nan"),
                     recall=tp / missing_here if missing_here else float("nan"),
                     base_rate=base_rate, classes=int(occurring.sum()),
                     classes_without_positives=int((~occurring).sum()),
                     flagged_without_positives=int(elsewhere.sum()),
                     truly_missing_without_positives=int((elsewhere & hit).sum())))
  return rows


def write_rows(rows: List[Dict], path: str) -> None:
  if not rows:
    return
  with files.atomic_write(path) as f:
    writer = csv.DictWriter(f, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
