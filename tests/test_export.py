"""Export: Keras vs SavedModel vs TFLite parity, int8 quality, and the TF-free runtime."""

import glob
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tf_skeptical.data import audio_io
from tf_skeptical import exporting, inference, taggers, training
from tf_skeptical.data.params import DEFAULT_FRONTEND

HOP = DEFAULT_FRONTEND.patch_hop_samples  # 7680

EXPORT_RUNTIME = os.path.join(os.path.dirname(__file__), "..", "export")
sys.path.insert(0, EXPORT_RUNTIME)
import tagger as runtime  # noqa: E402  (export/tagger.py)

# End-to-end: trains, exports or runs the binaries (.ci/run runs these on one Python only).
pytestmark = pytest.mark.end_to_end


@pytest.fixture(scope="module")
def exported(tiny_tagger):
  return tiny_tagger


@pytest.mark.parametrize("samples", [4000, 15600, 16000, 23280, 40000])
def test_keras_saved_model_and_tflite_agree(exported, samples):
  out, model = exported
  w = (0.2 * np.random.default_rng(samples).standard_normal(samples)).astype(np.float32)
  ref = inference.waveform_patch_scores(model, w)
  sm = tf.saved_model.load(os.path.join(out, exporting.SAVED_MODEL))
  got = sm.signatures["serving_default"](waveform=tf.constant(w))
  flt = taggers.tflite_scores(os.path.join(out, exporting.FLOAT_TFLITE), w, HOP)
  expected_patches = max(1, 1 + (samples - 15600) // 7680)
  assert ref.shape == got["scores"].shape == flt.shape == (expected_patches, 6)
  assert np.abs(got["scores"].numpy() - ref).max() <= 1e-4
  assert np.abs(flt - ref).max() <= 1e-4
  assert got["embeddings"].shape[0] == expected_patches
  assert got["log_mel"].shape[1] == 64


def test_int8_close_to_float_on_the_tiny_model(exported, tiny_data):
  out, _ = exported
  data, _ = tiny_data
  eval_clips = sorted(glob.glob(os.path.join(data, "audio", "eval*.wav")))[:16]
  waveforms = [audio_io.load_clip(tf.constant(p)).numpy() for p in eval_clips]
  f = np.concatenate([taggers.tflite_scores(os.path.join(out, exporting.FLOAT_TFLITE), w, HOP)
                      for w in waveforms])
  q = np.concatenate([taggers.tflite_scores(os.path.join(out, exporting.INT8_TFLITE), w, HOP)
                      for w in waveforms])
  # A guard against a broken quantization (quantizing the waveform or the final slice gave
  # 0.149 here); this 48-clip model quantizes worse (0.03-0.05 over five training seeds)
  # than the demo-size model held to issue 6's targets below.
  assert np.abs(f - q).mean() <= 0.1
  on_int8_grid = np.mean(q * 256 == np.round(q * 256))  # scores rounded to 1/256 steps
  assert on_int8_grid < 0.5
  assert exporting.int8_agreement(out, waveforms, HOP)["mean_abs_difference"] == pytest.approx(
      np.abs(f - q).mean(), rel=1e-6)
  assert os.path.getsize(os.path.join(out, exporting.INT8_TFLITE)) < 0.5 * os.path.getsize(
      os.path.join(out, exporting.FLOAT_TFLITE))


def test_int8_keeps_the_first_layers_float(exported):
  """ExportConfig.float_layers: the input and layers 1-3 compute in float, layers 4-14
  (10-14 share the prefix `layer1`), the pooling and the classifier in int8."""
  out, _ = exported
  from ai_edge_litert.interpreter import Interpreter
  dtypes = {}
  for t in Interpreter(model_path=os.path.join(out, exporting.INT8_TFLITE)).get_tensor_details():
    op = t["name"].split(";")[0]  # a fused op's first part, e.g. network/layer2_..._relu/Relu
    if op.startswith(exporting.NETWORK) and not op.endswith("1"):  # "...1": a (de)quantize
      layer = op.split("/")[1].split("_")[0]
      dtypes.setdefault(layer, set()).add(np.dtype(t["dtype"]).name)
  for layer in ("add", "layer1", "layer2", "layer3"):
    assert dtypes[layer] == {"float32"}, (layer, dtypes)
  for layer in [f"layer{i}" for i in range(4, 15)] + ["embedding", "logits"]:
    assert dtypes[layer] == {"int8"}, (layer, dtypes)


def test_agreement_hand_worked_with_ties():
  f = np.array([[.9, .8, .7, .6, .5, .1, .0],     # top 5: classes 0-4
                [.9, .8, .7, .6, .5, .1, .0]])
  q = np.array([[.9, .8, .7, .6, .2, .3, .0],     # class 4 fell below class 5: 4 of 5
                [.9, .8, .7, .5, .5, .5, .0]])    # 3, 4, 5 tie at 5th place: all 5 count
  a = taggers.agreement(f, q)
  assert a["top5_agreement"] == pytest.approx((4 / 5 + 5 / 5) / 2)
  assert a["mean_abs_difference"] == pytest.approx(np.abs(f - q).mean())
  assert a["patches"] == 2


@pytest.fixture(scope="module")
def demo_size_export(tmp_path_factory):
  """A tagger trained as users train one (400 clips of the built-in data, 24 classes,
  MobileNetV1 w0.25, 30 epochs: about a minute), exported, and 100 held-out clips."""
  from tf_skeptical.datasets import builtin_data
  from tf_skeptical import prepare
  root = tmp_path_factory.mktemp("demo_size")
  data = str(root / "data")
  builtin_data.generate(data, builtin_data.BuiltinDataParams(train_clips=400, eval_clips=100,
                                                             seed=5))
  train_dir = str(root / "train")
  prepare.prepare_audio(os.path.join(data, builtin_data.TRAIN_SEGMENTS),
                        os.path.join(data, builtin_data.AUDIO_DIR),
                        os.path.join(data, builtin_data.CLASS_MAP), train_dir, clip_seconds=2.0)
  model_dir = str(root / "model")
  training.train(train_dir, model_dir, training.TrainConfig(
      model="mobilenet_v1", width=0.25, epochs=30, batch_size=32, train_hop_frames=48), verbose=0)
  out = str(root / "tagger")
  exporting.export(model_dir, os.path.join(train_dir, "class_map.csv"), out,
                   calibration_files=prepare.source_audio(train_dir),
                   cfg=exporting.ExportConfig(calibration_windows=200))
  return out, sorted(glob.glob(os.path.join(data, "audio", "eval*.wav")))


def test_int8_meets_the_targets_on_held_out_clips(demo_size_export):
  """Issue 6: mean |score difference| <= 0.02 and top-5 agreement >= 90%. Measured here
  over three training seeds: 0.006-0.007 and 94.7-96.5% (with every network layer int8,
  0.009-0.013 and 90.5-93.9%, and once 89.7% on CI)."""
  out, held_out = demo_size_export
  a = exporting.int8_agreement(out, taggers.clips(held_out, DEFAULT_FRONTEND), HOP)
  assert a["patches"] == 300
  assert a["mean_abs_difference"] <= 0.02
  assert a["top5_agreement"] >= 0.90


def test_export_writes_metadata_class_map_and_checks(exported):
  out, _ = exported
  import json
  with open(os.path.join(out, exporting.METADATA)) as f:
    meta = json.load(f)
  assert meta["window_samples"] == 15600 and meta["hop_samples"] == 7680
  assert meta["num_classes"] == 6
  with open(os.path.join(out, exporting.SANITY)) as f:
    sanity = json.load(f)
  assert sanity["failures"] == []
  assert sanity["held_out_clips"]["clips"] == 9  # 48 training clips: 1 in 5, at most 16
  assert sanity["held_out_clips"]["mean_abs_difference"] <= 0.1
  # The class map is a tracked asset: it follows the SavedModel when the model moves.
  moved = out + "_moved"
  shutil.copytree(os.path.join(out, exporting.SAVED_MODEL), moved)
  path = tf.saved_model.load(moved).signatures["class_map_path"]()["class_map_path"]
  path = path.numpy().decode()
  assert path.startswith(moved) and os.path.exists(path)
  with open(path) as a, open(os.path.join(out, exporting.CLASS_MAP)) as b:
    assert a.read() == b.read()
  assert not os.path.exists(exporting.files.sibling(out, "tmp"))


def test_runtime_equals_tflite_and_streams_the_same(exported, tmp_path):
  out, _ = exported
  rng = np.random.default_rng(1)
  w16 = (0.2 * rng.standard_normal(40000)).astype(np.float32)
  tagger = runtime.Tagger(out)
  np.testing.assert_array_equal(
      tagger.scores(w16),
      taggers.tflite_scores(os.path.join(out, exporting.FLOAT_TFLITE), w16, HOP))
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
  with pytest.raises(ValueError, match="0.31 s of audio, shorter than one 0.975 s window"):
    list(tagger.stream(short))
  with pytest.raises(ValueError, match="shorter than one"):
    tagger.scores(w16[:5000])


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


def test_int8_keeps_the_frontend_and_sigmoid_float(exported):
  """By op kind; which network layers are float: test_int8_keeps_the_first_layers_float."""
  from ai_edge_litert.interpreter import Interpreter
  out, _ = exported
  interpreter = Interpreter(model_path=os.path.join(out, exporting.INT8_TFLITE))
  dtype = {t["index"]: t["dtype"] for t in interpreter.get_tensor_details()}
  ops = interpreter._get_ops_details()
  out_types = lambda kind: {dtype[op["outputs"][0]] for op in ops if op["op_name"] == kind}
  assert out_types("LOG") == out_types("SQRT") == out_types("LOGISTIC") == {np.float32}
  # layers 1-3 float, 4-14 int8
  assert out_types("CONV_2D") == out_types("DEPTHWISE_CONV_2D") == {np.float32, np.int8}
  # the mel matmul stays float, the logits layer is int8
  assert out_types("FULLY_CONNECTED") == {np.float32, np.int8}


def test_split_audio_holds_out_a_fifth_at_most_check_clips():
  files = [f"clip{i}.wav" for i in range(103)]
  calibration, check = exporting.split_audio(files, exporting.ExportConfig(check_clips=16))
  assert len(check) == 16 and len(calibration) == 87
  assert set(calibration) | set(check) == set(files) and not set(calibration) & set(check)
  calibration, check = exporting.split_audio(files[:10], exporting.ExportConfig())
  assert len(check) == 2 and len(calibration) == 8
  calibration, check = exporting.split_audio(files[:3], exporting.ExportConfig())
  assert calibration == check and len(check) == 3
  with pytest.raises(ValueError, match="calibration needs training audio"):
    exporting.split_audio([], exporting.ExportConfig())


@pytest.mark.parametrize("runtime", ["tflite_float", "tflite_int8", "saved_model"])
def test_tfsk_tag_names_bad_files_and_tags_the_rest(exported, tmp_path, runtime):
  out, _ = exported
  good = str(tmp_path / "good.wav")
  audio_io.write_wav(good, (0.1 * np.random.default_rng(2).standard_normal(40000)), 16000)
  empty, corrupt = tmp_path / "empty.wav", tmp_path / "corrupt.wav"
  empty.write_bytes(b"")
  corrupt.write_bytes(b"RIFF\x00\x01junk")
  silent = str(tmp_path / "no_samples.wav")  # a valid header and no samples
  audio_io.write_wav(silent, np.zeros(0, np.float32), 16000)
  done = subprocess.run([sys.executable, "-m", "tf_skeptical_bin.tfsk_tag", f"--tagger={out}",
                         f"--runtime={runtime}", str(empty), good, str(corrupt), silent],
                        capture_output=True, text=True, timeout=300,
                        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
  assert done.returncode == 1
  assert f"== {good}" in done.stdout and "clip (mean of 4 patches)" in done.stdout
  assert f"{empty}: cannot tag it" in done.stderr and f"{corrupt}: cannot tag it" in done.stderr
  assert (f"{silent}: cannot tag it (0.00 s of audio, shorter than one 0.975 s window"
          in done.stderr)
  assert f"== {silent}" not in done.stdout
  assert "3 of 4 files could not be tagged" in done.stderr
  assert "Traceback" not in done.stderr


def _runtime(*args):
  return subprocess.run([sys.executable, os.path.join(EXPORT_RUNTIME, "tagger.py"), *args],
                        capture_output=True, text=True, timeout=300)


def _tfsk_tag(*args):
  return subprocess.run([sys.executable, "-m", "tf_skeptical_bin.tfsk_tag", *args],
                        capture_output=True, text=True, timeout=600,
                        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))


def test_non_finite_audio_is_refused_by_every_runtime(exported, tmp_path):
  from conftest import write_float_wav
  out, _ = exported
  x = (0.1 * np.random.default_rng(4).standard_normal(48000)).astype(np.float32)
  x[20000:20010] = np.nan
  path = str(tmp_path / "damaged.wav")
  write_float_wav(path, x)
  for done in (_runtime(out, path), _runtime(out, path, "--stream"),
               _tfsk_tag(f"--tagger={out}", path)):
    assert done.returncode == 1, done.stderr
    assert f"{path}: cannot tag it" in done.stderr and "non-finite samples" in done.stderr
    assert "1.250 s" in done.stderr  # where the first one is: 20000 / 16000
    assert "nan" not in done.stdout.lower() and "Traceback" not in done.stderr


def test_a_directory_that_is_not_a_tagger_is_one_line(exported, tiny_teacher, tmp_path):
  out, _ = exported
  partial = tmp_path / "partial"
  shutil.copytree(out, partial)
  os.remove(partial / exporting.CLASS_MAP)
  wav = str(tmp_path / "a.wav")
  audio_io.write_wav(wav, np.zeros(20000, np.float32), 16000)
  model_dir, _ = tiny_teacher
  for tagger_dir, words in ((str(partial), "an incomplete tagger (class_map.csv is missing)"),
                            (model_dir, "not an exported tagger (no metadata.json)")):
    for done, prefix in ((_runtime(tagger_dir, wav), "tagger"),
                         (_tfsk_tag(f"--tagger={tagger_dir}", wav), "tfsk_tag")):
      lines = done.stderr.strip().splitlines()
      assert done.returncode == 1 and len(lines) == 1, done.stderr
      assert lines[0] == f"{prefix}: error: {tagger_dir}: {words}: " + (
          "copy the whole directory that tfsk_export wrote" if "incomplete" in words
          else "give the directory tfsk_export wrote")


def test_tfsk_tag_tags_an_hour_in_under_a_gigabyte(exported, tmp_path):
  """An hour of audio is read block by block: peak memory is that of a short clip plus a
  block, not the decoded hour (57.6M samples)."""
  import wave
  out, _ = exported
  path = str(tmp_path / "hour.wav")
  with wave.open(path, "wb") as w:
    w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000)
    minute = np.zeros(16000 * 60, np.int16).tobytes()
    for _ in range(60):
      w.writeframes(minute)
  # Measured by a small launcher: a child forked from this (large) test process would count
  # the test's memory in its high-water mark, which exec does not reset.
  launcher = ("import os, subprocess, sys\n"
              "p = subprocess.Popen(sys.argv[1:], stdout=open(os.environ['OUT'], 'w'))\n"
              "_, status, usage = os.wait4(p.pid, 0)\n"
              "print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)")
  done = subprocess.run([sys.executable, "-c", launcher, sys.executable, "-m",
                         "tf_skeptical_bin.tfsk_tag", f"--tagger={out}", "--top=1", path],
                        capture_output=True, text=True, timeout=900,
                        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3",
                                 OUT=str(tmp_path / "out.txt")))
  status, peak_kb = map(int, done.stdout.split())
  assert status == 0, done.stderr
  patches = 1 + (3600 * 16000 - 15600) // HOP
  assert f"clip (mean of {patches} patches)" in (tmp_path / "out.txt").read_text()
  print(f"tfsk_tag on an hour of audio: peak RSS {peak_kb / 1024:.0f} MB")
  assert peak_kb / 1024 < 1024


