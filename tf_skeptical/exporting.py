"""`export`: a trained tagger -> SavedModel + float and int8 TFLite, with the frontend inside.

The export directory (written under a temporary name, renamed when complete and checked):
  saved_model/         serving_default: float32 16 kHz mono waveform of any length ->
                       per-patch `scores` [N, C], `embeddings` [N, D], `log_mel` [T, 64];
                       `patch`: one 15600-sample window -> `scores` [C], `embeddings` [D];
                       assets/class_map.csv
  tagger_float.tflite  the `patch` signature, builtin ops only
  tagger_int8.tflite   the same, post-training quantized, calibrated on training audio
  class_map.csv, metadata.json, sanity.json

Patch i of a waveform is samples [7680 i, 7680 i + 15600): the SavedModel's framing and the
TFLite runtime's (export/tagger.py) are the same. Waveforms shorter than one window are
zero-padded to one. Keras 3 models convert to TFLite only through a SavedModel written by
keras.export.ExportArchive (TFLiteConverter.from_keras_model does not support Keras 3).
"""

import dataclasses
import glob
import json
import os
import random
import shutil
from typing import Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

import tf_skeptical
from tf_skeptical import frontend, models
from tf_skeptical.params import DEFAULT_FRONTEND as P

SAVED_MODEL = "saved_model"
FLOAT_TFLITE = "tagger_float.tflite"
INT8_TFLITE = "tagger_int8.tflite"
METADATA = "metadata.json"
SANITY = "sanity.json"
CLASS_MAP = "class_map.csv"
WINDOW = P.min_patch_samples  # 15600 samples: one 96-frame patch
HOP = P.patch_hop_frames * P.hop_samples  # 7680 samples


@dataclasses.dataclass(frozen=True)
class ExportConfig:
  calibration_windows: int = 300
  # Max |scores| difference Keras vs SavedModel vs TFLite on the sanity signals. A loud tone
  # gives large log-mel values, where TF's and TFLite's float32 matmuls (different summation
  # orders) differ by ~1e-4; a broken conversion differs by far more. Tests hold random
  # waveforms to 1e-4.
  parity_tolerance: float = 5e-4
  # Mean |scores| difference int8 vs float on the sanity signals: a guard against a broken
  # quantization, not the accuracy target (see tests and bench/export.py for that).
  int8_tolerance: float = 0.1
  seed: int = 0


def _scores_and_embeddings(model: keras.Model) -> keras.Model:
  # outputs[0]: models saved with a one-element output list would otherwise nest it.
  return keras.Model(model.inputs, [model.outputs[0],
                                    model.get_layer(models.EMBEDDING_LAYER).output])


def keras_patch_scores(model: keras.Model, waveform: np.ndarray) -> np.ndarray:
  """The reference: the Keras model on the frontend's patches, outside any export."""
  w = frontend.pad_for_one_patch(tf.constant(waveform, tf.float32))
  patches = frontend.patches(frontend.log_mel(w, tflite_compatible=True))
  logits, _ = _scores_and_embeddings(model)(patches, training=False)
  return tf.sigmoid(logits).numpy()


def sanity_signals(seconds: float = 2.0) -> dict:
  """Silence, white noise and a 1 kHz tone (YAMNet-style golden inputs)."""
  n = int(seconds * P.sample_rate)
  rng = np.random.default_rng(0)
  t = np.arange(n) / P.sample_rate
  return {"silence": np.zeros(n, np.float32),
          "noise": (0.1 * rng.standard_normal(n)).astype(np.float32),
          "tone_1khz": (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)}


def windows(waveform: np.ndarray) -> np.ndarray:
  """[N] waveform -> [patches, 15600] windows at the SavedModel's hop (padded if short)."""
  if len(waveform) < WINDOW:
    waveform = np.pad(waveform, (0, WINDOW - len(waveform)))
  starts = range(0, len(waveform) - WINDOW + 1, HOP)
  return np.stack([waveform[s:s + WINDOW] for s in starts]).astype(np.float32)


def calibration_audio(train_examples: str) -> list:
  """The audio files behind a train examples directory (from its manifest), if any."""
  with open(os.path.join(train_examples, "manifest.json")) as f:
    audio_dir = json.load(f).get("audio_dir")
  if not audio_dir:
    return []
  from tf_skeptical.audio_io import AUDIO_EXTENSIONS
  return sorted(p for ext in AUDIO_EXTENSIONS
                for p in glob.glob(os.path.join(audio_dir, "*" + ext)))


