"""`export`: a trained tagger -> SavedModel + float and int8 TFLite, with the frontend inside.

The export directory (written under a temporary name, renamed when complete and checked):
  saved_model/         serving_default: float32 16 kHz mono waveform of any length ->
                       per-patch `scores` [N, C], `embeddings` [N, D], `log_mel` [T, 64];
                       `patch`: one 15600-sample window -> `scores` [C], `embeddings` [D];
                       `class_map_path`: () -> the path of assets/class_map.csv
  tagger_float.tflite  the `patch` signature, builtin ops only
  tagger_int8.tflite   the same, post-training quantized, calibrated on training audio
  class_map.csv, metadata.json, sanity.json

Patch i of a waveform is samples [7680 i, 7680 i + 15600): the SavedModel's framing and the
TFLite runtime's (export/tagger.py) are the same. Waveforms shorter than one window are
zero-padded to one. Keras 3 models convert to TFLite only through a SavedModel written by
keras.export.ExportArchive (TFLiteConverter.from_keras_model does not support Keras 3).
"""

import dataclasses
import os
import random
from typing import Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

import tf_skeptical
from tf_skeptical import files, frontend, models
from tf_skeptical.params import DEFAULT_FRONTEND as P

SAVED_MODEL = "saved_model"
FLOAT_TFLITE = "tagger_float.tflite"
INT8_TFLITE = "tagger_int8.tflite"
METADATA = "metadata.json"
SANITY = "sanity.json"
CLASS_MAP = "class_map.csv"
WINDOW = P.min_patch_samples  # 15600 samples: one 96-frame patch
HOP = P.patch_hop_frames * P.hop_samples  # 7680 samples
NETWORK = "network"  # the exported Keras network's name: its TFLite tensors carry it


@dataclasses.dataclass(frozen=True)
class ExportConfig:
  calibration_windows: int = 300
  # Training clips held out of calibration to check the int8 model on (at most 1 in 5).
  check_clips: int = 16
  # Max |scores| difference Keras vs SavedModel vs TFLite on the sanity signals. A loud tone
  # gives large log-mel values, where TF's and TFLite's float32 matmuls (different summation
  # orders) differ by ~1e-4; a broken conversion differs by far more. Tests hold random
  # waveforms to 1e-4.
  parity_tolerance: float = 5e-4
  # Mean |scores| difference int8 vs float on the held-out clips: a guard against a broken
  # quantization (0.15 and more), not the accuracy target (bench/export.py measures that:
  # 0.006 on the demo's student, 0.03-0.05 on the tests' 48-clip model). Synthetic signals
  # are not held to it: white noise lies outside the calibrated ranges.
  int8_tolerance: float = 0.1
  seed: int = 0


def _scores_and_embeddings(model: keras.Model) -> keras.Model:
  # outputs[0]: models saved with a one-element output list would otherwise nest it.
  return keras.Model(model.inputs, [model.outputs[0],
                                    model.get_layer(models.EMBEDDING_LAYER).output],
                     name=NETWORK)


def keras_patch_scores(model: keras.Model, waveform: np.ndarray) -> np.ndarray:
  """The reference: the Keras model on the frontend's patches, outside any export."""
  w = frontend.pad_for_one_patch(tf.constant(waveform, tf.float32))
  patches = frontend.patches(frontend.log_mel(w))
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


def calibration_audio(train_examples: str, max_files: int = 1000, seed: int = 0) -> list:
  """Up to max_files audio files of the clips a train examples directory was prepared from
  (its manifest names the segments CSV and the audio folder), in random order; [] for
  examples prepared from embeddings. Only train clips: eval audio often shares the folder."""
  from tf_skeptical import examples
  from tf_skeptical.prepare import audio_files
  from tf_skeptical.segments import read_segments
  info = examples.read_info(train_examples)
  audio_dir, source = info.extra.get("audio_dir"), info.extra.get("source")
  if not audio_dir or not source:
    return []
  segments, _ = read_segments(source, info.class_map, skip_bad_rows=True)
  ids = [s.clip_id for s in segments]
  random.Random(seed).shuffle(ids)
  audio = audio_files(audio_dir)
  return [audio[i] for i in ids if i in audio][:max_files]


