"""Careless inputs and re-runs: each case stops with a named error, keeps the previous
output, or resumes; none writes a silently wrong result."""

import dataclasses
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from conftest import TINY, TINY_TRAIN, write_float_wav
from tf_skeptical.data import audio_io, class_map, examples, segments
from tf_skeptical.datasets import builtin_data
from tf_skeptical import exporting, flagging, inference, models, prepare, scoring, taggers, training
from tf_skeptical.targets import Targets
from tf_skeptical.util import files, provenance
from tf_skeptical.util.bad_input import DataError
from tf_skeptical.masked_loss import MaskedBCEModel
from tf_skeptical.data.params import DEFAULT_FRONTEND

ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")


def write_u8_wav(path, samples, rate=16000):
  import wave
  with wave.open(path, "wb") as w:
    w.setnchannels(1), w.setsampwidth(1), w.setframerate(rate)
    w.writeframes(np.asarray(samples, np.uint8).tobytes())


@pytest.fixture
def small_set(tmp_path, tiny_data):
  """Four tiny clips with their segments CSV and class map, to prepare in seconds."""
  data, _ = tiny_data
  audio = tmp_path / "audio"
  audio.mkdir()
  rows = []
  for i in range(4):
    shutil.copy(os.path.join(data, "audio", f"train{i:06d}.wav"), audio / f"c{i}.wav")
    rows.append(f'c{i}, 0, 1.5, "/tfsk/00{i}"')
  shutil.copy(os.path.join(data, builtin_data.CLASS_MAP), tmp_path / "classes.csv")
  (tmp_path / "seg.csv").write_text("\n".join(rows) + "\n")
  return tmp_path


def prepare_small(root, out="out", **kwargs):
  return prepare.prepare_audio(str(root / "seg.csv"), str(root / "audio"),
                               str(root / "classes.csv"), str(root / out),
                               clip_seconds=1.5, **kwargs)


def snapshot(directory):
  return {name: open(os.path.join(directory, name), "rb").read()
          for name in sorted(os.listdir(directory))}


# -- audio and text inputs ------------------------------------------------------------------

def test_nan_sample_is_refused_by_name_or_skipped(small_set):
  w = (0.1 * np.random.default_rng(0).standard_normal(24000)).astype(np.float32)
  w[1000] = np.nan
  write_float_wav(str(small_set / "audio" / "c1.wav"), w)
  with pytest.raises(DataError, match=r"c1.wav: 1 non-finite samples .*segments row 2"):
    prepare_small(small_set)
  assert not (small_set / "out").exists()
  result = prepare_small(small_set, skip_bad_clips=True)
  assert result.num_clips == 3 and "non-finite" in result.skips[0].reason


def test_8_bit_pcm_is_read(tmp_path):
  q = (np.sin(np.arange(16000) / 5) * 100 + 128).astype(np.uint8)
  write_u8_wav(str(tmp_path / "u8.wav"), q)
  samples, rate = audio_io.decode_audio(tf.constant(str(tmp_path / "u8.wav")))
  assert int(rate) == 16000
  np.testing.assert_array_equal(samples.numpy()[:, 0], (q.astype(np.float32) - 128) / 128)


def test_byte_order_mark_in_csvs_is_ignored(tmp_path):
  (tmp_path / "classes.csv").write_bytes(
      "\ufeffindex,mid,display_name\n0,/m/a,A\n1,/m/b,B\n".encode("utf-8"))
  cmap = class_map.read_class_map(str(tmp_path / "classes.csv"))
  assert cmap.mids == ("/m/a", "/m/b")
  (tmp_path / "seg.csv").write_bytes('\ufeffclip1, 0, 10, "/m/b"\n'.encode("utf-8"))
  rows, _ = segments.read_segments(str(tmp_path / "seg.csv"), cmap)
  assert rows[0].clip_id == "clip1" and rows[0].positives == (1,)


