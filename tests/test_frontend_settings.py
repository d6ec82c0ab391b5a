"""Frontend settings travel from prepare's manifest through training, scoring, evaluation and
export; artifacts made with different settings are refused by name."""

import dataclasses
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from conftest import TINY, TINY_TRAIN
from tf_skeptical.datasets import builtin_data
from tf_skeptical import evaluation, exporting, inference, prepare, scoring, taggers, training
from tf_skeptical.data import examples
from tf_skeptical.data.params import FrontendParams

# 48 mel bands, 64-frame patches cut every 32 frames: nothing like YAMNet's 64 / 96 / 48.
OTHER = FrontendParams(mel_bands=48, mel_max_hz=7000.0, patch_frames=64, patch_hop_frames=32)


@pytest.fixture(scope="module")
def other_examples(tiny_data, tmp_path_factory):
  data, _ = tiny_data
  root = tmp_path_factory.mktemp("other_frontend")
  dirs = {}
  for split, csv_name in (("train", builtin_data.TRAIN_SEGMENTS),
                          ("eval", builtin_data.EVAL_SEGMENTS)):
    dirs[split] = str(root / split)
    prepare.prepare_audio(os.path.join(data, csv_name),
                          os.path.join(data, builtin_data.AUDIO_DIR),
                          os.path.join(data, builtin_data.CLASS_MAP), dirs[split],
                          clip_seconds=TINY.clip_seconds, params=OTHER)
  return dirs["train"], dirs["eval"], root


def test_non_default_frontend_end_to_end(other_examples, tiny_data):
  train_dir, eval_dir, root = other_examples
  info = examples.read_info(train_dir)
  assert info.frontend == OTHER and info.feature_dims == 48

  model_dir = str(root / "model")
  result = training.train(train_dir, model_dir, training.TrainConfig(**dict(TINY_TRAIN, epochs=3)),
                          eval_dir=eval_dir, verbose=0)
  model = inference.load_model(model_dir)
  assert model.input_shape[1:] == (64, 48)
  assert inference.features_of(model).frontend == OTHER

  # Scoring cuts patches at the frontend's hop (32), as evaluation does.
  scores_dir = str(root / "scores")
  manifest = scoring.score(eval_dir, model_dir, scores_dir, patch_batch=16, local_workers=1)
  assert manifest["hop_frames"] == 32
  beam = scoring.read_scores(scores_dir)
  ids, labels, evaluated = inference.predict_clip_scores(model, eval_dir)
  order = np.argsort(ids)
  np.testing.assert_allclose(beam.scores, evaluated[order], atol=1e-6)
  ev = evaluation.evaluate_model(model_dir, eval_dir)
  assert ev.d_prime == pytest.approx(result["eval"]["d_prime"], abs=1e-9)

  # The exported tagger runs the same frontend: its window, hop, bands and patch count.
  data, _ = tiny_data
  out = str(root / "tagger")
  exporting.export(model_dir, os.path.join(train_dir, examples.CLASS_MAP), out,
                   calibration_files=prepare.source_audio(train_dir),
                   cfg=exporting.ExportConfig(calibration_windows=30))
  with open(os.path.join(out, exporting.METADATA)) as f:
    meta = json.load(f)  # what a device-side runtime reads
  window = (64 - 1) * 160 + 400
  assert meta["frontend"] == dataclasses.asdict(OTHER)
  assert (meta["window_samples"], meta["hop_samples"], meta["mel_bands"]) == (window, 5120, 48)
  w = (0.1 * np.random.default_rng(0).standard_normal(30000)).astype(np.float32)
  served = tf.saved_model.load(os.path.join(out, exporting.SAVED_MODEL)).signatures[
      "serving_default"](waveform=tf.constant(w))
  patches = 1 + (30000 - window) // 5120
  assert served["scores"].shape == (patches, 6) and served["log_mel"].shape[1] == 48
  np.testing.assert_allclose(served["scores"].numpy(), inference.waveform_patch_scores(model, w),
                             atol=1e-4)
  flt = taggers.tflite_scores(os.path.join(out, exporting.FLOAT_TFLITE), w, 5120)
  np.testing.assert_allclose(flt, served["scores"].numpy(), atol=1e-4)


def test_mixing_frontends_is_refused_by_name(other_examples, tiny_examples, tiny_teacher,
                                             tmp_path):
  other_train, other_eval, _ = other_examples
  default_train, default_eval = tiny_examples
  teacher_dir, _ = tiny_teacher

  with pytest.raises(examples.FeatureMismatch, match="frontend mel_bands: 64 vs 48"):
    training.train(default_train, str(tmp_path / "mixed"), training.TrainConfig(**TINY_TRAIN),
                   eval_dir=other_eval, verbose=0)
  assert not os.path.exists(tmp_path / "mixed" / training.RESULT)

  scores_dir = tmp_path / "scores"
  with pytest.raises(examples.FeatureMismatch, match=f"model {teacher_dir}.*{other_train}"):
    scoring.score(other_train, teacher_dir, str(scores_dir), local_workers=1)
  assert not scores_dir.exists()  # refused before any output was touched

  with pytest.raises(examples.FeatureMismatch, match="frontend patch_frames: 96 vs 64"):
    evaluation.evaluate_model(teacher_dir, other_eval)


def test_patch_hop_alone_is_no_mismatch():
  a = examples.Features(examples.LOG_MEL, 64, FrontendParams())
  b = examples.Features(examples.LOG_MEL, 64, FrontendParams(patch_hop_frames=24))
  assert a.differences(b) == []
  c = examples.Features(examples.LOG_MEL, 64, FrontendParams(log_offset=0.01))
  assert a.differences(c) == ["frontend log_offset: 0.001 vs 0.01"]
  e = examples.Features(examples.EMBEDDING, 128, embedding_frames=10)
  assert a.differences(e) == ["kind: log_mel vs embedding"]
