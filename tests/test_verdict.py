"""The verdict on a gain: paired d' and lwlrap differences and their 95% intervals, against
references computed independently (sklearn's AUC and LRAP, a hand-worked t interval, exact
cases)."""

import numpy as np
import pytest
from scipy import special
from sklearn.metrics import label_ranking_average_precision_score, roc_auc_score

from tf_skeptical import verdict


def _data(seed, n=200, c=5):
  rng = np.random.default_rng(seed)
  labels = (rng.random((n, c)) < 0.3).astype(np.float32)
  labels[0], labels[1] = 1, 0  # every class has a positive and a negative
  noisy = lambda s: np.clip(labels * s + rng.normal(0, 0.5, labels.shape), -3, 3)  # noqa
  return labels, noisy


def test_d_prime_is_sqrt2_probit_of_sklearns_mean_auc():
  labels, noisy = _data(0)
  scores = noisy(1.0)
  mean_auc = np.mean([roc_auc_score(labels[:, k], scores[:, k]) for k in range(5)])
  assert verdict.d_prime(labels, scores) == pytest.approx(np.sqrt(2) * special.ndtri(mean_auc))


def test_seed_interval_hand_worked():
  # gains 0.1 and 0.3: mean 0.2, sd 0.1414, t(0.975, 1) = 12.706, half = 12.706 * 0.1 = 1.2706
  low, high = verdict.seed_interval([0.1, 0.3])
  assert (low, high) == pytest.approx((0.2 - 1.27062, 0.2 + 1.27062), abs=1e-4)
  assert all(np.isnan(verdict.seed_interval([0.1])))


def test_seeds_to_resolve_hand_worked_and_against_the_interval():
  # gains 0.1 and 0.3 (mean 0.2, sd 0.1414): half-widths t(n - 1) * 0.1414 / sqrt(n) are
  # 1.271, 0.351, 0.225 and 0.176 for n = 2 .. 5, so 5 seeds clear 0.2.
  low, high = verdict.seed_interval([0.1, 0.3])
  assert verdict.seeds_to_resolve(0.2, low, high, 2) == 5
  # Gains of n seeds with that mean and spread: the interval clears 0 at n, not at n - 1.
  rng = np.random.default_rng(0)
  for _ in range(20):
    mean, sd, seeds = rng.uniform(0.01, 0.1), rng.uniform(0.02, 0.3), int(rng.integers(3, 9))
    def gains(n):
      z = rng.standard_normal(n)
      return mean + sd * (z - z.mean()) / z.std(ddof=1)
    low, high = verdict.seed_interval(gains(seeds))
    n = verdict.seeds_to_resolve(mean, low, high, seeds)
    assert verdict.seed_interval(gains(n))[0] > 0
    assert n == 2 or verdict.seed_interval(gains(n - 1))[0] <= 0
  assert verdict.seeds_to_resolve(0.0, -0.1, 0.1, 5, most=50) == 51


def test_a_student_equal_to_its_baseline_gains_nothing_and_is_not_significant():
  labels, noisy = _data(1)
  runs = [noisy(1.0), noisy(1.0)]
  row = verdict.paired_gain(labels, runs, runs, verdict.VerdictParams(bootstrap=200))
  assert row["gain"] == 0 and row["gain_clip_low"] == row["gain_clip_high"] == 0
  assert row["lwlrap_gain"] == 0 == row["lwlrap_gain_clip_low"] == row["lwlrap_gain_clip_high"]
  assert not row["significant"] and not row["lwlrap_significant"]


def test_a_clearly_better_student_is_significant_and_the_gain_is_paired_by_seed():
  labels, noisy = _data(2)
  students = [noisy(2.0), noisy(2.0)]
  baselines = [noisy(0.5), noisy(0.5)]
  row = verdict.paired_gain(labels, students, baselines, verdict.VerdictParams(bootstrap=200))
  pairs = [verdict.d_prime(labels, s) - verdict.d_prime(labels, b)
           for s, b in zip(students, baselines)]
  assert row["gain"] == pytest.approx(np.mean(pairs))
  assert row["gain_seed_low"] <= row["gain"] <= row["gain_seed_high"]
  assert 0 < row["gain_clip_low"] < row["gain_clip_high"]
  assert row["significant"] and row["paired_runs"] == 2
  assert "significant" in verdict.describe(row)
  lwlrap = lambda s: label_ranking_average_precision_score(  # noqa: E731
      labels, s, sample_weight=labels.sum(axis=1))
  assert row["lwlrap_gain"] == pytest.approx(
      np.mean([lwlrap(s) - lwlrap(b) for s, b in zip(students, baselines)]), abs=1e-12)
  assert 0 < row["lwlrap_gain_clip_low"] < row["lwlrap_gain_clip_high"]
  assert row["lwlrap_significant"]
  assert verdict.describe(row, "lwlrap").startswith(f"{row['lwlrap_gain']:+.3f} [seeds")
  # Swapped, it is significantly worse.
  worse = verdict.paired_gain(labels, baselines, students, verdict.VerdictParams(bootstrap=200))
  assert worse["gain"] == pytest.approx(-row["gain"]) and worse["significant"]


