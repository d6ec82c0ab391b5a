"""`export`: a trained tagger -> SavedModel + float and int8 TFLite, with the frontend inside.

The export directory (written under a temporary name, renamed when complete and checked):
  saved_model/         serving_default: float32 mono waveform of any length at the
                       frontend's rate -> per-patch `scores` [N, C], `embeddings` [N, D],
                       `log_mel` [T, mel bands];
                       `patch`: one window (YAMNet: 15600 samples) -> `scores` [C],
                       `embeddings` [D];
                       `class_map_path`: () -> the path of assets/class_map.csv;
                       `log_mel_patches`: [N, patch frames, mel bands] log-mel patches
                       (the examples' features) -> `scores` [N, C], so that the tagger can
                       score a train set's examples as the skeptical teacher
                       (pretrained.exported_teacher)
  tagger_float.tflite  the `patch` signature, builtin ops only, with TFLite Model Metadata
                       (tflite_metadata.py) so that MediaPipe's audio tasks load it
  tagger_int8.tflite   the same, post-training quantized, calibrated on training audio
  class_map.csv, metadata.json, sanity.json

The frontend is the one the model was trained on (its recorded examples.Features), and
metadata.json lists it. Patch i of a waveform is samples [hop i, hop i + window) (YAMNet:
hop 7680, window 15600): the SavedModel's framing and the TFLite runtime's
(export/tagger.py) are the same. Waveforms shorter than one window are zero-padded to one.
Keras 3 models convert to TFLite only through a SavedModel
(TFLiteConverter.from_keras_model does not support Keras 3).
"""

import dataclasses
import os
import random
import re
from typing import Optional, Sequence, Tuple

import keras
import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

import tf_skeptical
from tf_skeptical import errors
from tf_skeptical import inference, models, taggers, tflite_metadata
from tf_skeptical.data import examples, frontend
from tf_skeptical.data.class_map import CLASS_MAP_FILE, read_class_map
from tf_skeptical.data.params import FrontendParams
from tf_skeptical.util import files, native_output, output_paths, provenance

SAVED_MODEL = "saved_model"
FLOAT_TFLITE = "tagger_float.tflite"
INT8_TFLITE = "tagger_int8.tflite"
METADATA = inference.EXPORT_METADATA
PATCHES_SIGNATURE = "log_mel_patches"
OUTPUT = output_paths.OutputKind("tagger directory", (METADATA,))
SANITY = "sanity.json"
CLASS_MAP = CLASS_MAP_FILE
NETWORK = "network"  # the exported Keras network's name: its TFLite tensors carry it


@dataclasses.dataclass(frozen=True)
class ExportConfig:
  calibration_windows: int = 300
  # Network layers the int8 model keeps float (layer-name prefixes; YAMNet's MobileNetV1
  # names them add_channel, layer1, layer2_depthwise, ...): the log-mel input and the first
  # layers, where rounding to 8 bits loses detail that every later layer carries on. On the
  # tests' demo-size model over three training seeds, top-5 agreement with float rose from
  # 90.5-93.9% to 94.7-96.5% and the mean score difference fell from 0.009-0.013 to
  # 0.006-0.007, for 0.2% more bytes (docs/design.md). Empty: every network layer int8.
  float_layers: Tuple[str, ...] = ("add_channel", "layer1_", "layer2_", "layer3_")
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
  # Written into the TFLite Model Metadata, where app developers and model stores read them.
  author: str = "tf_skeptical"
  license: str = "Apache-2.0"


def _scores_and_embeddings(model: keras.Model) -> keras.Model:
  # outputs[0]: models saved with a one-element output list would otherwise nest it.
  return keras.Model(model.inputs, [model.outputs[0],
                                    model.get_layer(models.EMBEDDING_LAYER).output],
                     name=NETWORK)


def frontend_of(model: keras.Model, name: str) -> FrontendParams:
  """The log-mel frontend a model was trained on; export needs one."""
  features = inference.features_of(model)
  if features.kind != examples.LOG_MEL:
    raise errors.BadValue(f"{name}: export needs a model trained on log-mel patches, this one "
                     f"was trained on {features.kind} features")
  return features.frontend


