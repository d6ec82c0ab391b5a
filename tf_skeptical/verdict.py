"""Did masking help? Each student's d' and lwlrap gains over the baseline, paired, with 95%
intervals.

Runs of one configuration differ by a few hundredths of d' from seed to seed, which is the
size of the gains in question, so a gain means something only next to its uncertainty:

- Paired by seed: the student trained with seed s is compared with the baseline trained
  with seed s (same initialisation and data order; only the mask differs). The gain is the
  mean over seeds of d'(p, s) - d'(0, s).
- Over seeds: with S >= 2 seeds, the t interval of those S paired gains,
  mean +- t(0.975, S - 1) * sd / sqrt(S). It measures training noise.
- Over eval clips: the eval set resampled with replacement (a bootstrap; the same clips for
  the student and its baseline), the gain recomputed on each resample; the 2.5% and 97.5%
  percentiles. It measures how much the number depends on which clips were evaluated.
- Significant: every interval that could be computed lies above zero (or below it).

d' is sqrt(2) Phi^-1 of the AUC averaged over classes (metrics.py), recomputed on each
resample; classes left without a positive in a resample drop out of its mean. lwlrap is a
weighted mean over clips, so a resample's lwlrap weights each clip's share by its
multiplicity. Both metrics use the same resamples. The two can disagree: d' weighs every
class alike (a rare class counts as much as a frequent one), lwlrap weighs every label
alike (frequent classes dominate), so a change that helps the frequent classes and hurts the
rare ones raises lwlrap and lowers d'.
"""

import dataclasses
from typing import Dict, Optional, Sequence

import numpy as np
from scipy import stats

from tf_skeptical import errors
from tf_skeptical import metrics


@dataclasses.dataclass(frozen=True)
class VerdictParams:
  confidence: float = 0.95
  bootstrap: int = 1000  # eval-set resamples
  seed: int = 0  # of the resampling


# The metrics given a verdict, and the prefix of their keys in a verdict's dict.
METRICS = {"d_prime": "", "lwlrap": "lwlrap_"}


class _Resampled:
  """One run's d' and lwlrap on resamples of the eval clips, given each clip's
  multiplicity (all ones: the eval set itself)."""

  def __init__(self, labels: np.ndarray, scores: np.ndarray):
    self.auc = metrics.ResampledAUC(labels, scores)
    self.precisions, self.positives = metrics.lwlrap_per_clip(labels, scores)

  def batch(self, counts: np.ndarray) -> Dict[str, np.ndarray]:
    """counts [B, N] -> {metric: [B]}, every resample at once."""
    with np.errstate(invalid="ignore", divide="ignore"):
      return dict(d_prime=metrics.d_prime(metrics.mean_over_classes(self.auc.batch(counts))),
                  lwlrap=(counts @ self.precisions) / (counts @ self.positives))

  def __call__(self, counts: np.ndarray) -> Dict[str, float]:
    return {m: float(v[0]) for m, v in self.batch(np.asarray(counts)[None]).items()}


HEAD, TAIL = "head", "tail"


def head_and_tail(train_positives: np.ndarray) -> Dict[str, np.ndarray]:
  """{HEAD: the classes with more train positives than the median of the classes that have
  any, TAIL: the other classes that have any}. Classes without a train positive are in
  neither: on a class map that the data covers only in part, they would otherwise make the
  median 0 and the tail the classes that never occur."""
  counts = np.asarray(train_positives)
  occurring = np.flatnonzero(counts > 0)
  median = np.median(counts[occurring]) if occurring.size else 0.0
  return {HEAD: occurring[counts[occurring] > median],
          TAIL: occurring[counts[occurring] <= median]}


def d_prime(labels: np.ndarray, scores: np.ndarray) -> float:
  return float(metrics.d_prime(np.nanmean(metrics.per_class_auc(labels, scores))))


def seed_interval(gains: Sequence[float], confidence: float = 0.95):
  """t interval of the mean of paired gains; (nan, nan) with fewer than 2."""
  g = np.asarray(gains, np.float64)
  if g.size < 2:
    return float("nan"), float("nan")
  half = stats.t.ppf(0.5 + confidence / 2, g.size - 1) * g.std(ddof=1) / np.sqrt(g.size)
  return float(g.mean() - half), float(g.mean() + half)


