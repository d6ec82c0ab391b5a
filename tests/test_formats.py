"""Reading the AudioSet formats: class map, segments CSV, embedding TFRecords, audio files."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_io as tfio

from tf_skeptical.data import audio_io, segments
from tf_skeptical.util.bad_input import DataError
from tf_skeptical.data.class_map import read_class_map


def write(path, text):
  path.write_text(text)
  return str(path)


@pytest.fixture
def cmap(tmp_path):
  return read_class_map(write(tmp_path / "c.csv", "index,mid,display_name\n0,/m/a,Speech\n"
                              '1,/m/b,"Dog, bark"\n2,/m/c,Music\n'))


def test_class_map_reads_quoted_names(cmap):
  assert cmap.mids == ("/m/a", "/m/b", "/m/c")
  assert cmap.display_names[1] == "Dog, bark"


@pytest.mark.parametrize("body, problem", [
    ("0,/m/a,A\n2,/m/b,B\n", "row 3: index 2 skips"),
    ("0,/m/a,A\n0,/m/b,B\n", "row 3: index 0 repeats"),
    ("0,/m/a,A\n1,/m/a,B\n", "row 3: mid /m/a already used on row 2"),
    ("0,/m/a\n", "row 2: expected 3 columns"),
])
def test_class_map_errors_name_file_and_row(tmp_path, body, problem):
  path = write(tmp_path / "bad.csv", "index,mid,display_name\n" + body)
  with pytest.raises(DataError, match=problem) as e:
    read_class_map(path)
  assert path in str(e.value)


def test_segments_csv_with_comments_quotes_and_negatives(tmp_path, cmap):
  path = write(tmp_path / "s.csv",
               "# Segments csv created Sun Mar  5 10:54:31 2017\n"
               "# num_ytids=3, num_segs=3, num_unique_labels=3, num_positive_labels=4\n"
               "# YTID, start_seconds, end_seconds, positive_labels\n"
               '--PJHxphWEs, 30.000, 40.000, "/m/a,/m/c"\n'
               '-0RWZT-miFs, 420.000, 430.000, "/m/b"\n'
               '-1nilez17Dg, 30.000, 40.000, "/m/c", "/m/a, /m/b"\n')
  got, skipped = segments.read_segments(path, cmap)
  assert not skipped
  assert [s.clip_id for s in got] == ["--PJHxphWEs", "-0RWZT-miFs", "-1nilez17Dg"]
  assert got[0].positives == (0, 2) and got[0].explicit_negatives == ()
  assert got[2].positives == (2,) and got[2].explicit_negatives == (0, 1)
  assert (got[1].start_seconds, got[1].end_seconds, got[1].row) == (420.0, 430.0, 5)


@pytest.mark.parametrize("row, problem", [
    ('x1, 0, 10, "/m/zzz"', "row 2: unknown label mid '/m/zzz'"),
    ('x1, 0, "/m/a"', "row 2: expected 4 or 5 columns"),
    ('x1, zero, 10, "/m/a"', "row 2: start/end seconds"),
    ('x1, 10, 5, "/m/a"', "row 2: need 0 <= start_seconds < end_seconds"),
    ('x1, 0, 10, "/m/a", "/m/a"', "row 2: labels both positive and explicit negative"),
])
def test_segments_errors_name_file_and_row(tmp_path, cmap, row, problem):
  path = write(tmp_path / "s.csv", "# header\n" + row + "\n")
  with pytest.raises(DataError, match=problem):
    segments.read_segments(path, cmap)
  got, skipped = segments.read_segments(path, cmap, skip_bad_rows=True)
  assert got == [] and skipped[0][0] == 2


def test_duplicate_clip_is_an_error(tmp_path, cmap):
  path = write(tmp_path / "s.csv", 'a, 0, 10, "/m/a"\na, 0, 10, "/m/b"\n')
  with pytest.raises(DataError, match="row 2: clip a already listed on row 1"):
    segments.read_segments(path, cmap)


def tone(rate, seconds=0.5, channels=1):
  t = np.arange(int(rate * seconds)) / rate
  x = 0.5 * np.sin(2 * np.pi * 440 * t)
  return np.stack([x] * channels, axis=1).astype(np.float32)


@pytest.mark.parametrize("ext", ["wav", "flac", "ogg", "mp3"])
# (tfio's Vorbis encoder, used only to make the fixture, rejects mono below 44.1 kHz.)
@pytest.mark.parametrize("rate, channels", [(16000, 2), (44100, 1)])
def test_decode_formats_to_16k_mono(tmp_path, ext, rate, channels):
  x = tone(rate, channels=channels)
  path = str(tmp_path / f"a.{ext}")
  if ext == "wav":
    audio_io.write_wav(path, x, rate)
  elif ext == "flac":
    tf.io.write_file(path, tfio.audio.encode_flac(tf.cast(x * 32767, tf.int16), rate))
  elif ext == "ogg":
    tf.io.write_file(path, tfio.audio.encode_vorbis(x, rate))
  else:
    try:
      tf.io.write_file(path, tfio.audio.encode_mp3(x, rate))
    except tf.errors.InvalidArgumentError:
      pytest.skip("no libmp3lame to make an mp3 fixture (apt-get install libmp3lame0)")
  w = audio_io.load_clip(tf.constant(path), clip_samples=12000).numpy()
  assert w.shape == (12000,)
  # A 440 Hz tone of amplitude 0.5 for the 0.5 s of audio, then zero padding.
  spectrum = np.abs(np.fft.rfft(w[1000:7000]))
  assert abs(np.argmax(spectrum) * 16000 / 6000 - 440) < 5
  assert 0.4 < np.abs(w[1000:7000]).max() < 0.6
  # Silence after the tone (mp3 encoders delay audio by ~1105 samples, hence the margin).
  assert np.abs(w[10000:]).max() < 0.02


def test_fit_length_crops_and_pads():
  np.testing.assert_array_equal(audio_io.fit_length(tf.range(5.0), 3).numpy(), [0, 1, 2])
  np.testing.assert_array_equal(audio_io.fit_length(tf.range(2.0), 4).numpy(), [0, 1, 0, 0])


@pytest.mark.parametrize("seed", range(4))
def test_wire_written_examples_equal_the_protobuf_classes(seed):
  """example_wire's records parse as the tf.train.Example the protobuf classes build, for
  random features: empty lists, large and negative ints, non-ASCII bytes."""
  from tf_skeptical.util import example_wire as wire
  rng = np.random.default_rng(seed)
  floats = rng.standard_normal(int(rng.integers(0, 600))).astype(np.float32)
  ints = [int(v) for v in rng.integers(-2**63, 2**63 - 1, int(rng.integers(0, 5)),
                                       dtype=np.int64)] + [0, 127, 128, 16383, 16384]
  blobs = [rng.bytes(int(k)) for k in rng.integers(0, 300, 3)] + ["é".encode()]
  got = tf.train.Example.FromString(wire.example({
      "f": wire.float_feature(floats), "i": wire.int64_feature(ints),
      "b": wire.bytes_feature(blobs), "empty": wire.int64_feature([])}))
  want = tf.train.Example(features=tf.train.Features(feature={
      "f": tf.train.Feature(float_list=tf.train.FloatList(value=floats.tolist())),
      "i": tf.train.Feature(int64_list=tf.train.Int64List(value=ints)),
      "b": tf.train.Feature(bytes_list=tf.train.BytesList(value=blobs)),
      "empty": tf.train.Feature(int64_list=tf.train.Int64List(value=[]))}))
  assert got == want
  assert got.features.feature["empty"].WhichOneof("kind") == "int64_list"


def test_wire_written_sequence_example_equals_the_protobuf_classes():
  from tf_skeptical.data import audioset_embeddings
  rng = np.random.default_rng(0)
  codes = rng.integers(0, 256, (10, 128), dtype=np.uint8)
  got = tf.train.SequenceExample.FromString(audioset_embeddings.make_sequence_example(
      "clip_é", 30.0, 40.0, [5, 526], codes))
  want = tf.train.SequenceExample(
      context=tf.train.Features(feature={
          "video_id": tf.train.Feature(bytes_list=tf.train.BytesList(value=["clip_é".encode()])),
          "start_time_seconds": tf.train.Feature(float_list=tf.train.FloatList(value=[30.0])),
          "end_time_seconds": tf.train.Feature(float_list=tf.train.FloatList(value=[40.0])),
          "labels": tf.train.Feature(int64_list=tf.train.Int64List(value=[5, 526]))}),
      feature_lists=tf.train.FeatureLists(feature_list={"audio_embedding": tf.train.FeatureList(
          feature=[tf.train.Feature(bytes_list=tf.train.BytesList(value=[bytes(r)]))
                   for r in codes])}))
  assert got == want