def _representative(files: Sequence[str], count: int, seed: int):
  """`count` windows from random training clips (every window of a clip, clips in random
  order), for int8 calibration."""
  from tf_skeptical import audio_io
  if not files:
    raise ValueError("no calibration audio")
  order = list(files)
  random.Random(seed).shuffle(order)

  def gen():
    made = 0
    while made < count:
      for path in order:
        for w in windows(audio_io.load_clip(tf.constant(path)).numpy()):
          yield [w]
          made += 1
          if made == count:
            return
  return gen


def _write_saved_model(model: keras.Model, path: str, class_map_csv: str) -> None:
  net = _scores_and_embeddings(model)

  def serve(waveform):
    log_mel = frontend.log_mel(frontend.pad_for_one_patch(waveform), tflite_compatible=True)
    logits, embeddings = net(frontend.patches(log_mel), training=False)
    return {"scores": tf.sigmoid(logits), "embeddings": embeddings, "log_mel": log_mel}

  def patch(waveform):
    log_mel = frontend.log_mel(waveform, tflite_compatible=True)
    logits, embeddings = net(log_mel[None], training=False)
    return {"scores": tf.sigmoid(logits)[0], "embeddings": embeddings[0]}

  archive = keras.export.ExportArchive()
  archive.track(net)
  archive.add_endpoint("serving_default", serve,
                       input_signature=[tf.TensorSpec([None], tf.float32, name="waveform")])
  archive.add_endpoint("patch", patch,
                       input_signature=[tf.TensorSpec([WINDOW], tf.float32, name="waveform")])
  archive.write_out(path, verbose=False)
  os.makedirs(os.path.join(path, "assets"), exist_ok=True)
  shutil.copy(class_map_csv, os.path.join(path, "assets", CLASS_MAP))


# In the int8 model only the convolutions (nearly all the multiplies) run in int8. The rest
# stays float: quantizing the waveform (before framing), the DFT or the scores' final slice
# loses quiet sounds and rounds scores to 1/256. On the built-in eval clips, full int8 agreed
# with float on 51% of top-5 classes.
FLOAT_OPS_IN_INT8 = ("FULLY_CONNECTED", "LOG", "SQRT", "MUL", "ADD", "MEAN", "LOGISTIC",
                     "GATHER", "RESHAPE", "STRIDED_SLICE")


def _convert(saved_model: str, representative=None) -> bytes:
  converter = tf.lite.TFLiteConverter.from_saved_model(saved_model, signature_keys=["patch"])
  converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]  # no Flex ops
  if representative is None:
    return converter.convert()
  converter.optimizations = [tf.lite.Optimize.DEFAULT]
  converter.representative_dataset = representative
  debugger = tf.lite.experimental.QuantizationDebugger(
      converter=converter, debug_dataset=representative,
      debug_options=tf.lite.experimental.QuantizationDebugOptions(
          denylisted_ops=list(FLOAT_OPS_IN_INT8)))
  return debugger.get_nondebug_quantized_model()


def tflite_scores(model_path: str, waveform: np.ndarray, threads: int = 1) -> np.ndarray:
  """Per-patch scores of a TFLite tagger (ai-edge-litert), for checks and tfsk_tag."""
  from ai_edge_litert.interpreter import Interpreter
  runner = Interpreter(model_path=model_path, num_threads=threads).get_signature_runner("patch")
  return np.stack([runner(waveform=w)["scores"] for w in windows(waveform)])