def test_the_clip_interval_covers_the_true_gain_about_95_percent_of_the_time():
  """Coverage over independent eval sets drawn from one population (a property of the
  bootstrap, checked loosely: 40 draws)."""
  rng = np.random.default_rng(3)
  covered, trials = 0, 40
  big_labels = (rng.random((20000, 3)) < 0.3).astype(np.float32)
  good = big_labels + rng.normal(0, 0.7, big_labels.shape)
  bad = big_labels + rng.normal(0, 1.0, big_labels.shape)
  truth = verdict.d_prime(big_labels, good) - verdict.d_prime(big_labels, bad)
  for t in range(trials):
    idx = rng.integers(0, 20000, 300)
    row = verdict.paired_gain(big_labels[idx], [good[idx]], [bad[idx]],
                              verdict.VerdictParams(bootstrap=200, seed=t))
    covered += row["gain_clip_low"] <= truth <= row["gain_clip_high"]
  assert covered >= 33  # 95% nominal; P(covered < 33 | 0.95) is below 0.2%


def test_the_lwlrap_clip_interval_covers_the_true_gain_about_95_percent_of_the_time():
  """As above for lwlrap: the population's gain from 20000 clips, intervals from 300."""
  rng = np.random.default_rng(5)
  covered, trials = 0, 40
  big_labels = (rng.random((20000, 4)) < 0.3).astype(np.float32)
  big_labels[big_labels.sum(axis=1) == 0, 0] = 1  # every clip has a label (as in AudioSet)
  good = big_labels + rng.normal(0, 0.7, big_labels.shape)
  bad = big_labels + rng.normal(0, 1.0, big_labels.shape)
  lwlrap = lambda y, s: label_ranking_average_precision_score(  # noqa: E731
      y, s, sample_weight=y.sum(axis=1))
  truth = lwlrap(big_labels, good) - lwlrap(big_labels, bad)
  for t in range(trials):
    idx = rng.integers(0, 20000, 300)
    row = verdict.paired_gain(big_labels[idx], [good[idx]], [bad[idx]],
                              verdict.VerdictParams(bootstrap=200, seed=t))
    covered += row["lwlrap_gain_clip_low"] <= truth <= row["lwlrap_gain_clip_high"]
  assert covered >= 33


def test_unpaired_runs_are_refused():
  labels, noisy = _data(4)
  with pytest.raises(ValueError, match="pair up by seed"):
    verdict.paired_gain(labels, [noisy(1.0)], [noisy(1.0), noisy(1.0)])


def test_the_clip_interval_equals_a_per_class_loop_over_the_same_resamples():
  """The bootstrap, all classes and resamples at once, against a plain loop: each resample
  drawn as the verdict draws it, each class's AUC by sklearn with the clips' multiplicities
  as weights, d' from their mean over the classes the resample can score, lwlrap by
  sklearn's LRAP weighted by labels x multiplicity, then the percentiles of the mean paired
  gain. Classes that are rare or absent included (as on a partly covered class map)."""
  rng = np.random.default_rng(21)
  n, c, seeds, resamples = 60, 12, 2, 40
  labels = (rng.random((n, c)) < rng.uniform(0.0, 0.4, c)).astype(np.float32)
  labels[:, 3] = 0  # a class that never occurs
  labels[:2, 5], labels[2:, 5] = 1, 0  # one that occurs twice
  labels[labels.sum(axis=1) == 0, 0] = 1
  students = [np.round(labels + rng.normal(0, 0.8, labels.shape), 1) for _ in range(seeds)]
  baselines = [np.round(labels + rng.normal(0, 1.0, labels.shape), 1) for _ in range(seeds)]
  params = verdict.VerdictParams(bootstrap=resamples, seed=4)
  row = verdict.paired_gain(labels, students, baselines, params)

  def metrics_of(scores, w):
    aucs = [roc_auc_score(labels[:, k], scores[:, k], sample_weight=w) for k in range(c)
            if 0 < (w * labels[:, k]).sum() < w.sum()]
    d = np.sqrt(2) * special.ndtri(np.clip(np.mean(aucs), 1e-6, 1 - 1e-6))
    keep = w > 0
    lw = label_ranking_average_precision_score(
        labels[keep], scores[keep], sample_weight=(labels.sum(axis=1) * w)[keep])
    return d, lw

  draw = np.random.default_rng(params.seed)
  gains = []
  for _ in range(resamples):
    w = np.bincount(draw.integers(0, n, n), minlength=n).astype(np.float64)
    pairs = [(metrics_of(s, w), metrics_of(t, w)) for s, t in zip(students, baselines)]
    gains.append([np.mean([s[i] - t[i] for s, t in pairs]) for i in range(2)])
  low, high = np.percentile(np.array(gains), [2.5, 97.5], axis=0)
  assert (row["gain_clip_low"], row["gain_clip_high"]) == pytest.approx((low[0], high[0]))
  assert (row["lwlrap_gain_clip_low"], row["lwlrap_gain_clip_high"]) == pytest.approx(
      (low[1], high[1]))


def test_head_and_tail_are_taken_over_the_classes_that_occur():
  counts = np.array([0, 7, 0, 1, 30, 0, 3, 0, 0, 12])  # occurring: 7, 1, 30, 3, 12; median 7
  parts = verdict.head_and_tail(counts)
  assert parts[verdict.HEAD].tolist() == [4, 9] and parts[verdict.TAIL].tolist() == [1, 3, 6]
  assert verdict.head_and_tail(np.zeros(4))[verdict.HEAD].size == 0
