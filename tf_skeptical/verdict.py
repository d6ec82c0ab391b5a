"""Did masking help? Each student's d' gain over the baseline, paired, with 95% intervals.

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
resample; classes left without a positive in a resample drop out of its mean.
"""

import dataclasses
from typing import Dict, Optional, Sequence

import numpy as np
from scipy import stats

from tf_skeptical import metrics


@dataclasses.dataclass(frozen=True)
class VerdictParams:
  confidence: float = 0.95
  bootstrap: int = 1000  # eval-set resamples
  seed: int = 0  # of the resampling


def d_prime(labels: np.ndarray, scores: np.ndarray) -> float:
  return float(metrics.d_prime(np.nanmean(metrics.per_class_auc(labels, scores))))


def seed_interval(gains: Sequence[float], confidence: float = 0.95):
  """t interval of the mean of paired gains; (nan, nan) with fewer than 2."""
  g = np.asarray(gains, np.float64)
  if g.size < 2:
    return float("nan"), float("nan")
  half = stats.t.ppf(0.5 + confidence / 2, g.size - 1) * g.std(ddof=1) / np.sqrt(g.size)
  return float(g.mean() - half), float(g.mean() + half)


def clip_interval(labels: np.ndarray, students: Sequence[np.ndarray],
                  baselines: Sequence[np.ndarray], params: VerdictParams = VerdictParams()):
  """Bootstrap interval over eval clips of mean_s d'(student_s) - d'(baseline_s).

  labels [N, C]; students and baselines: per seed, clip scores [N, C] in the same clip
  order. Returns (low, high)."""
  rng = np.random.default_rng(params.seed)
  n = labels.shape[0]
  pairs = [(metrics.ResampledAUC(labels, s), metrics.ResampledAUC(labels, t))
           for s, t in zip(students, baselines)]

  def dp(auc, counts):
    return float(metrics.d_prime(np.nanmean(auc(counts))))
  gains = np.empty(params.bootstrap)
  for b in range(params.bootstrap):
    counts = np.bincount(rng.integers(0, n, n), minlength=n)
    gains[b] = np.mean([dp(s, counts) - dp(t, counts) for s, t in pairs])
  tail = 100 * (1 - params.confidence) / 2
  low, high = np.percentile(gains, [tail, 100 - tail])
  return float(low), float(high)


def paired_gain(labels: np.ndarray, students: Sequence[np.ndarray],
                baselines: Sequence[np.ndarray],
                params: VerdictParams = VerdictParams()) -> Dict[str, object]:
  """The verdict on one p: gain, both intervals, and whether it is significant."""
  if len(students) != len(baselines) or not students:
    raise ValueError(f"{len(students)} student runs and {len(baselines)} baselines: the runs "
                     "must pair up by seed")
  gains = [d_prime(labels, s) - d_prime(labels, t) for s, t in zip(students, baselines)]
  seed_low, seed_high = seed_interval(gains, params.confidence)
  clip_low, clip_high = clip_interval(labels, students, baselines, params)
  bounds = [(lo, hi) for lo, hi in ((seed_low, seed_high), (clip_low, clip_high))
            if not np.isnan(lo)]
  significant = all(lo > 0 for lo, _ in bounds) or all(hi < 0 for _, hi in bounds)
  return dict(gain=float(np.mean(gains)), gain_seed_low=seed_low, gain_seed_high=seed_high,
              gain_clip_low=clip_low, gain_clip_high=clip_high, significant=bool(significant),
              paired_runs=len(gains))


def describe(row: Dict[str, object]) -> Optional[str]:
  """'+0.052 [seeds -0.01, +0.11; clips +0.02, +0.08]: not significant' for a table row."""
  if "gain" not in row:
    return None
  seeds = ("" if np.isnan(row["gain_seed_low"]) else
           f"seeds {row['gain_seed_low']:+.3f}, {row['gain_seed_high']:+.3f}; ")
  verdict = "significant" if row["significant"] else "not significant"
  return (f"{row['gain']:+.3f} [{seeds}clips {row['gain_clip_low']:+.3f}, "
          f"{row['gain_clip_high']:+.3f}]: {verdict}")