def sanity_signals(params: FrontendParams, seconds: float = 2.0) -> dict:
  """Silence, white noise and a 1 kHz tone (YAMNet-style golden inputs)."""
  n = int(seconds * params.sample_rate)
  rng = np.random.default_rng(0)
  t = np.arange(n) / params.sample_rate
  return {"silence": np.zeros(n, np.float32),
          "noise": (0.1 * rng.standard_normal(n)).astype(np.float32),
          "tone_1khz": (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)}


def split_audio(paths: Sequence[str], cfg: ExportConfig):
  """Shuffled training clips -> (calibration clips, held-out check clips). With under 5
  clips nothing is held out and the check reuses the calibration clips."""
  if not paths:
    raise errors.BadValue("int8 calibration needs training audio (--calibration_audio)")
  order = list(paths)
  random.Random(cfg.seed).shuffle(order)
  held_out = min(cfg.check_clips, len(order) // 5)
  return order[held_out:], (order[:held_out] or order)


def _representative(paths: Sequence[str], count: int, params: FrontendParams):
  """`count` windows (every window of a clip, clips in the given order, cycling), for int8
  calibration."""
  window, hop = params.min_patch_samples, params.patch_hop_samples

  def gen():
    made = 0
    while True:
      for w in (w for clip in taggers.clips(paths, params)
                for w in taggers.windows(clip, window, hop)):
        yield [w]
        made += 1
        if made == count:
          return
  return gen


class _Tagger(tf.Module):
  """What the SavedModel holds: the network, its frontend and the class map (an asset, as
  in YAMNet, so its path resolves wherever the SavedModel moves)."""

  def __init__(self, net: keras.Model, params: FrontendParams, class_map_csv: str):
    super().__init__()
    self.net, self.params = net, params
    # The tf.Variables behind the Keras variables, tracked so that the SavedModel's
    # functions capture them as resources the TFLite converter can freeze.
    self.network_variables = [v.value for v in net.variables]
    self.class_map = tf.saved_model.Asset(class_map_csv)

  def serve(self, waveform):
    log_mel = frontend.log_mel(frontend.pad_for_one_patch(waveform, self.params), self.params)
    logits, embeddings = self.net(frontend.patches(log_mel, self.params), training=False)
    return {"scores": tf.sigmoid(logits), "embeddings": embeddings, "log_mel": log_mel}

  def patch(self, waveform):
    log_mel = frontend.log_mel(waveform, self.params)
    logits, embeddings = self.net(log_mel[None], training=False)
    return {"scores": tf.sigmoid(logits)[0], "embeddings": embeddings[0]}

  def class_map_path(self):
    return {"class_map_path": self.class_map.asset_path}

  def log_mel_patches(self, patches):
    logits, _ = self.net(patches, training=False)
    return {"scores": tf.sigmoid(logits)}


def _write_saved_model(model: keras.Model, params: FrontendParams, path: str,
                       class_map_csv: str) -> None:
  tagger = _Tagger(_scores_and_embeddings(model), params, class_map_csv)
  signatures = {
      "serving_default": tf.function(tagger.serve, input_signature=[
          tf.TensorSpec([None], tf.float32, name="waveform")]),
      "patch": tf.function(tagger.patch, input_signature=[
          tf.TensorSpec([params.min_patch_samples], tf.float32, name="waveform")]),
      "class_map_path": tf.function(tagger.class_map_path, input_signature=[]),
      PATCHES_SIGNATURE: tf.function(tagger.log_mel_patches, input_signature=[
          tf.TensorSpec([None, params.patch_frames, params.mel_bands], tf.float32,
                        name="patches")]),
  }
  tf.saved_model.save(tagger, path, signatures=signatures)


def _float_nodes(float_tflite: bytes, float_layers: Sequence[str]) -> list:
  """Output tensor names of the ops the int8 model keeps float: every op outside the Keras
  network, and the network's `float_layers` (ExportConfig). Quantizing the waveform, the
  FFT or the log lost quiet sounds and the final sigmoid rounds scores to 1/256 (on the
  built-in eval clips, full int8 agreed with float on 51% of top-5 classes). Names that are
  no op's output (inputs, constants) match no node and change nothing. A fused op's name
  lists its parts, `;`-separated; a part `network*/<layer>...` names the layer."""
  in_layers = re.compile(r"(^|;)%s[^/;]*/(%s)" % (
      NETWORK, "|".join(re.escape(layer) for layer in float_layers) or "(?!)"))
  interpreter = Interpreter(model_content=float_tflite)
  return [t["name"] for t in interpreter.get_tensor_details()
          if t["name"] and (not t["name"].startswith(NETWORK) or in_layers.search(t["name"]))]


def _converter(saved_model: str):
  converter = tf.lite.TFLiteConverter.from_saved_model(saved_model, signature_keys=["patch"])
  converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]  # no Flex ops
  return converter


