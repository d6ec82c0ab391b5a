"""prepare: round trips, AudioSet embeddings, storage precision, and every bad input."""

import csv
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from tf_skeptical.data import audioset_embeddings, examples, frontend
from tf_skeptical.datasets import builtin_data
from tf_skeptical import prepare
from tf_skeptical.data.audio_io import load_clip
from tf_skeptical.util.bad_input import DataError
from tf_skeptical.data.segments import read_segments

from conftest import TINY


def test_examples_round_trip(tiny_data, tiny_examples):
  data, _ = tiny_data
  train_dir, _ = tiny_examples
  info = examples.read_info(train_dir)
  assert info.num_clips == TINY.train_clips and info.num_classes == TINY.num_classes
  cmap = info.class_map
  segments = {s.clip_id: s for s in read_segments(
      os.path.join(data, builtin_data.TRAIN_SEGMENTS), cmap)[0]}
  clips = list(examples.iterate(train_dir))
  assert sorted(c["clip_id"] for c in clips) == sorted(segments)
  for clip in clips[:5]:
    s = segments[clip["clip_id"]]
    assert tuple(np.flatnonzero(clip["positives"])) == s.positives
    assert tuple(np.flatnonzero(clip["explicit_negatives"])) == s.explicit_negatives
    wav = os.path.join(data, builtin_data.AUDIO_DIR, s.clip_id + ".wav")
    samples = int(TINY.clip_seconds * 16000)
    ref = frontend.log_mel(load_clip(tf.constant(wav), samples)).numpy()
    np.testing.assert_allclose(clip["features"], ref, atol=1e-5)


def test_embedding_tfrecords_in_audioset_layout(tmp_path):
  """Records built field by field as AudioSet releases them: context + audio_embedding."""
  cmap_path = tmp_path / "c.csv"
  cmap_path.write_text("index,mid,display_name\n" + "".join(
      f"{i},/m/{i},C{i}\n" for i in range(5)))
  rng = np.random.default_rng(0)
  path = str(tmp_path / "bal_train00.tfrecord")
  want = {}
  with tf.io.TFRecordWriter(path) as w:
    for k, (labels, seconds) in enumerate([([0, 3], 10), ([2], 7)]):
      q = rng.integers(0, 256, (seconds, 128), dtype=np.uint8)
      ex = tf.train.SequenceExample()
      ex.context.feature["video_id"].bytes_list.value.append(f"vid{k}".encode())
      ex.context.feature["start_time_seconds"].float_list.value.append(30.0)
      ex.context.feature["end_time_seconds"].float_list.value.append(40.0)
      ex.context.feature["labels"].int64_list.value.extend(labels)
      for row in q:
        ex.feature_lists.feature_list["audio_embedding"].feature.add().bytes_list.value.append(
            row.tobytes())
      w.write(ex.SerializeToString())
      want[f"vid{k}"] = (labels, q)
  out = str(tmp_path / "out")
  result = prepare.prepare_embeddings(str(tmp_path / "*.tfrecord"), str(cmap_path), out)
  assert result.num_clips == 2
  for clip in examples.iterate(out):
    labels, q = want[clip["clip_id"]]
    assert list(np.flatnonzero(clip["positives"])) == labels
    assert clip["features"].shape == (10, 128)
    np.testing.assert_allclose(clip["features"][:len(q)], (q.astype(np.float32) - 128) / 128)
    assert not clip["features"][len(q):].any()  # zero padding to 10 s