def test_every_clip_skipped_is_an_error_not_an_empty_dataset(small_set):
  for wav in (small_set / "audio").iterdir():
    wav.write_bytes(b"RIFF\x00\x01junk")
  with pytest.raises(DataError, match="no clip could be prepared: all 4 were skipped"):
    prepare_small(small_set, skip_bad_clips=True)
  assert not (small_set / "out").exists()


def test_truncated_model_is_named(tiny_teacher, tmp_path):
  model_dir, _ = tiny_teacher
  with open(os.path.join(model_dir, inference.MODEL_FILE), "rb") as f:
    (tmp_path / "model.keras").write_bytes(f.read()[:5000])
  with pytest.raises(DataError, match="model.keras: cannot be read as a Keras model"):
    inference.load_model(str(tmp_path / "model.keras"))


# -- outputs: kept on failure, one writer at a time -------------------------------------------

def test_failing_prepare_keeps_the_previous_output(small_set):
  prepare_small(small_set)
  before = snapshot(small_set / "out")
  (small_set / "audio" / "c2.wav").write_bytes(b"RIFF\x00\x01junk")
  with pytest.raises(DataError, match="c2.wav: cannot decode audio"):
    prepare_small(small_set)
  assert snapshot(small_set / "out") == before


def test_second_writer_is_refused_and_a_dead_writers_lock_is_taken_over(small_set):
  with files.output_lock(str(small_set / "out")):
    with pytest.raises(files.OutputLocked, match=r"out is being written by process \d+@"):
      prepare_small(small_set)
  dead = subprocess.Popen([sys.executable, "-c", "pass"])
  dead.wait()
  (small_set / ".lock.out").write_text(f"{dead.pid}@{os.uname().nodename}")
  assert prepare_small(small_set).num_clips == 4
  assert not (small_set / ".lock.out").exists()


def test_scoring_with_a_missing_model_keeps_the_previous_scores(tiny_teacher, tiny_examples,
                                                               tmp_path):
  model_dir, _ = tiny_teacher
  _, eval_dir = tiny_examples
  out = str(tmp_path / "scores")
  scoring.score(eval_dir, model_dir, out, patch_batch=16, local_workers=1)
  before = snapshot(out)
  with pytest.raises(DataError, match="no trained model here"):
    scoring.score(eval_dir, str(tmp_path / "nowhere"), out, local_workers=1)
  assert snapshot(out) == before


def test_model_of_another_width_is_refused_before_scoring(tiny_examples, tmp_path):
  train_dir, _ = tiny_examples
  info = examples.read_info(train_dir)
  model = MaskedBCEModel.wrap(models.build_model("mobilenet_v1", info.features.input_shape, 4,
                                                 0.25), features=info.features.to_dict())
  model.save(str(tmp_path / "four.keras"))
  with pytest.raises(DataError, match="6 classes, but model .*four.keras has 4 outputs"):
    scoring.score(train_dir, str(tmp_path / "four.keras"), str(tmp_path / "s"),
                  local_workers=1)
  assert not (tmp_path / "s").exists()


# -- flags and students -----------------------------------------------------------------------

def test_flags_of_another_clip_set_are_refused(teacher_flags, tiny_examples, tmp_path):
  _, flags = teacher_flags
  _, eval_dir = tiny_examples  # other clips than the flags were made from
  with pytest.raises(provenance.ProvenanceMismatch, match="made from another clip set"):
    training.train(eval_dir, str(tmp_path / "s"), training.TrainConfig(**TINY_TRAIN),
                   targets=Targets(flagged=flags.entries(10)), verbose=0)
  assert not training.is_trained(str(tmp_path / "s"))


def test_flags_of_another_class_map_are_refused(teacher_flags, tiny_examples, tmp_path):
  _, flags = teacher_flags
  train_dir, _ = tiny_examples
  other = flags.entries(10)
  other.made_from["class_map_id"] = provenance.class_map_id(["/m/x"] * 4)
  with pytest.raises(provenance.ProvenanceMismatch, match="made from another class map"):
    training.train(train_dir, str(tmp_path / "s"), training.TrainConfig(**TINY_TRAIN),
                   targets=Targets(flagged=other), verbose=0)


