"""The treatments of flagged entries: targets and loss against numpy on hand-made batches,
the flags' and the teacher's scores joined by clip id against dense references, and the
training input of each treatment against the source records."""

import numpy as np
import pytest
import tensorflow as tf

from tf_skeptical import flagging, input_pipeline, scoring, treatments
from tf_skeptical.entries import Entries
from tf_skeptical.masked_loss import masked_bce
from tf_skeptical.treatments import Treatment


def numpy_bce(targets, logits):
  """Elementwise sigmoid BCE with soft targets, in float64."""
  z = logits.astype(np.float64)
  return np.maximum(z, 0) - z * targets + np.log1p(np.exp(-np.abs(z)))


# One clip, four classes: class 0 a positive, class 1 flagged (teacher 0.7), classes 2, 3
# unflagged negatives (teacher 0.1 and 0.4).
LABELS = np.array([[1.0, 0.0, 0.0, 0.0]], np.float32)
FLAGGED = np.array([[0.0, 1.0, 0.0, 0.0]], np.float32)
TEACHER = np.array([[0.9, 0.7, 0.1, 0.4]], np.float32)
FLAG_SCORES = FLAGGED * TEACHER
HAND_WORKED = {  # (targets, mask) written out by hand
    Treatment("mask"): ([1, 0, 0, 0], [1, 0, 1, 1]),
    Treatment("soft"): ([1, 0.7, 0, 0], [1, 1, 1, 1]),
    Treatment("positive"): ([1, 1, 0, 0], [1, 1, 1, 1]),
    # (1 - w) label + w teacher, the flagged entry the teacher's score alone
    Treatment("distill", 0.9): ([0.1 + 0.81, 0.7, 0.09, 0.36], [1, 1, 1, 1]),
    Treatment("distill", 0.0): ([1, 0.7, 0, 0], [1, 1, 1, 1]),
}


@pytest.mark.parametrize("treatment", list(HAND_WORKED), ids=lambda t: t.label)
def test_targets_and_mask_as_worked_by_hand(treatment):
  want_targets, want_mask = HAND_WORKED[treatment]
  t, m = treatments.targets(LABELS, FLAGGED, FLAG_SCORES, TEACHER, treatment)
  np.testing.assert_allclose(t.numpy()[0], want_targets, atol=1e-6)
  np.testing.assert_array_equal(m.numpy()[0], want_mask)


def _numpy_targets(labels, flagged, teacher, treatment):
  """An independent statement of each treatment, entry by entry."""
  t, m = labels.copy(), np.ones_like(labels)
  for idx in np.ndindex(labels.shape):
    f = flagged[idx] > 0
    if treatment.name == "mask" and f:
      m[idx] = 0
    elif treatment.name == "soft" and f:
      t[idx] = teacher[idx]
    elif treatment.name == "positive" and f:
      t[idx] = 1
    elif treatment.name == "distill":
      w = treatment.distill_weight
      t[idx] = teacher[idx] if f else (1 - w) * labels[idx] + w * teacher[idx]
  return t, m


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("treatment", [Treatment(n) for n in treatments.TREATMENTS]
                         + [Treatment("distill", 0.5)], ids=lambda t: t.label)
def test_loss_matches_numpy_on_random_batches(treatment, seed):
  rng = np.random.default_rng(seed)
  b, c = 9, 6
  labels = (rng.random((b, c)) < 0.3).astype(np.float32)
  flagged = ((rng.random((b, c)) < 0.3) & (labels == 0)).astype(np.float32)
  teacher = rng.random((b, c)).astype(np.float32)
  logits = rng.normal(0, 3, (b, c)).astype(np.float32)
  t, m = treatments.targets(labels, flagged, flagged * teacher, teacher, treatment)
  ours = float(masked_bce(t, logits, m))
  want_t, want_m = _numpy_targets(labels, flagged, teacher, treatment)
  want = (numpy_bce(want_t, logits) * want_m).sum() / labels.size
  assert ours == pytest.approx(want, rel=1e-5)


