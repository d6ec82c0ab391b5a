"""Clip-level evaluation metrics: d', lwlrap, mAP and AUC, exact and tie-aware.

d' is reported as AudioSet papers and codebases report it (YAMNet's model card, PANNs, AST,
PSLA): d' = sqrt(2) * Phi^-1(AUC) of the AUC averaged over classes first. The mean of the
per-class d' values is a different number (one perfect class adds several units to it) and
is kept under its own name, `mean_class_d_prime`.

Scores are pooled per clip first (inference.pool_patches: mean of patch scores, or max).
Classes with no positive or no negative clip in the eval set have no AUC or AP; they are
excluded and counted.
"""

import dataclasses
from typing import Dict

import numpy as np
from scipy import special, stats

from tf_skeptical import errors

# d' is infinite at AUC 1; clip so that a perfect AUC gives a large, finite value.
_AUC_CLIP = 1e-6


def _evaluable(labels: np.ndarray) -> np.ndarray:
  positives = labels.sum(axis=0)
  return (positives > 0) & (positives < labels.shape[0])


def per_class_auc(labels: np.ndarray, scores: np.ndarray) -> np.ndarray:
  """ROC AUC per class via the Mann-Whitney statistic with average ranks (ties count 1/2).

  NaN for classes without both positives and negatives.
  """
  labels = np.asarray(labels) > 0
  ranks = stats.rankdata(scores, axis=0)
  n_pos = labels.sum(axis=0)
  n_neg = labels.shape[0] - n_pos
  with np.errstate(invalid="ignore", divide="ignore"):
    auc = ((ranks * labels).sum(axis=0) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
  auc[~_evaluable(labels)] = np.nan
  return auc


class ResampledAUC:
  """per_class_auc of resamples of one (labels, scores) set, given each clip's multiplicity
  in the resample, many resamples at once: the bootstrap in verdict.py evaluates a thousand
  of them for every run.

  A resample's AUC of class c is the Mann-Whitney count with every clip weighted by its
  multiplicity w: sum over positives i and negatives j of w_i w_j [s_j < s_i] (ties 1/2),
  over (sum of positives' w) x (sum of negatives' w). For a fixed class that is
  sum_i w_i (W @ M)_i, where M[j, i] is negative j's credit toward positive i (1, 1/2 or
  0), set up once here: a batch of resamples W [B, N] takes one matrix product per block
  of classes, with no per-class or per-resample Python loop. M has a column per positive
  label, so its size is N x (the eval set's positive labels), built a block of classes at a
  time within `block_entries`."""

  def __init__(self, labels: np.ndarray, scores: np.ndarray, block_entries: int = 1 << 22):
    labels = np.asarray(labels) > 0
    scores = np.asarray(scores, np.float64)
    n, c = scores.shape
    self.labels = labels.astype(np.float64)  # [N, C]: each resample's positives per class
    self.blocks = []  # (first class, end class, positives' clips, M, class of each column)
    per_block = max(1, block_entries // max(n, 1))
    first = 0
    while first < c:
      end, width = first, 0
      while end < c and (end == first or width + labels[:, end].sum() <= per_block):
        width += int(labels[:, end].sum())
        end += 1
      clips, columns, owner = [], [], []
      for k in range(first, end):
        positive = np.flatnonzero(labels[:, k])
        s, top = scores[:, k], scores[positive, k]
        credit = (s[:, None] < top[None, :]) + 0.5 * (s[:, None] == top[None, :])
        columns.append(credit * ~labels[:, k, None])
        clips.append(positive)
        owner.append(np.full(positive.size, k - first))
      owner = np.concatenate(owner)
      membership = np.zeros((owner.size, end - first))
      membership[np.arange(owner.size), owner] = 1.0
      self.blocks.append((first, end, np.concatenate(clips), np.hstack(columns), membership))
      first = end

  def batch(self, counts: np.ndarray) -> np.ndarray:
    """counts [B, N]: each resample's multiplicity of each clip -> [B, C] AUCs (NaN for
    classes without both a positive and a negative in that resample)."""
    w = np.atleast_2d(np.asarray(counts, np.float64))
    n_pos = w @ self.labels
    n_neg = w.sum(axis=1, keepdims=True) - n_pos
    above = np.zeros_like(n_pos)  # the Mann-Whitney count
    for first, end, clips, credit, membership in self.blocks:
      above[:, first:end] = (w[:, clips] * (w @ credit)) @ membership
    with np.errstate(invalid="ignore", divide="ignore"):
      auc = above / (n_pos * n_neg)
    auc[(n_pos == 0) | (n_neg == 0)] = np.nan
    return auc

  def __call__(self, counts: np.ndarray) -> np.ndarray:
    """counts [N] -> [C] AUCs of one resample."""
    return self.batch(np.asarray(counts)[None])[0]


def mean_over_classes(values: np.ndarray) -> np.ndarray:
  """The mean over the last axis of the values that are not NaN (NaN where none is, without
  numpy's warning about an empty slice)."""
  valid = ~np.isnan(values)
  count = valid.sum(axis=-1)
  total = np.where(valid, values, 0.0).sum(axis=-1)
  with np.errstate(invalid="ignore", divide="ignore"):
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def d_prime(auc):
  """d' = sqrt(2) * Phi^-1(AUC)."""
  return np.sqrt(2.0) * special.ndtri(np.clip(auc, _AUC_CLIP, 1 - _AUC_CLIP))


def per_class_average_precision(labels: np.ndarray, scores: np.ndarray) -> np.ndarray:
  """AP per class: sum over distinct thresholds of (recall step) x precision."""
  labels = np.asarray(labels) > 0
  out = np.full(labels.shape[1], np.nan)
  for c in np.flatnonzero(_evaluable(labels)):
    order = np.argsort(-scores[:, c], kind="stable")
    s, y = scores[order, c], labels[order, c]
    tp, fp = np.cumsum(y), np.cumsum(~y)
    last_of_tie = np.r_[s[1:] != s[:-1], True]  # thresholds at distinct scores
    tp, fp = tp[last_of_tie], fp[last_of_tie]
    recall_steps = np.diff(np.r_[0, tp]) / tp[-1]
    out[c] = np.sum(recall_steps * tp / (tp + fp))
  return out


def lwlrap_per_clip(labels: np.ndarray, scores: np.ndarray, chunk: int = 256):
  """Each clip's share of lwlrap: (precisions [N], positives [N]), where precisions[i] sums,
  over clip i's positive classes, the fraction of positives among the classes scored at least
  as high on that clip. lwlrap = precisions.sum() / positives.sum(), and a resample with
  multiplicities w has lwlrap w @ precisions / w @ positives (verdict.py's bootstrap)."""
  labels = np.asarray(labels) > 0
  precisions = np.zeros(labels.shape[0])
  for a in range(0, labels.shape[0], chunk):
    y, s = labels[a:a + chunk], scores[a:a + chunk]
    at_least = s[:, None, :] >= s[:, :, None]  # [clip, j, k]: s_k >= s_j
    ranked_above = at_least.sum(axis=2)
    positive_above = (at_least & y[:, None, :]).sum(axis=2)
    precisions[a:a + chunk] = np.where(y, positive_above / ranked_above, 0.0).sum(axis=1)
  return precisions, labels.sum(axis=1).astype(np.float64)


def lwlrap(labels: np.ndarray, scores: np.ndarray, chunk: int = 256) -> float:
  """Label-weighted label-ranking average precision (DCASE 2019 Task 2).

  For each (clip, positive class) pair: among the classes scored at least as high as it on
  that clip, the fraction that are positive. The average over all pairs equals per-class
  LRAP weighted by each class's share of the positive labels.
  """
  precisions, positives = lwlrap_per_clip(labels, scores, chunk)
  pairs = positives.sum()
  return float(precisions.sum() / pairs) if pairs else float("nan")


@dataclasses.dataclass(frozen=True)
class Evaluation:
  d_prime: float  # from the mean AUC over classes: the AudioSet convention
  lwlrap: float
  mAP: float
  auc: float
  num_classes_evaluated: int
  num_classes_excluded: int
  per_class: Dict[str, np.ndarray]
  mean_class_d_prime: float = float("nan")  # the mean of per-class d' values

  def summary(self) -> Dict[str, float]:
    return {"d_prime": self.d_prime, "lwlrap": self.lwlrap, "mAP": self.mAP, "AUC": self.auc,
            "mean_class_d_prime": self.mean_class_d_prime,
            "classes_evaluated": self.num_classes_evaluated,
            "classes_excluded": self.num_classes_excluded}


def evaluate(labels: np.ndarray, scores: np.ndarray) -> Evaluation:
  """All clip-level metrics; per-class arrays hold NaN for excluded classes."""
  labels = np.asarray(labels) > 0
  scores = np.asarray(scores, np.float64)
  if labels.shape != scores.shape:
    raise errors.BadValue(f"labels {labels.shape} and scores {scores.shape} differ in shape")
  auc = per_class_auc(labels, scores)
  ap = per_class_average_precision(labels, scores)
  dp = d_prime(auc)
  ok = ~np.isnan(auc)
  mean_auc = float(np.mean(auc[ok])) if ok.any() else float("nan")
  return Evaluation(
      d_prime=float(d_prime(mean_auc)),
      lwlrap=float(lwlrap(labels, scores)),
      mAP=float(np.mean(ap[ok])) if ok.any() else float("nan"),
      auc=mean_auc,
      num_classes_evaluated=int(ok.sum()), num_classes_excluded=int((~ok).sum()),
      per_class={"d_prime": dp, "AP": ap, "AUC": auc},
      mean_class_d_prime=float(np.mean(dp[ok])) if ok.any() else float("nan"))