@pytest.mark.parametrize("percent", [-1.0, float("nan")])
def test_negative_or_nan_discard_percent_is_refused(teacher_flags, tmp_path, percent):
  _, flags = teacher_flags
  path = str(tmp_path / "flags.npz")
  flagging.write_flags(flags, path)
  with pytest.raises(ValueError, match="percentage must be"):
    flagging.load_entries(path, percent)
  done = subprocess.run([sys.executable, "-m", "tf_skeptical_bin.tfsk_train", "--train=x",
                         "--model_dir=y", f"--discard_percent={percent}"],
                        capture_output=True, text=True, env=ENV, timeout=300, cwd=tmp_path)
  assert done.returncode == 1 and f"flag --discard_percent={percent}: must be in [0, 100]" in done.stderr
  assert not (tmp_path / "y").exists()


def test_class_map_of_another_width_is_refused_by_tfsk_flag(teacher_flags, tmp_path):
  scores_dir, _ = teacher_flags
  cmap = tmp_path / "four.csv"
  cmap.write_text("index,mid,display_name\n" + "".join(f"{i},/m/{i},c{i}\n" for i in range(4)))
  done = subprocess.run([sys.executable, "-m", "tf_skeptical_bin.tfsk_flag",
                         f"--scores={scores_dir}", f"--class_map={cmap}",
                         f"--output_dir={tmp_path / 'flags'}"],
                        capture_output=True, text=True, env=ENV, timeout=300)
  assert done.returncode != 0
  assert "four.csv: 4 classes, but the scores" in done.stderr
  assert not (tmp_path / "flags" / flagging.FLAGS_FILE).exists()


def test_review_with_flags_below_one_percent(teacher_flags, tmp_path):
  _, flags = teacher_flags
  small = flagging.rank_implicit_negatives(
      flags.clip_ids, np.random.default_rng(0).random((len(flags.clip_ids), 6)),
      (np.zeros(len(flags.clip_ids) + 1, np.int64), np.zeros(0, np.int32)),
      (np.zeros(len(flags.clip_ids) + 1, np.int64), np.zeros(0, np.int32)), max_percent=0.5)
  rows = flagging.write_review(small, ["m"] * 6, ["n"] * 6, str(tmp_path / "r.csv"), 1.0)
  assert rows == len(small.rank)  # everything up to 0.5%, not a crash


def test_non_finite_loss_stops_training_with_no_result(tmp_path):
  out = str(tmp_path / "nan_examples")
  os.makedirs(out)
  cmap = class_map.ClassMap(("/m/a", "/m/b"), ("a", "b"))
  class_map.write_class_map(cmap, os.path.join(out, examples.CLASS_MAP))
  features = np.zeros((100, 64), np.float32)
  features[5, 3] = np.nan
  with tf.io.TFRecordWriter(os.path.join(out, "examples-00000-of-00001.tfrecord")) as w:
    for i in range(8):
      w.write(examples.serialize(f"c{i}", [i % 2], [], features))
  examples.write_manifest(out, 8, 2, examples.Features(examples.LOG_MEL, 64, DEFAULT_FRONTEND),
                          100)
  model_dir = str(tmp_path / "run")
  with pytest.raises(training.NonFiniteLoss, match="loss became nan in epoch 1, batch 1"):
    training.train(out, model_dir, training.TrainConfig(**dict(TINY_TRAIN, epochs=1)),
                   verbose=0)
  assert not training.is_trained(model_dir)
  assert not os.path.exists(os.path.join(model_dir, inference.MODEL_FILE))


# -- variable-length clips --------------------------------------------------------------------

