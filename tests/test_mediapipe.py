"""The exported taggers in MediaPipe's Audio Classifier and Audio Embedder, unchanged.

MediaPipe (0.10.21, the TFLite audio tasks Android and iOS ship) frames audio into
non-overlapping windows of the model's input length, zero-padding the last; each window is
held to export/tagger.py's output on the same samples. The metadata is read back with
MediaPipe's own generated schema code, not ours.
"""

import glob
import io
import json
import os
import sys
import zipfile

import numpy as np
import pytest

from tf_skeptical import exporting, tflite_metadata
from tf_skeptical.datasets.builtin_data import AUDIO_DIR
from tf_skeptical.data.class_map import read_class_map

mp_audio = pytest.importorskip("mediapipe.tasks.python.audio.audio_classifier")
from mediapipe.tasks.metadata import metadata_schema_py_generated as mp_schema  # noqa: E402
from mediapipe.tasks.python.audio import audio_embedder  # noqa: E402
from mediapipe.tasks.python.audio.core import audio_task_running_mode  # noqa: E402
from mediapipe.tasks.python.components.containers import audio_data  # noqa: E402
from mediapipe.tasks.python.core import base_options  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "export"))
import tagger as runtime  # noqa: E402  (export/tagger.py)

pytestmark = pytest.mark.end_to_end
TFLITES = {"float": exporting.FLOAT_TFLITE, "int8": exporting.INT8_TFLITE}
# MediaPipe's scores against LiteRT's on the same file. Float: the same arithmetic up to
# summation order, so within 1e-4. Int8 (its first layers float, ExportConfig.float_layers):
# the int8 kernels round differently. On the demo's exported student (120 windows), LiteRT
# with its default XNNPack delegate and LiteRT with its builtin kernels differed by up to
# 0.10 on a window, MediaPipe and LiteRT by up to 0.042, while all three were as far from
# the float file (mean absolute difference 0.0047-0.0048). So for int8 the test holds
# MediaPipe to LiteRT's accuracy against float, and to LiteRT's scores within the
# kernels' measured spread.
FLOAT_TOLERANCE = 1e-4
INT8_KERNEL_SPREAD = 0.15


def _options(path, **kwargs):
  return dict(base_options=base_options.BaseOptions(model_asset_path=path), **kwargs)


def _classifier(path, **kwargs):
  return mp_audio.AudioClassifier.create_from_options(
      mp_audio.AudioClassifierOptions(**_options(path, **kwargs)))


def _scores(result, num_classes):
  """A ClassificationResult's "scores" head as a dense vector."""
  head = [c for c in result.classifications if c.head_name == "scores"]
  assert len(head) == 1, [c.head_name for c in result.classifications]
  dense = np.full(num_classes, np.nan)
  for category in head[0].categories:
    dense[category.index] = category.score
  return dense