@pytest.fixture
def bad_dataset(tmp_path, tiny_data):
  """A copy of a few tiny clips with one bad input of each kind."""
  data, _ = tiny_data
  audio = tmp_path / "audio"
  audio.mkdir()
  for i in range(3):
    shutil.copy(os.path.join(data, "audio", f"train{i:06d}.wav"), audio / f"ok{i}.wav")
  (audio / "corrupt.wav").write_bytes(b"RIFF\x00\x01junk-not-audio")
  (audio / "empty.flac").write_bytes(b"")
  from tf_skeptical.data.audio_io import write_wav
  write_wav(str(audio / "short.wav"), np.zeros(8000, np.float32), 16000)  # 0.5 s
  shutil.copy(os.path.join(data, builtin_data.CLASS_MAP), tmp_path / "classes.csv")
  mid = "/tfsk/001"
  rows = {"ok0": f'ok0, 0, 1.5, "{mid}"', "missing": f'missing, 0, 1.5, "{mid}"',
          "corrupt": f'corrupt, 0, 1.5, "{mid}"', "empty": f'empty, 0, 1.5, "{mid}"',
          "unknown": 'ok1, 0, 1.5, "/m/nope"', "malformed": 'ok2, 0, "only three"',
          "short": f'short, 0, 1.5, "{mid}"'}
  return tmp_path, rows


def run_prepare(tmp_path, rows, skip=False):
  csv_path = tmp_path / "seg.csv"
  csv_path.write_text("# test\n" + "\n".join(rows) + "\n")
  return prepare.prepare_audio(str(csv_path), str(tmp_path / "audio"),
                               str(tmp_path / "classes.csv"), str(tmp_path / "out"),
                               clip_seconds=1.5, skip_bad_clips=skip)


@pytest.mark.parametrize("case, message", [
    ("missing", r"seg.csv, row 3: no audio file missing\{.wav"),
    ("unknown", r"seg.csv, row 3: unknown label mid '/m/nope'"),
    ("malformed", r"seg.csv, row 3: expected 4 or 5 columns"),
    ("corrupt", r"corrupt.wav: cannot decode audio .*segments row 3"),
    ("empty", r"empty.flac: cannot decode audio .*segments row 3"),
    ("short", r"short.wav: clip is 0.500 s, shorter than one 15600-sample patch.*row 3"),
])
def test_bad_input_stops_with_file_and_row(bad_dataset, case, message):
  tmp_path, rows = bad_dataset
  with pytest.raises(DataError, match=message):
    run_prepare(tmp_path, [rows["ok0"], rows[case]])
  assert not os.path.exists(tmp_path / "out" / examples.MANIFEST)  # nothing half-written


def test_skip_bad_clips_counts_and_reports(bad_dataset):
  tmp_path, rows = bad_dataset
  result = run_prepare(tmp_path, list(rows.values()), skip=True)
  assert result.num_clips == 1 and len(result.skips) == 6
  with open(result.report) as f:
    report = list(csv.DictReader(f))
  reasons = " | ".join(r["reason"] for r in report)
  for needle in ("no audio file missing", "unknown label mid", "expected 4 or 5 columns",
                 "corrupt.wav", "empty.flac", "shorter than one"):
    assert needle in reasons
  assert sorted(int(r["row"]) for r in report) == [3, 4, 5, 6, 7, 8]
  info = examples.read_info(str(tmp_path / "out"))
  assert info.num_clips == 1 and info.extra["num_skipped"] == 6


@pytest.mark.parametrize("storage,tolerance,size", [("float32", 0, 4), ("float16", 0.004, 2)])
def test_log_mel_storage_round_trips_within_its_stated_error(storage, tolerance, size):
  x = np.random.default_rng(0).uniform(-7, 9, (40, 64)).astype(np.float32)
  record = examples.serialize("c", [1], [], x, storage)
  got = examples.parse(tf.constant(record), 3)["features"].numpy()
  assert got.dtype == np.float32 and got.shape == x.shape
  assert np.abs(got - x).max() <= tolerance
  assert len(examples.encode_features(x, storage)) == x.size * size


def test_uint8_storage_holds_audioset_codes_exactly_and_nothing_else():
  codes = np.random.default_rng(1).integers(0, 256, (10, 128))
  embeddings = audioset_embeddings.dequantize(codes)
  record = examples.serialize("c", [0], [], embeddings, "uint8")
  got = examples.parse(tf.constant(record), 3)["features"].numpy()
  np.testing.assert_array_equal(got, embeddings)
  assert len(examples.encode_features(embeddings, "uint8")) == 1280
  with pytest.raises(ValueError, match="use float16"):
    examples.encode_features(embeddings + 0.001, "uint8")