def test_clips_at_their_own_length_train(small_set):
  """--clip_seconds=0 keeps each clip's length; training sizes its epoch from the frames."""
  result = prepare.prepare_audio(str(small_set / "seg.csv"), str(small_set / "audio"),
                                 str(small_set / "classes.csv"), str(small_set / "own"),
                                 clip_seconds=0)
  info = examples.read_info(str(small_set / "own"))
  assert result.num_clips == 4 and info.frames_per_clip is None
  assert info.extra["frames_written"] == 4 * 148  # 1.5 s clips: 148 frames each
  out = training.train(str(small_set / "own"), str(small_set / "run"),
                       training.TrainConfig(**dict(TINY_TRAIN, epochs=1)), verbose=0)
  assert out["steps_per_epoch"] == 1  # 4 clips x 2 patches at hop 48, batches of 8


# -- tagging ----------------------------------------------------------------------------------

def test_chunked_saved_model_scores_equal_one_call():
  calls = []

  def serve(waveform):  # a stand-in: one "score" per 100-sample window every 40 samples
    w = waveform.numpy()
    calls.append(len(w))
    starts = range(0, len(w) - 100 + 1, 40)
    return {"scores": tf.constant([[w[s:s + 100].sum()] for s in starts])}

  x = np.random.default_rng(0).standard_normal(1234).astype(np.float32)
  whole = serve(tf.constant(x))["scores"].numpy()
  calls.clear()
  chunked = taggers.saved_model_scores(lambda waveform: serve(waveform), x, 100, 40,
                                         patches_per_call=5)
  np.testing.assert_allclose(chunked, whole, rtol=1e-6)
  assert max(calls) == 100 + 4 * 40 and len(calls) == int(np.ceil(len(whole) / 5))



def test_flags_of_a_dataset_with_the_same_clip_names_are_refused(teacher_flags, tmp_path):
  """Another generation of the built-in data: the same clip names, other labels."""
  _, flags = teacher_flags
  data = str(tmp_path / "other")
  builtin_data.generate(data, dataclasses.replace(TINY, seed=TINY.seed + 1))
  other = str(tmp_path / "examples")
  prepare.prepare_audio(os.path.join(data, builtin_data.TRAIN_SEGMENTS),
                        os.path.join(data, builtin_data.AUDIO_DIR),
                        os.path.join(data, builtin_data.CLASS_MAP), other,
                        clip_seconds=TINY.clip_seconds)
  assert set(flags.clip_ids) == {c["clip_id"] for c in examples.iterate(other)}
  with pytest.raises(provenance.ProvenanceMismatch, match="made from another clip set"):
    training.train(other, str(tmp_path / "s"), training.TrainConfig(**TINY_TRAIN),
                   targets=Targets(flagged=flags.entries(10)), verbose=0)


def test_model_and_class_map_of_another_dataset_are_refused(tiny_teacher, tiny_examples,
                                                            tmp_path):
  model_dir, _ = tiny_teacher
  train_dir, _ = tiny_examples
  cmap = tmp_path / "same_width.csv"
  cmap.write_text("index,mid,display_name\n" + "".join(f"{i},/m/x{i},x{i}\n" for i in range(6)))
  with pytest.raises(provenance.ProvenanceMismatch, match="made from another class map"):
    exporting.export(model_dir, str(cmap), str(tmp_path / "tagger"),
                     calibration_files=prepare.source_audio(train_dir))
  assert not (tmp_path / "tagger").exists()


# -- one-line errors, nothing left behind (the binaries as a user runs them) -----------------

# A user's environment: no TF_CPP_MIN_LOG_LEVEL (the suite's own may set it).
USER_ENV = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}


def run_binary(binary, *args, cwd, env=None):
  return subprocess.run([sys.executable, "-m", f"tf_skeptical_bin.{binary}", *args],
                        capture_output=True, text=True, env=env or USER_ENV, timeout=600,
                        cwd=cwd)