def test_gradient_of_soft_targets_pulls_toward_the_teacher():
  """d/dz of mean BCE is (sigmoid(z) - target) / entries: zero where z = logit(teacher)."""
  teacher = np.array([[0.2, 0.7]], np.float32)
  z = tf.Variable(np.log(teacher / (1 - teacher)))
  t, m = treatments.targets(np.zeros((1, 2)), np.ones((1, 2)), teacher, None, Treatment("soft"))
  with tf.GradientTape() as tape:
    loss = masked_bce(t, z, m)
  np.testing.assert_allclose(tape.gradient(loss, z).numpy(), 0, atol=1e-7)


def test_unknown_treatment_and_weight_are_refused():
  with pytest.raises(ValueError, match="one of mask, soft, distill, positive"):
    Treatment("relabel")
  with pytest.raises(ValueError, match="distill_weight"):
    Treatment("distill", 1.5)
  assert treatments.parse("distill0.5") == Treatment("distill", 0.5)
  assert treatments.parse("soft", 0.3) == Treatment("soft", 0.3)
  with pytest.raises(ValueError, match="not a treatment"):
    treatments.parse("distillx")


def _random_ids(rng, n):
  return np.array(sorted({f"clip{int(v):06d}" for v in rng.integers(0, 10**6, n)}))


@pytest.mark.parametrize("seed", range(3))
def test_flag_scores_joined_by_clip_id_match_a_dense_reference(seed):
  rng = np.random.default_rng(seed)
  num_classes = 7
  ids = _random_ids(rng, 60)
  chosen = [k for k in ids if rng.random() < 0.5]
  classes = [sorted(rng.choice(num_classes, rng.integers(1, 4), replace=False))
             for _ in chosen]
  values = [list(rng.random(len(c)).astype(np.float32)) for c in classes]
  flagged_entries = Entries.from_lists(chosen, classes, scores=values)
  dense_flag = np.zeros((len(ids), num_classes), np.float32)
  dense_score = np.zeros((len(ids), num_classes), np.float32)
  where = {k: i for i, k in enumerate(ids)}
  for k, cs, vs in zip(chosen, classes, values):
    dense_flag[where[k], cs] = 1
    dense_score[where[k], cs] = vs
  query = rng.permutation(len(ids))[:40]  # any order, a batch of ids at once
  flagged, scores = input_pipeline.entry_lookup(flagged_entries, num_classes)(tf.constant(ids[query]))
  np.testing.assert_array_equal(flagged.numpy(), dense_flag[query])
  np.testing.assert_array_equal(scores.numpy(), dense_score[query])


def test_flags_carry_their_scores_into_discards():
  """Flags.entries(p, with_scores) gives each flagged entry the score it was ranked by."""
  rng = np.random.default_rng(4)
  n, c = 50, 5
  ids = _random_ids(rng, n)
  n = len(ids)
  scores = rng.random((n, c)).astype(np.float32)
  empty = scoring.csr_from_lists([np.zeros(0, np.int64)] * n)
  flags = flagging.rank_implicit_negatives(ids, np.asfortranarray(scores), empty, empty, 20.0)
  d = flags.entries(10, with_scores=True)
  assert d.count == c * int(np.floor(n * 0.1 + 1e-9))
  for i, k in enumerate(d.clip_ids):
    row = int(np.flatnonzero(ids == k)[0])
    np.testing.assert_array_equal(d.scores[d.indptr[i]:d.indptr[i + 1]],
                                  scores[row, d.classes_of(i)])
  assert flags.entries(10).scores is None


@pytest.mark.parametrize("seed", range(3))
def test_teacher_scores_joined_by_clip_id_match_a_dense_reference(seed):
  rng = np.random.default_rng(seed)
  ids = _random_ids(rng, 80)
  dense = rng.random((len(ids), 6)).astype(np.float32)
  empty = scoring.csr_from_lists([np.zeros(0, np.int64)] * len(ids))
  scores = scoring.Scores(ids, np.asfortranarray(dense), empty, empty, {})
  lookup = input_pipeline.teacher_score_lookup(scores, 6)
  query = rng.integers(0, len(ids), (3, 10))  # repeats, any shape
  got = lookup(tf.constant(ids[query])).numpy()
  np.testing.assert_allclose(got, dense[query], rtol=2 ** -11)
  with pytest.raises(tf.errors.InvalidArgumentError, match="no teacher score"):
    lookup(tf.constant(["not-scored"]))