def _convert_int8(saved_model: str, float_model: bytes, representative,
                  float_layers: Sequence[str]) -> bytes:
  """The float model names the ops to keep float (see _float_nodes)."""
  converter = _converter(saved_model)
  converter.optimizations = [tf.lite.Optimize.DEFAULT]
  converter.representative_dataset = representative
  debugger = tf.lite.experimental.QuantizationDebugger(
      converter=converter, debug_dataset=representative,
      debug_options=tf.lite.experimental.QuantizationDebugOptions(
          denylisted_nodes=_float_nodes(float_model, float_layers)))
  return debugger.get_nondebug_quantized_model()


def _int8_against_float(export_dir: str, signal: np.ndarray, hop: int) -> tuple:
  flt = taggers.tflite_scores(os.path.join(export_dir, FLOAT_TFLITE), signal, hop)
  return flt, taggers.tflite_scores(os.path.join(export_dir, INT8_TFLITE), signal, hop)


def int8_agreement(export_dir: str, waveforms, hop: int) -> dict:
  """`agreement` of an export directory's int8 and float TFLite models over waveforms."""
  flt, q = (np.concatenate(a) for a in zip(*(_int8_against_float(export_dir, w, hop)
                                              for w in waveforms)))
  return taggers.agreement(flt, q)