def split_audio(paths: Sequence[str], cfg: ExportConfig):
  """Shuffled training clips -> (calibration clips, held-out check clips). With under 5
  clips nothing is held out and the check reuses the calibration clips."""
  if not paths:
    raise ValueError("int8 calibration needs training audio (--calibration_audio)")
  order = list(paths)
  random.Random(cfg.seed).shuffle(order)
  held_out = min(cfg.check_clips, len(order) // 5)
  return order[held_out:], (order[:held_out] or order)


def clips(paths: Sequence[str]):
  """Decoded 16 kHz mono waveforms of audio files, one at a time."""
  from tf_skeptical import audio_io
  for path in paths:
    yield audio_io.load_clip(tf.constant(path)).numpy()


def _representative(paths: Sequence[str], count: int):
  """`count` windows (every window of a clip, clips in the given order, cycling), for int8
  calibration."""
  def gen():
    made = 0
    while True:
      for w in (w for clip in clips(paths) for w in windows(clip)):
        yield [w]
        made += 1
        if made == count:
          return
  return gen


def _write_saved_model(model: keras.Model, path: str, class_map_csv: str) -> None:
  net = _scores_and_embeddings(model)

  def serve(waveform):
    log_mel = frontend.log_mel(frontend.pad_for_one_patch(waveform))
    logits, embeddings = net(frontend.patches(log_mel), training=False)
    return {"scores": tf.sigmoid(logits), "embeddings": embeddings, "log_mel": log_mel}

  def patch(waveform):
    log_mel = frontend.log_mel(waveform)
    logits, embeddings = net(log_mel[None], training=False)
    return {"scores": tf.sigmoid(logits)[0], "embeddings": embeddings[0]}

  archive = keras.export.ExportArchive()
  archive.track(net)
  # The class map as a tracked asset (YAMNet's convention): saved into assets/, and its path
  # resolves wherever the SavedModel moves. ExportArchive.track() keeps only lookup-table
  # resources, so the asset goes on the object the archive saves.
  root = archive._tf_trackable
  root.class_map = tf.saved_model.Asset(class_map_csv)
  archive.add_endpoint("class_map_path", lambda: {"class_map_path": root.class_map.asset_path},
                       input_signature=[])
  archive.add_endpoint("serving_default", serve,
                       input_signature=[tf.TensorSpec([None], tf.float32, name="waveform")])
  archive.add_endpoint("patch", patch,
                       input_signature=[tf.TensorSpec([WINDOW], tf.float32, name="waveform")])
  archive.write_out(path, verbose=False)


def _frontend_and_output_nodes(float_tflite: bytes) -> list:
  """Output tensor names of every op outside the Keras network: the int8 model keeps them
  float. Quantizing the waveform, the FFT or the log lost quiet sounds and the final sigmoid
  rounds scores to 1/256 (on the built-in eval clips, full int8 agreed with float on 51% of
  top-5 classes)."""
  from ai_edge_litert.interpreter import Interpreter
  interpreter = Interpreter(model_content=float_tflite)
  names = {t["index"]: t["name"] for t in interpreter.get_tensor_details()}
  return [names[i] for op in interpreter._get_ops_details() for i in op["outputs"]
          if not names[i].startswith(NETWORK)]


def _converter(saved_model: str):
  converter = tf.lite.TFLiteConverter.from_saved_model(saved_model, signature_keys=["patch"])
  converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]  # no Flex ops
  return converter


def _convert_int8(saved_model: str, float_model: bytes, representative) -> bytes:
  """The float model names the ops to keep float (see _frontend_and_output_nodes)."""
  converter = _converter(saved_model)
  converter.optimizations = [tf.lite.Optimize.DEFAULT]
  converter.representative_dataset = representative
  debugger = tf.lite.experimental.QuantizationDebugger(
      converter=converter, debug_dataset=representative,
      debug_options=tf.lite.experimental.QuantizationDebugOptions(
          denylisted_nodes=_frontend_and_output_nodes(float_model)))
  return debugger.get_nondebug_quantized_model()


def tflite_scores(model_path: str, waveform: np.ndarray, threads: int = 1) -> np.ndarray:
  """Per-patch scores of a TFLite tagger (ai-edge-litert), for checks and tfsk_tag."""
  from ai_edge_litert.interpreter import Interpreter
  runner = Interpreter(model_path=model_path, num_threads=threads).get_signature_runner("patch")
  return np.stack([runner(waveform=w)["scores"] for w in windows(waveform)])


