"""Flag semantics: a hand-worked example entry by entry, and properties over random inputs."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from tf_skeptical import flagging, scoring
from tf_skeptical.scoring import csr_from_lists as _csr


def test_flag_count_rounds_down_exactly():
  assert list(flagging.flag_count(10, [9, 10, 19, 20, 0])) == [0, 1, 1, 2, 0]
  # 0.3% of 1000 is exactly 3 even though 0.3 * 1000 / 100 is 2.9999999999999996 in floats.
  assert int(flagging.flag_count(0.3, 1000)) == 3


def hand_worked():
  """12 clips, 2 classes.

  Class 0: positives clips 0, 1; explicit negative clip 2 (score 0.99, must never be flagged).
  Implicit negatives: clips 3..11 (9 of them) with scores below; clips 4 and 7 tie at 0.8.
  Class 1: positive clip 11; explicit negatives none; 11 implicit negatives.
  """
  ids = np.array([f"c{i:02d}" for i in range(12)])
  s0 = [0.9, 0.95, 0.99, 0.1, 0.8, 0.3, 0.6, 0.8, 0.2, 0.05, 0.7, 0.4]
  s1 = [0.5, 0.1, 0.2, 0.3, 0.9, 0.9, 0.0, 0.6, 0.7, 0.8, 0.4, 0.99]
  scores = np.asfortranarray(np.array([s0, s1], np.float32).T)
  pos = _csr([[0], [0], [], [], [], [], [], [], [], [], [], [1]])
  neg = _csr([[], [], [0], [], [], [], [], [], [], [], [], []])
  return ids, scores, pos, neg


def test_hand_worked_entries():
  ids, scores, pos, neg = hand_worked()
  f = flagging.rank_implicit_negatives(ids, scores, pos, neg, max_percent=50)
  assert list(f.num_implicit) == [9, 11]
  got = [(int(c), ids[k], int(r), round(float(p), 3)) for c, k, r, p in
         zip(f.cls, f.clip, f.rank, f.percentile)]
  # Class 0: floor(50% of 9) = 4 flags. Order 0.8 (c04), 0.8 (c07: tie, later id), 0.7, 0.6.
  # Class 1: floor(50% of 11) = 5. 0.9 (c04), 0.9 (c05), 0.8, 0.7, 0.6.
  assert got == [
      (0, "c04", 1, 11.111), (0, "c07", 2, 22.222), (0, "c10", 3, 33.333),
      (0, "c06", 4, 44.444),
      (1, "c04", 1, 9.091), (1, "c05", 2, 18.182), (1, "c09", 3, 27.273),
      (1, "c08", 4, 36.364), (1, "c07", 5, 45.455)]
  # Discarding 20%: floor(1.8) = 1 of class 0, floor(2.2) = 2 of class 1.
  d = f.entries(20)
  assert {k: d.classes_of(i).tolist() for i, k in enumerate(d.clip_ids)} == {
      "c04": [0, 1], "c05": [1]}
  with pytest.raises(ValueError, match="up to 50"):
    f.entries(60)


def test_flags_file_round_trip(tmp_path):
  ids, scores, pos, neg = hand_worked()
  f = flagging.rank_implicit_negatives(ids, scores, pos, neg, max_percent=50)
  path = str(tmp_path / "flags.npz")
  flagging.write_flags(f, path)
  g = flagging.read_flags(path)
  for name in ("clip_ids", "clip", "cls", "rank", "score", "num_implicit"):
    np.testing.assert_array_equal(getattr(f, name), getattr(g, name))
  assert flagging.load_entries(path, 0) is None
  assert flagging.load_entries(path, 20).count == 3
  for p in (10, 30, 50):  # read without ranks and scores: the same entries
    a, b = flagging.load_entries(path, p), f.entries(p)
    for name in ("clip_ids", "indptr", "classes"):
      np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
  with pytest.raises(ValueError, match="up to 50"):
    flagging.load_entries(path, 60)


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 40), st.integers(1, 5), st.integers(0, 2 ** 31 - 1),
       st.floats(0.5, 60), st.floats(0.5, 60))
def test_properties(n, c, seed, p1, p2):
  rng = np.random.default_rng(seed)
  labels = rng.random((n, c))
  is_pos, is_neg = labels < 0.2, (labels >= 0.2) & (labels < 0.35)
  scores = np.asfortranarray(np.round(rng.random((n, c)), 1).astype(np.float32))
  ids = np.array([f"{i:04d}" for i in range(n)])
  pos = _csr([np.flatnonzero(r) for r in is_pos])
  neg = _csr([np.flatnonzero(r) for r in is_neg])
  f = flagging.rank_implicit_negatives(ids, scores, pos, neg, max_percent=60)
  lo, hi = sorted((p1, p2))
  flagged = set(zip(f.clip[f.selected(hi)], f.cls[f.selected(hi)]))
  flagged_lo = set(zip(f.clip[f.selected(lo)], f.cls[f.selected(lo)]))
  assert flagged_lo <= flagged  # monotone in p
  for k, cl in flagged:
    assert not is_pos[k, cl] and not is_neg[k, cl]  # never a positive or explicit negative
  for cl in range(c):
    implicit = np.flatnonzero(~is_pos[:, cl] & ~is_neg[:, cl])
    assert f.num_implicit[cl] == implicit.size
    mine = sorted(k for k, x in flagged if x == cl)
    # Exactly floor(hi% of n_c) flags, and each scores at least as high as any unflagged one.
    assert len(mine) == int(np.floor(implicit.size * hi / 100 + 1e-9))
    rest = np.setdiff1d(implicit, mine)
    if mine and rest.size:
      assert scores[mine, cl].min() >= scores[rest, cl].max()


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 10_000), st.sampled_from([0.5, 1, 5, 20]))
def test_mask_from_array_discards_equals_a_dense_reference(seed, percent):
  """The input pipeline's in-graph mask (from the CSR arrays) equals a dense numpy mask
  set entry by entry from the flags."""
  import tensorflow as tf
  from tf_skeptical import input_pipeline
  rng = np.random.default_rng(seed)
  n, c = 60, 7
  ids = np.array([f"clip{i:03d}" for i in range(n)])
  scores = np.asfortranarray(rng.random((n, c), np.float32))
  pos = _csr([list(np.flatnonzero(rng.random(c) < 0.2)) for _ in range(n)])
  neg = _csr([list(np.flatnonzero(rng.random(c) < 0.05)) for _ in range(n)])
  f = flagging.rank_implicit_negatives(ids, scores, pos, neg, max_percent=20)
  want = np.zeros((n, c), np.float32)
  sel = f.selected(percent)
  want[f.clip[sel], f.cls[sel]] = 1
  d = f.entries(percent)
  assert d.count == int(sel.sum()) and d.clip_ids.dtype.kind == "U"
  lookup = input_pipeline.entry_lookup(d, c)
  got = np.stack([lookup(tf.constant(k))[0].numpy() for k in ids])
  np.testing.assert_array_equal(got, want)


def test_review_lists_the_likeliest_first(tmp_path):
  """Ordered by teacher score across classes (not by rank percentile, which put every
  class's first entry on top, however low its score)."""
  ids, scores, pos, neg = hand_worked()
  f = flagging.rank_implicit_negatives(ids, scores, pos, neg, max_percent=50)
  path = str(tmp_path / "review.csv")
  rows = flagging.write_review(f, ["/m/0", "/m/1"], ["zero", "one"], path, percent=50)
  import csv
  with open(path) as fh:
    got = [(r["clip_id"], r["display_name"], float(r["score"])) for r in csv.DictReader(fh)]
  assert rows == len(got) == 9
  assert [s for _, _, s in got] == sorted([s for _, _, s in got], reverse=True)
  # Equal scores go by rank percentile: at 0.9, c04 (9.1%) then c05 (18.2%); at 0.8, class
  # 0's c04 (11.1%) and c07 (22.2%) before class 1's c09 (27.3%).
  assert got[:5] == [("c04", "one", 0.9), ("c05", "one", 0.9), ("c04", "zero", 0.8),
                     ("c07", "zero", 0.8), ("c09", "one", 0.8)]


@pytest.mark.parametrize("seed", range(3))
def test_flag_quality_equals_set_lookups(seed):
  """Flag precision and recall against a truth set, matched as integer keys in chunks,
  equal a per-flag lookup of (clip id, class) in the set; truth entries of clips that were
  not scored count for neither."""
  from tf_skeptical import evaluation
  rng = np.random.default_rng(seed)
  n, c = 80, 6
  ids = np.array([f"clip{i:03d}" for i in range(n)])
  scores = np.asfortranarray(rng.random((n, c), np.float32))
  pos = _csr([list(np.flatnonzero(rng.random(c) < 0.2)) for _ in range(n)])
  f = flagging.rank_implicit_negatives(ids, scores, pos, _csr([[] for _ in range(n)]), 30)
  truth = {(str(ids[i]), int(k)) for i, k in zip(rng.integers(0, n, 40),
                                                  rng.integers(0, c, 40))}
  truth |= {("unscored_clip", 1), ("clip999", 0)}
  rows = evaluation.flag_quality(f, truth, [5, 10, 30])
  scored_truth = sum(1 for k, _ in truth if k in set(ids.tolist()))
  for r in rows:
    sel = f.selected(r["percent"])
    hits = sum((str(ids[i]), int(k)) in truth for i, k in zip(f.clip[sel], f.cls[sel]))
    assert r["flagged"] == int(sel.sum()) and r["truly_missing"] == hits
    assert r["recall"] == pytest.approx(hits / scored_truth)
    assert r["base_rate"] == pytest.approx(scored_truth / f.num_implicit.sum())


def test_flags_never_fall_on_ancestors_of_labelled_classes(tree):
  rng = np.random.default_rng(0)
  n = 200
  ids = np.array([f"c{i:04d}" for i in range(n)])
  rows = [np.array(rng.choice(8, rng.integers(0, 3), replace=False), np.int64)
          for _ in range(n)]
  pos = scoring.csr_from_lists(rows)
  empty = scoring.csr_from_lists([np.zeros(0, np.int64)] * n)
  # The teacher scores each class high wherever a child is labelled: the likeliest flags.
  scores = rng.random((n, 8)).astype(np.float32)
  for i, r in enumerate(rows):
    for c in r:
      scores[i, tree.ancestors[c]] = 1.0
  s = scoring.Scores(ids, np.asfortranarray(scores), pos, empty, {})
  known = {(i, a) for i, r in enumerate(rows) for c in r for a in tree.ancestors[c]}
  with_tree = flagging.flag_scores(s, 20.0, tree)
  flagged = set(zip(with_tree.clip.tolist(), with_tree.cls.tolist()))
  assert flagged and not flagged & known
  without = flagging.flag_scores(s, 20.0)
  assert set(zip(without.clip.tolist(), without.cls.tolist())) & known
  assert with_tree.made_from["ontology"] == tree.path


def test_min_positives_leaves_few_positive_classes_unflagged():
  n = 100
  ids = np.array([f"c{i:03d}" for i in range(n)])
  rows = [np.array([0] if i < 10 else ([1] if i < 12 else []), np.int64) for i in range(n)]
  empty = scoring.csr_from_lists([np.zeros(0, np.int64)] * n)
  scores = np.asfortranarray(np.random.default_rng(1).random((n, 3)).astype(np.float32))
  s = scoring.Scores(ids, scores, scoring.csr_from_lists(rows), empty, {})
  flags = flagging.flag_scores(s, 10.0, min_positives=5)
  assert sorted(set(flags.cls.tolist())) == [0]  # 10 positives; class 1 has 2, class 2 none
  assert flags.num_positives.tolist() == [10, 2, 0]
  assert len(flagging.flag_scores(s, 10.0, min_positives=0).cls) == 9 + 9 + 10
  assert flagging.MIN_POSITIVES > 1  # by default: classes 1 and 2 unflagged too
  assert sorted(set(flagging.flag_scores(s, 10.0).cls.tolist())) == [0]