def seeds_to_resolve(gain: float, seed_low: float, seed_high: float, seeds: int,
                     confidence: float = 0.95, most: int = 10_000) -> int:
  """How many seeds would put the seed interval of a mean paired gain clear of 0 if the
  gain and the seeds' spread stayed as measured (seed_interval's t interval from `seeds`
  runs): the budget a not-yet-significant difference asks for. `most` + 1 when none up to
  `most` would (a gain of 0)."""
  if seeds < 2 or np.isnan(seed_low):
    raise errors.BadValue(f"a spread needs at least 2 seeds, got {seeds}")
  sd = (seed_high - seed_low) / 2 * np.sqrt(seeds) / stats.t.ppf(0.5 + confidence / 2,
                                                                 seeds - 1)
  for n in range(2, most + 1):
    if stats.t.ppf(0.5 + confidence / 2, n - 1) * sd / np.sqrt(n) < abs(gain):
      return n
  return most + 1


def _pairs(labels, students, baselines):
  return [(_Resampled(labels, s), _Resampled(labels, t)) for s, t in zip(students, baselines)]


def _clip_intervals(labels, pairs, params: VerdictParams,
                    batch: int = 128) -> Dict[str, tuple]:
  """Each metric's bootstrap interval over eval clips of the mean paired gain: the same
  resamples for every run, `batch` of them evaluated at once (metrics.ResampledAUC)."""
  rng = np.random.default_rng(params.seed)
  n = labels.shape[0]
  counts = np.stack([np.bincount(rng.integers(0, n, n), minlength=n)
                     for _ in range(params.bootstrap)]).astype(np.float64)
  gains = {m: np.empty(params.bootstrap) for m in METRICS}
  for a in range(0, params.bootstrap, batch):
    part = counts[a:a + batch]
    runs = [(s.batch(part), t.batch(part)) for s, t in pairs]
    for m in METRICS:
      gains[m][a:a + batch] = np.mean([s[m] - t[m] for s, t in runs], axis=0)
  tail = 100 * (1 - params.confidence) / 2
  return {m: tuple(float(v) for v in np.percentile(g, [tail, 100 - tail]))
          for m, g in gains.items()}


def paired_gain(labels: np.ndarray, students: Sequence[np.ndarray],
                baselines: Sequence[np.ndarray],
                params: VerdictParams = VerdictParams()) -> Dict[str, object]:
  """The verdict on one p, for d' (keys gain, gain_seed_low, ..., significant) and lwlrap
  (the same keys prefixed lwlrap_): gain, both intervals, and whether it is significant."""
  if len(students) != len(baselines) or not students:
    raise errors.BadValue(f"{len(students)} student runs and {len(baselines)} baselines: the runs "
                     "must pair up by seed")
  pairs = _pairs(labels, students, baselines)
  ones = np.ones(labels.shape[0])
  full = [(s(ones), t(ones)) for s, t in pairs]
  clips = _clip_intervals(labels, pairs, params)
  out = dict(paired_runs=len(pairs))
  for m, prefix in METRICS.items():
    gains = [s[m] - t[m] for s, t in full]
    seed_low, seed_high = seed_interval(gains, params.confidence)
    clip_low, clip_high = clips[m]
    bounds = [(lo, hi) for lo, hi in ((seed_low, seed_high), (clip_low, clip_high))
              if not np.isnan(lo)]
    significant = all(lo > 0 for lo, _ in bounds) or all(hi < 0 for _, hi in bounds)
    out.update({prefix + "gain": float(np.mean(gains)), prefix + "gain_seed_low": seed_low,
                prefix + "gain_seed_high": seed_high, prefix + "gain_clip_low": clip_low,
                prefix + "gain_clip_high": clip_high,
                prefix + "significant": bool(significant)})
  return out


def describe(row: Dict[str, object], metric: str = "d_prime") -> Optional[str]:
  """'+0.052 [seeds -0.01, +0.11; clips +0.02, +0.08]: not significant' for a table row
  (its d' gain, or its lwlrap gain with metric="lwlrap")."""
  k = METRICS[metric]
  if k + "gain" not in row:
    return None
  seeds = ("" if np.isnan(row[k + "gain_seed_low"]) else
           f"seeds {row[k + 'gain_seed_low']:+.3f}, {row[k + 'gain_seed_high']:+.3f}; ")
  verdict = "significant" if row[k + "significant"] else "not significant"
  return (f"{row[k + 'gain']:+.3f} [{seeds}clips {row[k + 'gain_clip_low']:+.3f}, "
          f"{row[k + 'gain_clip_high']:+.3f}]: {verdict}")
