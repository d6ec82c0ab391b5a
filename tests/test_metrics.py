"""Metrics against independent references: sklearn and scipy, with ties and empty classes."""

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as skm

from tf_skeptical import metrics


def random_case(seed, n=60, c=7):
  rng = np.random.default_rng(seed)
  labels = (rng.random((n, c)) < 0.3).astype(np.float32)
  labels[:, 0] = 0  # a class with no positives
  labels[:, 1] = 1  # a class with no negatives
  scores = np.round(rng.random((n, c)), 1)  # rounding makes many ties
  return labels, scores


@pytest.mark.parametrize("seed", range(5))
def test_auc_and_d_prime_match_sklearn_and_scipy(seed):
  labels, scores = random_case(seed)
  got = metrics.evaluate(labels, scores)
  ok = range(2, labels.shape[1])
  aucs = [skm.roc_auc_score(labels[:, c], scores[:, c]) for c in ok]
  np.testing.assert_allclose(got.per_class["AUC"][2:], aucs, atol=1e-12)
  assert np.isnan(got.per_class["AUC"][:2]).all()
  assert got.num_classes_excluded == 2 and got.num_classes_evaluated == len(aucs)
  assert got.auc == pytest.approx(np.mean(aucs))
  # AudioSet's d': from the mean AUC; the mean of per-class d' under its own name.
  assert got.d_prime == pytest.approx(np.sqrt(2) * stats.norm.ppf(np.mean(aucs)))
  assert got.mean_class_d_prime == pytest.approx(
      np.mean([np.sqrt(2) * stats.norm.ppf(a) for a in aucs]))


def test_one_perfect_class_does_not_dominate_d_prime():
  """Two classes at AUC 0.75 and one at 1.0: AudioSet's d' is sqrt(2) Phi^-1(0.8333) =
  1.368; the mean of per-class d' is pulled to 2.88 by the perfect class (clipped at 6.72)."""
  labels = np.array([[1, 1, 1], [1, 0, 0], [0, 1, 0], [0, 0, 0]], np.float32)
  scores = np.array([[.9, .9, .9], [.2, .1, .1], [.5, .15, .2], [.1, .2, .3]])
  got = metrics.evaluate(labels, scores)
  np.testing.assert_allclose(got.per_class["AUC"], [0.75, 0.75, 1.0])
  assert got.d_prime == pytest.approx(np.sqrt(2) * stats.norm.ppf(2.5 / 3))
  assert got.d_prime == pytest.approx(1.3681, abs=1e-4)
  assert got.mean_class_d_prime == pytest.approx((2 * 0.9539 + 6.7224) / 3, abs=1e-3)


@pytest.mark.parametrize("seed", range(5))
def test_map_matches_sklearn(seed):
  labels, scores = random_case(seed)
  aps = [skm.average_precision_score(labels[:, c], scores[:, c]) for c in range(2, 7)]
  assert metrics.evaluate(labels, scores).mAP == pytest.approx(np.mean(aps), abs=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_lwlrap_is_lrap_weighted_by_label_count(seed):
  labels, scores = random_case(seed)
  counts = labels.sum(axis=1)
  keep = counts > 0
  ref = skm.label_ranking_average_precision_score(labels[keep], scores[keep],
                                                  sample_weight=counts[keep])
  assert metrics.lwlrap(labels, scores, chunk=7) == pytest.approx(ref, abs=1e-12)


def test_lwlrap_hand_worked():
  # Clip 1: positives a (0.9) and c (0.5); ranking a > b > c: precisions 1/1 and 2/3.
  # Clip 2: positive b (0.2), ranked last of 3: precision 1/3. Mean over 3 labels.
  labels = np.array([[1, 0, 1], [0, 1, 0]])
  scores = np.array([[0.9, 0.7, 0.5], [0.8, 0.2, 0.6]])
  assert metrics.lwlrap(labels, scores) == pytest.approx((1 + 2 / 3 + 1 / 3) / 3)


@pytest.mark.parametrize("seed", range(5))
def test_resampled_auc_is_sklearns_auc_of_the_materialised_resample(seed):
  """Bootstrap AUCs from multiplicities equal sklearn's AUC on the resampled clips, with
  tied scores (rounded to a few levels) and classes left without a positive."""
  rng = np.random.default_rng(seed)
  n, c = 60, 6
  labels = rng.random((n, c)) < np.array([0.3, 0.5, 0.1, 0.04, 0.3, 0.2])
  scores = np.round(labels * 0.5 + rng.random((n, c)), 1)  # many ties
  resampled = metrics.ResampledAUC(labels, scores)
  for _ in range(20):
    idx = rng.integers(0, n, n)
    got = resampled(np.bincount(idx, minlength=n))
    for k in range(c):
      y = labels[idx, k]
      if y.all() or not y.any():
        assert np.isnan(got[k])
      else:
        assert got[k] == pytest.approx(skm.roc_auc_score(y, scores[idx, k]), abs=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_lwlrap_of_a_resample_from_per_clip_shares_is_sklearns_on_the_resampled_clips(seed):
  """The bootstrap's lwlrap (clip shares weighted by multiplicity) equals sklearn's
  label-weighted LRAP of the materialised resample, ties and clips without labels
  included."""
  rng = np.random.default_rng(seed)
  n, c = 50, 7
  labels = rng.random((n, c)) < 0.25
  scores = np.round(labels * 0.4 + rng.random((n, c)), 1)
  precisions, positives = metrics.lwlrap_per_clip(labels, scores, chunk=9)
  for _ in range(10):
    idx = rng.integers(0, n, n)
    w = np.bincount(idx, minlength=n)
    y, s = labels[idx], scores[idx]
    keep = y.sum(axis=1) > 0
    ref = skm.label_ranking_average_precision_score(y[keep], s[keep],
                                                   sample_weight=y.sum(axis=1)[keep])
    assert w @ precisions / (w @ positives) == pytest.approx(ref, abs=1e-12)
