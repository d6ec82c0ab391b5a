"""Export: Keras vs SavedModel vs TFLite parity, int8 quality, and the TF-free runtime."""

import glob
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tf_skeptical import audio_io, exporting, training

EXPORT_RUNTIME = os.path.join(os.path.dirname(__file__), "..", "export")
sys.path.insert(0, EXPORT_RUNTIME)
import tagger as runtime  # noqa: E402  (export/tagger.py)


@pytest.fixture(scope="module")
def exported(tiny_examples, tmp_path_factory):
  """A tiny model trained to convergence (an 8-epoch one quantizes far worse than anything
  a user would ship), exported."""
  from conftest import TINY_TRAIN
  train_dir, _ = tiny_examples
  model_dir = str(tmp_path_factory.mktemp("export_model"))
  training.train(train_dir, model_dir, training.TrainConfig(**dict(TINY_TRAIN, epochs=40)),
                 verbose=0)
  out = str(tmp_path_factory.mktemp("export") / "tagger")
  exporting.export(model_dir, os.path.join(train_dir, "class_map.csv"), out,
                   calibration_files=exporting.calibration_audio(train_dir),
                   cfg=exporting.ExportConfig(calibration_windows=150))
  return out, training.load_model(model_dir)


@pytest.mark.parametrize("samples", [4000, 15600, 16000, 23280, 40000])
def test_keras_saved_model_and_tflite_agree(exported, samples):
  out, model = exported
  w = (0.2 * np.random.default_rng(samples).standard_normal(samples)).astype(np.float32)
  ref = exporting.keras_patch_scores(model, w)
  sm = tf.saved_model.load(os.path.join(out, exporting.SAVED_MODEL))
  got = sm.signatures["serving_default"](waveform=tf.constant(w))
  flt = exporting.tflite_scores(os.path.join(out, exporting.FLOAT_TFLITE), w)
  expected_patches = max(1, 1 + (samples - 15600) // 7680)
  assert ref.shape == got["scores"].shape == flt.shape == (expected_patches, 6)
  assert np.abs(got["scores"].numpy() - ref).max() <= 1e-4
  assert np.abs(flt - ref).max() <= 1e-4
  assert got["embeddings"].shape[0] == expected_patches
  assert got["log_mel"].shape[1] == 64


def test_int8_close_to_float_on_held_out_clips(exported, tiny_data):
  out, _ = exported
  data, _ = tiny_data
  f, q = [], []
  for path in sorted(glob.glob(os.path.join(data, "audio", "eval*.wav")))[:16]:
    w = audio_io.load_clip(tf.constant(path)).numpy()
    f.append(exporting.tflite_scores(os.path.join(out, exporting.FLOAT_TFLITE), w))
    q.append(exporting.tflite_scores(os.path.join(out, exporting.INT8_TFLITE), w))
  f, q = np.concatenate(f), np.concatenate(q)
  # A guard against a broken quantization (quantizing the waveform or the final slice gave
  # 0.149 here). Issue 6's targets (<= 0.02 mean, >= 90% top-5 agreement) are measured by
  # bench/export.py on a demo-size model: this 48-clip model quantizes worse (0.066).
  assert np.abs(f - q).mean() <= 0.1
  on_int8_grid = np.mean(q * 256 == np.round(q * 256))  # scores rounded to 1/256 steps
  assert on_int8_grid < 0.5
  assert os.path.getsize(os.path.join(out, exporting.INT8_TFLITE)) < os.path.getsize(
      os.path.join(out, exporting.FLOAT_TFLITE))


def test_export_writes_metadata_class_map_and_checks(exported):
  out, _ = exported
  import json
  with open(os.path.join(out, exporting.METADATA)) as f:
    meta = json.load(f)
  assert meta["window_samples"] == 15600 and meta["hop_samples"] == 7680
  assert meta["num_classes"] == 6
  with open(os.path.join(out, exporting.SANITY)) as f:
    assert json.load(f)["failures"] == []
  assert os.path.exists(os.path.join(out, exporting.SAVED_MODEL, "assets", "class_map.csv"))
  assert not os.path.exists(out + ".tmp")


def test_runtime_equals_tflite_and_streams_the_same(exported, tmp_path):
  out, _ = exported
  rng = np.random.default_rng(1)
  w16 = (0.2 * rng.standard_normal(40000)).astype(np.float32)
  tagger = runtime.Tagger(out)
  np.testing.assert_array_equal(
      tagger.scores(w16), exporting.tflite_scores(os.path.join(out, exporting.FLOAT_TFLITE), w16))
  # A 22.05 kHz stereo file: streaming in small chunks gives what the whole file gives.
  w22 = (0.2 * rng.standard_normal((int(22050 * 3.3), 2))).astype(np.float32)
  path = str(tmp_path / "long.wav")
  audio_io.write_wav(path, w22, 22050)
  x, rate = runtime.read_wav(path)
  whole = tagger.scores(runtime.resample(x, rate))
  streamed = list(tagger.stream(path, chunk_seconds=0.37))
  assert [t for t, _ in streamed] == [i * 0.48 for i in range(len(whole))]
  np.testing.assert_allclose(np.stack([s for _, s in streamed]), whole, atol=1e-6)
  short = str(tmp_path / "short.wav")
  audio_io.write_wav(short, w16[:5000], 16000)
  assert len(list(tagger.stream(short))) == 1


def test_runtime_reads_wav_like_tfio(tmp_path):
  w = (0.3 * np.sin(np.arange(22050) / 7)).astype(np.float32)
  path = str(tmp_path / "a.wav")
  audio_io.write_wav(path, np.stack([w, w], 1), 22050)
  x, rate = runtime.read_wav(path)
  assert rate == 22050
  decoded, _ = audio_io.decode_audio(tf.constant(path))
  np.testing.assert_allclose(x, decoded.numpy().mean(axis=1), atol=1e-6)


def test_runtime_never_imports_tensorflow(exported, tmp_path):
  out, _ = exported
  wav = str(tmp_path / "a.wav")
  audio_io.write_wav(wav, 0.1 * np.ones(20000, np.float32), 16000)
  code = ("import sys; sys.path.insert(0, sys.argv[1]); import tagger; "
          "tagger.main([sys.argv[2], sys.argv[3], '--top', '2']); "
          "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'; print('NO_TF')")
  done = subprocess.run([sys.executable, "-c", code, EXPORT_RUNTIME, out, wav],
                        capture_output=True, text=True, timeout=120)
  assert done.returncode == 0, done.stderr[-2000:]
  assert "NO_TF" in done.stdout and "clip (mean of 1 patches)" in done.stdout
