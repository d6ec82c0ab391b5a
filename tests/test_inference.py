"""One inference path: scoring, evaluation and export's reference agree, and only training
imports training."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from conftest import TINY
from tf_skeptical.data import audio_io, examples, segments
from tf_skeptical.datasets import builtin_data
from tf_skeptical import inference, prepare, scoring


def test_later_stages_do_not_import_training():
  code = ("import sys\n"
          "import tf_skeptical.scoring, tf_skeptical.evaluation, tf_skeptical.exporting, "
          "tf_skeptical.flagging, tf_skeptical.inference\n"
          "bad = sorted(m for m in sys.modules if m == 'tf_skeptical.training')\n"
          "assert not bad, bad\n"
          "print('OK')")
  done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                        timeout=300, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
  assert done.returncode == 0 and "OK" in done.stdout, done.stderr[-2000:]


def test_scoring_evaluation_and_export_reference_agree(tiny_teacher, tiny_examples, tiny_data,
                                                       tmp_path):
  """The same model and clips through the Beam job, the evaluation path and the waveform
  path that exports are checked against give the same clip scores."""
  model_dir, _ = tiny_teacher
  _, eval_dir = tiny_examples
  data, _ = tiny_data
  model = inference.load_model(model_dir)

  scores_dir = str(tmp_path / "scores")
  scoring.score(eval_dir, model_dir, scores_dir, patch_batch=16, clips_per_batch=5,
                local_workers=1)
  beam = scoring.read_scores(scores_dir)
  beam_scores = dict(zip(beam.clip_ids, beam.scores))

  ids, _, evaluated = inference.predict_clip_scores(model, eval_dir)
  evaluation_scores = dict(zip(ids, evaluated))

  cmap = examples.read_info(eval_dir).class_map
  rows, _ = segments.read_segments(os.path.join(data, builtin_data.EVAL_SEGMENTS), cmap)
  files = prepare.audio_files(os.path.join(data, builtin_data.AUDIO_DIR))
  audio = {s.clip_id: files[s.clip_id] for s in rows}
  clip_samples = int(TINY.clip_seconds * 16000)
  assert set(beam_scores) == set(evaluation_scores) == set(audio)
  for clip_id, path in audio.items():
    waveform = audio_io.load_clip(tf.constant(path), clip_samples).numpy()
    reference = inference.waveform_patch_scores(model, waveform).mean(axis=0)
    np.testing.assert_allclose(beam_scores[clip_id], reference, atol=1e-6, rtol=0)
    np.testing.assert_allclose(evaluation_scores[clip_id], reference, atol=1e-6, rtol=0)


def test_pool_patches_against_numpy():
  rng = np.random.default_rng(0)
  scores = rng.random((40, 5))
  index = np.sort(rng.integers(0, 7, 40))
  index[:7] = np.arange(7)  # every clip has a patch
  for how, reduce in (("mean", np.mean), ("max", np.max)):
    got = inference.pool_patches(scores, index, 7, how)
    want = np.stack([reduce(scores[index == c], axis=0) for c in range(7)])
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_pooling_hand_worked():
  s = np.array([[0.1], [0.5], [0.9], [0.3]])
  idx = np.array([0, 0, 1, 1])
  np.testing.assert_allclose(inference.pool_patches(s, idx, 2, "mean"), [[0.3], [0.6]])
  np.testing.assert_allclose(inference.pool_patches(s, idx, 2, "max"), [[0.5], [0.9]])
  with pytest.raises(ValueError, match="no patches"):
    inference.pool_patches(s, idx, 3)