def test_an_exported_tagger_is_a_teacher_by_mid(exported, tiny_examples, tmp_path):
  """The exported tagger scores the train set as the skeptical teacher: its class map
  (rewritten here: the same network outputs under permuted mids, one of them a class the
  examples lack) is matched to the examples' by mid, so each class's score is the mean over
  the clip's patches of the Keras model's sigmoid at the output that now carries its mid;
  the class whose mid the tagger lost is NaN and named."""
  from tf_skeptical import scoring
  from tf_skeptical.data import examples
  from tf_skeptical.data.class_map import ClassMap, read_class_map, write_class_map
  from tf_skeptical import input_pipeline
  out, model = exported
  train_dir, _ = tiny_examples
  info = examples.read_info(train_dir)
  tagger = str(tmp_path / "tagger")
  shutil.copytree(out, tagger)
  own = read_class_map(os.path.join(tagger, exporting.CLASS_MAP))
  order = [3, 0, 5, 1, 4, 2]  # output k now carries the mid of class order[k]
  mids = [own.mids[c] for c in order]
  mids[4] = "/m/not_in_the_examples"  # class 4's mid is gone: unknown
  write_class_map(ClassMap(tuple(mids), tuple(own.display_names[c] for c in order)),
                  os.path.join(tagger, exporting.CLASS_MAP))

  manifest = scoring.score(train_dir, tagger, str(tmp_path / "scores"), local_workers=1)
  assert manifest["unknown_classes"] == [info.class_map.display_names[4]]
  scores = scoring.read_scores(str(tmp_path / "scores"))
  assert np.isnan(scores.scores[:, 4]).all()
  output_of = {c: order.index(c) for c in (0, 1, 2, 3, 5)}
  for clip in list(examples.iterate(train_dir))[:6]:
    patches = input_pipeline.clip_patches(clip["features"], info.features, 48).numpy()
    want = inference.patch_probabilities(model, patches).mean(axis=0)
    row = int(np.flatnonzero(scores.clip_ids == clip["clip_id"])[0])
    for c, k in output_of.items():
      assert scores.scores[row, c] == pytest.approx(want[k], abs=1e-4)

  write_class_map(ClassMap(tuple(f"/m/other{i}" for i in range(6)), own.display_names),
                  os.path.join(tagger, exporting.CLASS_MAP))
  done = subprocess.run([sys.executable, "-m", "tf_skeptical_bin.tfsk_score",
                         f"--examples={train_dir}", f"--model={tagger}",
                         f"--output_dir={tmp_path / 'none'}"], capture_output=True,
                        text=True, timeout=300, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
  lines = done.stderr.strip().splitlines()
  assert done.returncode == 1 and lines == [
      f"tfsk_score: error: {tagger}: the exported tagger knows none of the 6 classes of "
      f"{train_dir} by mid: it cannot be their teacher"], done.stderr
  assert not os.path.exists(tmp_path / "none")