def _windows(waveform, window):
  """MediaPipe's clip-mode framing: consecutive windows, the last zero-padded."""
  count = -(-len(waveform) // window)
  padded = np.pad(waveform, (0, count * window - len(waveform)))
  return padded.reshape(count, window)


def _top(scores, k=5):
  return list(np.argsort(-scores, kind="stable")[:k])


def _same_top(a, b, tolerance=1e-4, k=5):
  """Top-k of a equals top-k of b, where b's order is decided by more than `tolerance`."""
  sb = np.sort(b)[::-1]
  if np.all(np.abs(np.diff(sb[:k + 1])) > tolerance):
    return _top(a, k) == _top(b, k)
  return set(_top(a, k)) == set(_top(b, k)) or sb[k - 1] - sb[min(k, len(sb) - 1)] <= tolerance


@pytest.fixture(scope="module")
def clips(tiny_data):
  """Eval clips of the built-in set (1.5 s: one window and a padded one) and a 5 s mix."""
  data, _ = tiny_data
  paths = sorted(glob.glob(os.path.join(data, AUDIO_DIR, "*.wav")))[:6]
  waves = [runtime.resample(*runtime.read_wav(p)) for p in paths]
  waves.append(np.concatenate(waves)[:80000])
  return [np.asarray(w, np.float32) for w in waves]


# The tagger trained from random weights, and a student fine-tuned from a file in YAMNet's
# released layout (conftest.fine_tuned_tagger): MediaPipe loads either as it is.
TAGGERS = ["tiny_tagger", "fine_tuned_tagger"]


@pytest.mark.parametrize("which", TAGGERS)
@pytest.mark.parametrize("kind", ["float", "int8"])
def test_audio_classifier_equals_the_python_runtime(request, which, clips, kind):
  """Float: MediaPipe's scores are LiteRT's. Int8: as close to the float file's as LiteRT's
  are (see INT8_KERNEL_SPREAD)."""
  out, _ = request.getfixturevalue(which)
  tagger, exact = runtime.Tagger(out, model=kind), runtime.Tagger(out, model="float")
  num_classes = len(tagger.class_names)
  classifier = _classifier(os.path.join(out, TFLITES[kind]))
  errors = {"mediapipe": [], "litert": []}  # int8: mean |score - float file's| per window
  compared = 0
  for clip in clips:
    results = classifier.classify(audio_data.AudioData.create_from_array(clip, 16000))
    windows = _windows(clip, tagger.window)
    assert len(results) == len(windows)
    for result, window in zip(results, windows):
      got, want = _scores(result, num_classes), tagger.patch(window)
      if kind == "float":
        assert np.abs(got - want).max() <= FLOAT_TOLERANCE
        assert _same_top(got, want, FLOAT_TOLERANCE)
      else:
        assert np.abs(got - want).max() <= INT8_KERNEL_SPREAD
        reference = exact.patch(window)
        errors["mediapipe"].append(np.abs(got - reference).mean())
        errors["litert"].append(np.abs(want - reference).mean())
      head = [c for c in result.classifications if c.head_name == "scores"][0]
      names = [c.category_name for c in head.categories]
      assert set(names) <= set(tagger.class_names)
      compared += 1
  assert compared >= 13
  if kind == "int8":
    assert np.mean(errors["mediapipe"]) <= 1.25 * np.mean(errors["litert"]) + 1e-3
  classifier.close()


def test_audio_classifier_streams_what_clip_mode_gives(tiny_tagger, clips):
  out, _ = tiny_tagger
  tagger = runtime.Tagger(out)
  got = []
  stream = _classifier(
      os.path.join(out, exporting.FLOAT_TFLITE),
      running_mode=audio_task_running_mode.AudioTaskRunningMode.AUDIO_STREAM,
      result_callback=lambda result, ms: got.append((ms, _scores(result, 6))))
  clip = clips[-1]  # 5 s: three whole windows, then a part window
  chunk = 4000  # 0.25 s, as a microphone would deliver
  for start in range(0, len(clip), chunk):
    stream.classify_async(audio_data.AudioData.create_from_array(clip[start:start + chunk],
                                                                 16000), start // 16)
  stream.close()
  whole = len(clip) // tagger.window
  assert [ms for ms, _ in got[:whole]] == [975 * i for i in range(whole)]
  for i, (_, scores) in enumerate(got[:whole]):
    want = tagger.patch(clip[i * tagger.window:(i + 1) * tagger.window])
    assert np.abs(scores - want).max() <= 1e-4


@pytest.mark.parametrize("kind", ["float", "int8"])
def test_audio_embedder_equals_the_python_runtime(tiny_tagger, clips, kind):
  """As the classifier test: float equal, int8 as close to the float file as LiteRT's int8
  (embeddings compared on the scale of the float file's)."""
  out, _ = tiny_tagger
  tagger, exact = runtime.Tagger(out, model=kind), runtime.Tagger(out, model="float")
  embedder = audio_embedder.AudioEmbedder.create_from_options(
      audio_embedder.AudioEmbedderOptions(**_options(os.path.join(out, TFLITES[kind]))))
  errors = {"mediapipe": [], "litert": [], "scale": []}
  for clip in clips[-2:]:
    results = embedder.embed(audio_data.AudioData.create_from_array(clip, 16000))
    for result, window in zip(results, _windows(clip, tagger.window)):
      heads = {e.head_name: e.embedding for e in result.embeddings}
      got, want = heads["embeddings"], tagger.patch_outputs(window)["embeddings"]
      assert got.shape == want.shape
      if kind == "float":
        assert np.abs(got - want).max() <= FLOAT_TOLERANCE
      else:
        reference = exact.patch_outputs(window)["embeddings"]
        scale = max(float(np.abs(reference).max()), 1.0)
        assert np.abs(got - want).max() <= INT8_KERNEL_SPREAD * scale
        errors["mediapipe"].append(np.abs(got - reference).mean())
        errors["litert"].append(np.abs(want - reference).mean())
        errors["scale"].append(np.abs(reference).mean())
  if kind == "int8":
    assert len(errors["litert"]) >= 4
    assert (np.mean(errors["mediapipe"])
            <= 1.25 * np.mean(errors["litert"]) + 1e-3 * np.mean(errors["scale"]))
  embedder.close()


def _mp_metadata(model_bytes):
  """The TFLITE_METADATA buffer parsed by MediaPipe's generated schema code."""
  from ai_edge_litert import schema_py_generated as tflite_schema
  model = tflite_schema.Model.GetRootAsModel(model_bytes, 0)
  entries = {model.Metadata(i).Name().decode(): model.Metadata(i).Buffer()
             for i in range(model.MetadataLength())}
  buf = model.Buffers(entries["TFLITE_METADATA"]).DataAsNumpy().tobytes()
  assert mp_schema.ModelMetadata.ModelMetadataBufferHasIdentifier(buf, 0)
  return mp_schema.ModelMetadataT.InitFromObj(mp_schema.ModelMetadata.GetRootAs(buf, 0))


@pytest.mark.parametrize("which", TAGGERS)
@pytest.mark.parametrize("kind", ["float", "int8"])
def test_metadata_round_trips(request, which, tiny_examples, kind):
  out, _ = request.getfixturevalue(which)
  with open(os.path.join(out, TFLITES[kind]), "rb") as f:
    model_bytes = f.read()
  with open(os.path.join(out, exporting.METADATA)) as f:
    metadata = json.load(f)
  names = read_class_map(os.path.join(tiny_examples[0], "class_map.csv")).display_names
  # The start a fine-tuned student came from travels with it (None from random weights).
  assert (metadata["init_from"] or {}).get("kind") == (
      "yamnet" if which == "fine_tuned_tagger" else None)
  meta = _mp_metadata(model_bytes)
  assert meta.name.decode() == f"tf_skeptical {metadata['model']}"
  assert meta.license.decode() == "Apache-2.0" and meta.minParserVersion.decode() == "1.3.0"
  assert meta.version.decode().endswith(metadata["model_id"])
  (subgraph,) = meta.subgraphMetadata
  (audio,) = subgraph.inputTensorMetadata
  assert audio.content.contentPropertiesType == mp_schema.ContentProperties.AudioProperties
  assert (audio.content.contentProperties.sampleRate,
          audio.content.contentProperties.channels) == (16000, 1)
  scores, embeddings = subgraph.outputTensorMetadata  # the subgraph's output order
  assert (scores.name.decode(), embeddings.name.decode()) == ("scores", "embeddings")
  (labels,) = scores.associatedFiles
  assert labels.type == mp_schema.AssociatedFileType.TENSOR_AXIS_LABELS
  assert embeddings.content.contentPropertiesType == \
      mp_schema.ContentProperties.FeatureProperties
  with zipfile.ZipFile(io.BytesIO(model_bytes)) as z:
    assert all(i.compress_type == zipfile.ZIP_STORED for i in z.infolist())
    assert z.read(labels.name.decode()).decode().splitlines() == list(names)
    (settings,) = meta.associatedFiles
    assert json.loads(z.read(settings.name.decode())) == metadata
  with open(os.path.join(out, exporting.SANITY)) as f:
    assert json.load(f)["tflite_metadata"][TFLITES[kind]]["outputs"] == ["scores",
                                                                         "embeddings"]


def test_metadata_check_names_what_differs(tiny_tagger):
  """Written again over itself the metadata stays one; a damaged label file is caught."""
  out, _ = tiny_tagger
  with open(os.path.join(out, exporting.FLOAT_TFLITE), "rb") as f:
    model_bytes = f.read()
  meta = tflite_metadata.TaggerMetadata(
      name="n", description="d", version="v", author="a", license="l", sample_rate=16000,
      channels=1, window_samples=15600, labels=tuple("abcdef"), embedding_dims=256,
      settings={})
  again = tflite_metadata.with_metadata(model_bytes, meta)
  tflite_metadata.check_metadata(again, meta)
  from ai_edge_litert import schema_py_generated as tflite_schema
  model = tflite_schema.Model.GetRootAsModel(again, 0)
  entries = [model.Metadata(i).Name() for i in range(model.MetadataLength())]
  assert entries.count(b"TFLITE_METADATA") == 1 and _mp_metadata(again).name == b"n"
  wrong = tflite_metadata.TaggerMetadata(**{**meta.__dict__, "labels": tuple("abcdeg"),
                                            "sample_rate": 8000})
  with pytest.raises(RuntimeError, match="AudioProperties.*class_labels.txt"):
    tflite_metadata.check_metadata(again, wrong)
  with pytest.raises(ValueError, match="single lines"):
    tflite_metadata.TaggerMetadata(**{**meta.__dict__, "labels": ("a", "b\nc")})