def assert_one_line_error(done, binary, *parts):
  """Exit status 1 and one line on stderr, `<binary>: error: ...` naming every part."""
  assert done.returncode == 1, done.stderr[-3000:]
  lines = [l for l in done.stderr.splitlines() if l.strip()]
  errors = [l for l in lines if l.startswith(f"{binary}: error: ")]
  assert len(errors) == 1, done.stderr[-3000:]
  for part in parts:
    assert part in errors[0], errors[0]
  assert "Traceback" not in done.stderr


def test_truncated_shard_is_named_in_one_line_by_train_and_score(small_set, tiny_teacher,
                                                                 tmp_path):
  model_dir, _ = tiny_teacher
  prepare_small(small_set)
  shard = sorted((small_set / "out").glob("examples-*.tfrecord"))[0]
  data = shard.read_bytes()
  shard.write_bytes(data[:len(data) // 2])  # a partial copy
  done = run_binary("tfsk_train", f"--train={small_set / 'out'}", "--model_dir=run",
                    "--epochs=1", "--width=0.25", cwd=tmp_path)
  assert_one_line_error(done, "tfsk_train", str(shard), f"{len(data) // 2} bytes",
                        f"manifest.json recorded {len(data)}", "truncated")
  assert not (tmp_path / "run").exists()
  done = run_binary("tfsk_score", f"--examples={small_set / 'out'}", f"--model={model_dir}",
                    "--output_dir=scores", "--local_workers=1", cwd=tmp_path)
  assert_one_line_error(done, "tfsk_score", str(shard), "truncated")
  assert not (tmp_path / "scores").exists() and not (tmp_path / ".tmp.scores").exists()
  assert not (tmp_path / ".lock.scores").exists() and not (tmp_path / ".lock.run").exists()


def test_known_refusals_are_one_line_and_traceback_on_request(teacher_flags, tiny_examples,
                                                              tmp_path):
  _, flags = teacher_flags
  train_dir, _ = tiny_examples
  path = str(tmp_path / "flags.npz")
  flagging.write_flags(dataclasses.replace(flags, max_percent=1.0), path)
  args = (f"--train={train_dir}", "--model_dir=s", f"--teacher_flags={path}", "--discard_percent=4")
  done = run_binary("tfsk_train", *args, cwd=tmp_path)
  assert_one_line_error(done, "tfsk_train", "flags were written up to 1.0%, not 4.0%",
                        "--max_percent")
  done = run_binary("tfsk_train", *args, "--traceback", cwd=tmp_path)
  assert done.returncode == 1 and "Traceback" in done.stderr
  assert "tfsk_train: error: flags were written up to 1.0%" in done.stderr
  assert not (tmp_path / ".lock.s").exists()


def _tmpfs(path, size):
  """A small tmpfs at path (root only), or a skip saying why."""
  path.mkdir()
  done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                        capture_output=True, text=True)
  if done.returncode:
    pytest.skip(f"cannot mount a small tmpfs to fill ({done.stderr.strip()})")


def test_full_disk_in_prepare_is_one_line_and_leaves_no_staging_or_lock(small_set, tmp_path):
  disk = tmp_path / "disk"
  _tmpfs(disk, "96k")
  try:
    done = run_binary("tfsk_prepare", f"--segments={small_set / 'seg.csv'}",
                      f"--audio_dir={small_set / 'audio'}",
                      f"--class_map={small_set / 'classes.csv'}", f"--output_dir={disk / 'ex'}",
                      "--clip_seconds=1.5", "--local_workers=1", cwd=tmp_path)
    assert_one_line_error(done, "tfsk_prepare", f"no space left on the device writing "
                          f"{disk / 'ex'}: free some space")
    assert sorted(os.listdir(disk)) == []  # no staging directory, lock or partial shard
  finally:
    subprocess.run(["umount", str(disk)], check=False)


def test_binaries_start_quietly(tmp_path, teacher_flags, tiny_teacher, tiny_examples):
  done = run_binary("tfsk_train", "--help", cwd=tmp_path)
  assert "--treatment:" in done.stdout and "--[no]traceback:" in done.stdout
  assert "Unable to register" not in done.stderr and "cuda" not in done.stderr.lower()
  model_dir, _ = tiny_teacher
  _, eval_dir = tiny_examples
  done = run_binary("tfsk_score", f"--examples={eval_dir}", f"--model={model_dir}",
                    "--output_dir=scores", "--local_workers=2", cwd=tmp_path)
  assert done.returncode == 0, done.stderr[-3000:]
  assert "apache_beam" not in done.stderr and "Unable to register" not in done.stderr
  assert "scored 24 clips" in done.stderr


def test_a_workers_progress_lines_are_kept_as_their_message(monkeypatch):
  """What the local job service forwards from a worker, as Beam formats it: progress lines
  pass as their bare message, the rest is dropped."""
  import logging
  from tf_skeptical.util import progress
  from tf_skeptical_bin import cli
  shown = []
  monkeypatch.setattr(progress.logging, "info", lambda fmt, *a: shown.append(fmt % a))
  log = progress.ProgressLog("score: clips", 3000)
  log.count = 120
  log.log()
  line = shown[0]
  assert line.startswith("score: clips: 120/3000 on this worker (")
  keep = cli.WorkerProgressOnly()
  for message, kept in ((line, True), ("Creating insecure control channel for localhost:1.",
                                       False)):
    record = logging.LogRecord(
        "apache_beam.runners.portability.local_job_service", logging.INFO, __file__, 1,
        "Worker: %s", (f'severity: INFO timestamp {{ seconds: 1 }} message: "{message}" '
                       'log_location: "x.py:1" thread: "MainThread"',), None)
    assert keep.filter(record) == kept
    if kept:
      assert record.getMessage() == line


def test_streamed_scores_equal_the_whole_waveforms():
  """Blocks of any size give the patches of the whole waveform (a numpy reference: each
  patch's score is its window's mean and maximum)."""
  rng = np.random.default_rng(7)
  x = rng.standard_normal(10_000).astype(np.float32)
  window, hop = 400, 160
  starts = range(0, len(x) - window + 1, hop)
  want = np.array([[x[s:s + window].mean(), x[s:s + window].max()] for s in starts])

  def score(w):
    return np.array([[w[s:s + window].mean(), w[s:s + window].max()]
                     for s in range(0, len(w) - window + 1, hop)])

  for block in (37, 160, 400, 1234, 10_000):
    blocks = (x[a:a + block] for a in range(0, len(x), block))
    np.testing.assert_allclose(taggers.streamed_scores(blocks, score, window, hop, 16000),
                               want, rtol=1e-6)
  bad = x.copy()
  bad[8000] = np.inf
  with pytest.raises(ValueError, match=r"non-finite samples .* first at 0.500 s"):
    taggers.streamed_scores((bad[a:a + 999] for a in range(0, len(x), 999)), score, window,
                            hop, 16000)
  with pytest.raises(ValueError, match="0.02 s of audio, shorter than one 0.025 s window"):
    taggers.streamed_scores([x[:300]], score, window, hop, 16000)


@pytest.mark.parametrize("rate,channels", [(16000, 1), (44100, 2), (8000, 1)])
def test_audio_read_in_blocks_equals_the_whole_file(tmp_path, rate, channels):
  import wave
  x = (0.3 * np.random.default_rng(rate).standard_normal((rate * 7 + 123, channels)))
  path = str(tmp_path / "a.wav")
  with wave.open(path, "wb") as w:
    w.setnchannels(channels), w.setsampwidth(2), w.setframerate(rate)
    w.writeframes((x * 32767).astype("<i2").tobytes())
  whole = audio_io.load_clip(tf.constant(path)).numpy()
  blocks = list(audio_io.decode_blocks(path, block_seconds=2))
  assert len(blocks) == 4
  np.testing.assert_allclose(np.concatenate(blocks), whole, atol=1e-6)
