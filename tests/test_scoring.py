"""The Beam scoring job against model.predict, and the flags built from its output."""

import numpy as np
import pytest

from tf_skeptical.data import examples
from tf_skeptical import flagging, inference, scoring


def reference_scores(model_dir, examples_dir, hop=48):
  """Patches cut with numpy, model.predict, sigmoid, mean per clip: independent of the job."""
  model = inference.load_model(model_dir)
  out = {}
  for clip in examples.iterate(examples_dir):
    f = clip["features"]
    starts = range(0, f.shape[0] - 96 + 1, hop)
    patches = np.stack([f[s:s + 96] for s in starts])
    logits = model.predict(patches, verbose=0).astype(np.float64)
    out[clip["clip_id"]] = (1 / (1 + np.exp(-logits))).mean(axis=0)
  return out


def test_beam_scores_equal_predict_and_rerun_is_identical(tiny_teacher, tiny_examples, tmp_path):
  model_dir, _ = tiny_teacher
  train_dir, _ = tiny_examples
  a, b = str(tmp_path / "a"), str(tmp_path / "b")
  manifest = scoring.score(train_dir, model_dir, a, patch_batch=16, clips_per_batch=5,
                           local_workers=1)
  scoring.score(train_dir, model_dir, b, patch_batch=16, clips_per_batch=5, local_workers=1)
  sa, sb = scoring.read_scores(a), scoring.read_scores(b)
  info = examples.read_info(train_dir)
  assert manifest["num_clips"] == info.num_clips == len(sa.clip_ids)
  assert list(sa.clip_ids) == sorted(sa.clip_ids)
  np.testing.assert_array_equal(sa.scores, sb.scores)
  ref = reference_scores(model_dir, train_dir)
  assert set(ref) == set(sa.clip_ids)
  got = {k: sa.scores[i] for i, k in enumerate(sa.clip_ids)}
  for k in ref:
    np.testing.assert_allclose(got[k], ref[k], atol=1e-5)
  # Labels travel with the scores.
  clips = {c["clip_id"]: c for c in examples.iterate(train_dir)}
  indptr, indices = sa.positives
  for i, k in enumerate(sa.clip_ids[:10]):
    assert list(indices[indptr[i]:indptr[i + 1]]) == list(np.flatnonzero(clips[k]["positives"]))
  # Flags from these scores never name a positive or an explicit negative.
  flags = flagging.flag_scores(sa, max_percent=20)
  for k, c in zip(flags.clip_ids[flags.clip], flags.cls):
    assert clips[k]["positives"][c] == 0 and clips[k]["explicit_negatives"][c] == 0


def test_incomplete_scores_are_refused(tmp_path):
  from tf_skeptical.util.bad_input import DataError
  with pytest.raises(DataError, match="no scores.json"):
    scoring.read_scores(str(tmp_path))