def check(export_dir: str, model: keras.Model, check_files: Sequence[str],
          cfg: ExportConfig, tflite_meta: tflite_metadata.TaggerMetadata) -> dict:
  """Sanity and parity checks on every artifact; raises if any fails.

  Both TFLite files: their Model Metadata read back equals what was written.
  Silence, noise and a tone: Keras = SavedModel = float TFLite, scores finite in [0, 1].
  Held-out training clips: int8 close to float on the audio it was calibrated for.
  """
  report = {"tflite_metadata": {
      name: tflite_metadata.check_metadata(files.read_bytes(os.path.join(export_dir, name)),
                                           tflite_meta)
      for name in (FLOAT_TFLITE, INT8_TFLITE)}}
  loaded = tf.saved_model.load(os.path.join(export_dir, SAVED_MODEL))
  params = inference.features_of(model).frontend
  hop = params.patch_hop_samples
  failures = []
  for name, signal in sanity_signals(params).items():
    ref = inference.waveform_patch_scores(model, signal)
    saved = loaded.signatures["serving_default"](waveform=tf.constant(signal))["scores"].numpy()
    flt, q = _int8_against_float(export_dir, signal, hop)
    if not saved.shape == flt.shape == q.shape == ref.shape:
      raise errors.Failed(f"{name}: score shapes differ: Keras {ref.shape}, SavedModel "
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
  held_out = int8_agreement(export_dir, taggers.clips(check_files, params), hop)
  report["held_out_clips"] = dict(held_out, clips=len(check_files))
  diff = held_out["mean_abs_difference"]
  if diff > cfg.int8_tolerance:
    failures.append(f"{len(check_files)} held-out training clips: int8 vs float mean "
                    f"difference {diff:.3f} > {cfg.int8_tolerance}")
  report["failures"] = failures
  if failures:
    raise errors.Failed("export checks failed: " + "; ".join(failures))
  return report


def tflite_model_metadata(metadata: dict, class_map, cfg: ExportConfig
                          ) -> tflite_metadata.TaggerMetadata:
  """What the TFLite files say about themselves (for MediaPipe and app developers): the
  export's metadata.json packed whole, and the class display names as the scores' labels
  (the mid where a class has no display name)."""
  seconds = metadata["window_samples"] / metadata["sample_rate"]
  return tflite_metadata.TaggerMetadata(
      name=f"tf_skeptical {metadata['model']}",
      description=(f"Sound event tagger for {metadata['num_classes']} classes, trained with "
                   f"tf_skeptical (skeptical teacher-student loss masking). Input: "
                   f"{seconds:.3f} s of mono audio at {metadata['sample_rate']} Hz, "
                   f"float32 in [-1, 1]; outputs: per-class sigmoid scores and a "
                   f"{metadata['embedding_dims']}-d embedding."),
      version=f"{tf_skeptical.__version__}+{metadata['model_id']}",
      author=cfg.author, license=cfg.license, sample_rate=metadata["sample_rate"], channels=1,
      window_samples=metadata["window_samples"],
      labels=tuple(name or mid for mid, name in zip(class_map.mids, class_map.display_names)),
      embedding_dims=metadata["embedding_dims"], settings=metadata)


def _init_from(model_path: str) -> Optional[dict]:
  """What the exported run started from (pretrained.Start, from its result.json), if it
  started from a pretrained tagger."""
  result = os.path.join(model_path, "result.json")
  return files.read_json(result).get("init_from") if files.exists(result) else None


def export(model_path: str, class_map_csv: str, out_dir: str, *,
           calibration_files: Sequence[str], cfg: ExportConfig = ExportConfig(),
           model_name: Optional[str] = None) -> dict:
  """Writes the export directory; returns its metadata."""
  output_paths.check_directory(out_dir, OUTPUT)
  model = inference.load_model(model_path)
  params = frontend_of(model, model_path)
  class_map = read_class_map(class_map_csv)
  inference.check_class_map(model, model_path, provenance.class_map_id(class_map.mids),
                            class_map_csv)
  if model.output_shape[-1] != len(class_map):
    raise errors.BadValue(f"{model_path} has {model.output_shape[-1]} outputs but {class_map_csv} "
                     f"has {len(class_map)} classes")
  calibration, check_files = split_audio(calibration_files, cfg)
  metadata = dict(
      sample_rate=params.sample_rate, window_samples=params.min_patch_samples,
      hop_samples=params.patch_hop_samples, patch_frames=params.patch_frames,
      mel_bands=params.mel_bands, num_classes=len(class_map),
      embedding_dims=int(model.get_layer(models.EMBEDDING_LAYER).output.shape[-1]),
      model=model_name or model.name, source=files.absolute(model_path),
      model_id=inference.model_id(model_path),
      init_from=_init_from(model_path),
      class_map_id=provenance.class_map_id(class_map.mids),
      files=dict(saved_model=SAVED_MODEL, tflite_float=FLOAT_TFLITE, tflite_int8=INT8_TFLITE,
                 class_map=CLASS_MAP),
      versions=dict(tf_skeptical=tf_skeptical.__version__, tensorflow=tf.__version__,
                    keras=keras.__version__),
      frontend=dataclasses.asdict(params),
      int8=dict(calibration_windows=cfg.calibration_windows,
                float_layers=list(cfg.float_layers)))
  tflite_meta = tflite_model_metadata(metadata, class_map, cfg)
  # Built and checked locally, then published; removed if anything fails.
  with files.output_lock(out_dir), files.staged(out_dir) as tmp:
    files.copy(class_map_csv, os.path.join(tmp, CLASS_MAP))
    _write_saved_model(model, params, os.path.join(tmp, SAVED_MODEL),
                       os.path.join(tmp, CLASS_MAP))
    with native_output.held_native_output():  # the converter's C++ progress lines
      float_model = _converter(os.path.join(tmp, SAVED_MODEL)).convert()
      int8_model = _convert_int8(os.path.join(tmp, SAVED_MODEL), float_model,
                                 _representative(calibration, cfg.calibration_windows, params),
                                 cfg.float_layers)
    for name, tflite in ((FLOAT_TFLITE, float_model), (INT8_TFLITE, int8_model)):
      files.write_bytes(os.path.join(tmp, name),
                        tflite_metadata.with_metadata(tflite, tflite_meta))
    report = check(tmp, model, check_files, cfg, tflite_meta)
    files.write_json(os.path.join(tmp, SANITY), report)
    files.write_json(os.path.join(tmp, METADATA), metadata)  # last: the export is complete
    files.publish_directory(tmp, out_dir, last=METADATA)
  return metadata