def _int8_against_float(export_dir: str, signal: np.ndarray) -> tuple:
  flt = tflite_scores(os.path.join(export_dir, FLOAT_TFLITE), signal)
  return flt, tflite_scores(os.path.join(export_dir, INT8_TFLITE), signal)


def agreement(float_scores: np.ndarray, int8_scores: np.ndarray) -> dict:
  """[patches, C] float and int8 scores -> mean |difference|, and top-5 agreement: the
  share of the float model's top 5 classes that int8 also ranks in its top 5, ties included
  (int8 scores are discrete: about 1 patch in 6 has a tie at 5th place, whose order argsort
  would settle by class index)."""
  k = min(5, float_scores.shape[1])
  float_top = np.argsort(-float_scores, axis=1)[:, :k]
  int8_kth = np.sort(int8_scores, axis=1)[:, -k]
  shared = (np.take_along_axis(int8_scores, float_top, axis=1) >= int8_kth[:, None]).mean(1)
  return dict(patches=int(float_scores.shape[0]),
              mean_abs_difference=float(np.abs(int8_scores - float_scores).mean()),
              top5_agreement=float(shared.mean()))


def int8_agreement(export_dir: str, waveforms) -> dict:
  """`agreement` of an export directory's int8 and float TFLite models over waveforms."""
  flt, q = (np.concatenate(a) for a in zip(*(_int8_against_float(export_dir, w)
                                              for w in waveforms)))
  return agreement(flt, q)


def check(export_dir: str, model: keras.Model, check_files: Sequence[str],
          cfg: ExportConfig) -> dict:
  """Sanity and parity checks on every artifact; raises if any fails.

  Silence, noise and a tone: Keras = SavedModel = float TFLite, scores finite in [0, 1].
  Held-out training clips: int8 close to float on the audio it was calibrated for.
  """
  loaded = tf.saved_model.load(os.path.join(export_dir, SAVED_MODEL))
  report, failures = {}, []
  for name, signal in sanity_signals().items():
    ref = keras_patch_scores(model, signal)
    saved = loaded.signatures["serving_default"](waveform=tf.constant(signal))["scores"].numpy()
    flt, q = _int8_against_float(export_dir, signal)
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
  held_out = int8_agreement(export_dir, clips(check_files))
  report["held_out_clips"] = dict(held_out, clips=len(check_files))
  diff = held_out["mean_abs_difference"]
  if diff > cfg.int8_tolerance:
    failures.append(f"{len(check_files)} held-out training clips: int8 vs float mean "
                    f"difference {diff:.3f} > {cfg.int8_tolerance}")
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
  calibration, check_files = split_audio(calibration_files, cfg)
  tmp = files.staging_directory(out_dir)  # built and checked locally, then published
  files.copy(class_map_csv, os.path.join(tmp, CLASS_MAP))
  _write_saved_model(model, os.path.join(tmp, SAVED_MODEL), os.path.join(tmp, CLASS_MAP))
  float_model = _converter(os.path.join(tmp, SAVED_MODEL)).convert()
  files.write_bytes(os.path.join(tmp, FLOAT_TFLITE), float_model)
  files.write_bytes(os.path.join(tmp, INT8_TFLITE), _convert_int8(
      os.path.join(tmp, SAVED_MODEL), float_model,
      _representative(calibration, cfg.calibration_windows)))
  metadata = dict(
      sample_rate=P.sample_rate, window_samples=WINDOW, hop_samples=HOP,
      patch_frames=P.patch_frames, mel_bands=P.mel_bands, num_classes=len(class_map),
      embedding_dims=int(model.get_layer(models.EMBEDDING_LAYER).output.shape[-1]),
      model=model_name or model.name, source=files.absolute(model_path),
      files=dict(saved_model=SAVED_MODEL, tflite_float=FLOAT_TFLITE, tflite_int8=INT8_TFLITE,
                 class_map=CLASS_MAP),
      versions=dict(tf_skeptical=tf_skeptical.__version__, tensorflow=tf.__version__,
                    keras=keras.__version__),
      frontend=dataclasses.asdict(P))
  report = check(tmp, model, check_files, cfg)
  files.write_json(os.path.join(tmp, SANITY), report)
  files.write_json(os.path.join(tmp, METADATA), metadata)  # last: the export is complete
  files.publish_directory(tmp, out_dir, last=METADATA)
  return metadata