def check(export_dir: str, model: keras.Model, cfg: ExportConfig) -> dict:
  """Sanity and parity checks on every artifact; raises if any fails."""
  loaded = tf.saved_model.load(os.path.join(export_dir, SAVED_MODEL))
  report, failures = {}, []
  for name, signal in sanity_signals().items():
    ref = keras_patch_scores(model, signal)
    saved = loaded.signatures["serving_default"](waveform=tf.constant(signal))["scores"].numpy()
    flt = tflite_scores(os.path.join(export_dir, FLOAT_TFLITE), signal)
    q = tflite_scores(os.path.join(export_dir, INT8_TFLITE), signal)
    if not saved.shape == flt.shape == q.shape == ref.shape:
      raise RuntimeError(f"{name}: score shapes differ: Keras {ref.shape}, SavedModel "
                         f"{saved.shape}, TFLite {flt.shape}, int8 {q.shape}")
    r = dict(patches=int(saved.shape[0]),
             saved_model_vs_keras=float(np.abs(saved - ref).max()),
             tflite_float_vs_saved_model=float(np.abs(flt - saved).max()),
             tflite_int8_vs_float_mean=float(np.abs(q - flt).mean()),
             scores_in_0_1=bool(all(np.isfinite(a).all() and (a >= 0).all() and (a <= 1).all()
                                    for a in (saved, flt, q))),
             top_class_float=int(flt.mean(0).argmax()))
    report[name] = r
    if not r["scores_in_0_1"]:
      failures.append(f"{name}: scores outside [0, 1] or not finite")
    for key in ("saved_model_vs_keras", "tflite_float_vs_saved_model"):
      if r[key] > cfg.parity_tolerance:
        failures.append(f"{name}: {key} = {r[key]:.2e} > {cfg.parity_tolerance}")
    if r["tflite_int8_vs_float_mean"] > cfg.int8_tolerance:
      failures.append(f"{name}: int8 vs float mean difference {r['tflite_int8_vs_float_mean']:.3f}")
  report["failures"] = failures
  if failures:
    raise RuntimeError("export checks failed: " + "; ".join(failures))
  return report


def export(model_path: str, class_map_csv: str, out_dir: str, *,
           calibration_files: Sequence[str], cfg: ExportConfig = ExportConfig(),
           model_name: Optional[str] = None) -> dict:
  """Writes the export directory; returns its metadata."""
  from tf_skeptical import training
  from tf_skeptical.class_map import read_class_map
  model = training.load_model(model_path)
  if tuple(model.input_shape[1:]) != (P.patch_frames, P.mel_bands):
    raise ValueError(f"{model_path}: export needs a log-mel patch model (input "
                     f"{P.patch_frames}x{P.mel_bands}), got input {model.input_shape[1:]}")
  class_map = read_class_map(class_map_csv)
  if model.output_shape[-1] != len(class_map):
    raise ValueError(f"{model_path} has {model.output_shape[-1]} outputs but {class_map_csv} "
                     f"has {len(class_map)} classes")
  if not calibration_files:
    raise ValueError("int8 calibration needs training audio (--calibration_audio)")
  tmp = out_dir.rstrip("/") + ".tmp"
  shutil.rmtree(tmp, ignore_errors=True)
  os.makedirs(tmp)
  _write_saved_model(model, os.path.join(tmp, SAVED_MODEL), class_map_csv)
  with open(os.path.join(tmp, FLOAT_TFLITE), "wb") as f:
    f.write(_convert(os.path.join(tmp, SAVED_MODEL)))
  with open(os.path.join(tmp, INT8_TFLITE), "wb") as f:
    f.write(_convert(os.path.join(tmp, SAVED_MODEL),
                     _representative(calibration_files, cfg.calibration_windows, cfg.seed)))
  shutil.copy(class_map_csv, os.path.join(tmp, CLASS_MAP))
  metadata = dict(
      sample_rate=P.sample_rate, window_samples=WINDOW, hop_samples=HOP,
      patch_frames=P.patch_frames, mel_bands=P.mel_bands, num_classes=len(class_map),
      embedding_dims=int(model.get_layer(models.EMBEDDING_LAYER).output.shape[-1]),
      model=model_name or model.name, source=os.path.abspath(model_path),
      files=dict(saved_model=SAVED_MODEL, tflite_float=FLOAT_TFLITE, tflite_int8=INT8_TFLITE,
                 class_map=CLASS_MAP),
      versions=dict(tf_skeptical=tf_skeptical.__version__, tensorflow=tf.__version__,
                    keras=keras.__version__),
      frontend=dataclasses.asdict(P))
  with open(os.path.join(tmp, METADATA), "w") as f:
    json.dump(metadata, f, indent=2)
  report = check(tmp, model, cfg)
  with open(os.path.join(tmp, SANITY), "w") as f:
    json.dump(report, f, indent=2)
  shutil.rmtree(out_dir, ignore_errors=True)
  os.replace(tmp, out_dir)
  return metadata
