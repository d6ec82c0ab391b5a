"""The exported tagger: size, one-thread latency and real-time factor, int8 against float.

Exports MobileNetV1 at width 1.0 (untrained: size and speed do not depend on the weights),
calibrated on built-in audio, and measures in one run:
- model size int8 / float (target <= 0.3);
- per-patch latency on one CPU thread int8 / float (target <= 0.6), alternating the two;
- real-time factor: seconds of compute per second of audio (hop 0.48 s per patch).
With --trained=EXPORT_DIR (e.g. the demo's student, exported), also int8 against float on
held-out clips: mean |score difference| (target <= 0.02) and top-5 agreement (>= 0.9).
"""

import glob
import os
import statistics
import time

import numpy as np

import harness as common


def latency(model: str | bytes, windows: np.ndarray, signature: str = "patch") -> float:
  """Seconds per window of a TFLite model (a path or its bytes) on one thread."""
  from ai_edge_litert.interpreter import Interpreter
  source = dict(model_content=model) if isinstance(model, bytes) else dict(model_path=model)
  runner = Interpreter(**source, num_threads=1).get_signature_runner(signature)
  runner(waveform=windows[0])
  start = time.perf_counter()
  for w in windows:
    runner(waveform=w)
  return (time.perf_counter() - start) / len(windows)


def yamnet_dft_magnitude(waveform):
  """The baseline: |STFT| as YAMNet's TFLite-compatible frontend computes it, each frame
  times constant [400, 257] cos and sin matrices."""
  import tensorflow as tf
  n, bins = 400, 257
  frames = tf.signal.frame(waveform, n, 160)
  window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)
  angles = 2 * np.pi * np.outer(np.arange(n), np.arange(bins)) / 512
  real = tf.matmul(frames, tf.constant((window[:, None] * np.cos(angles)).astype(np.float32)))
  imag = tf.matmul(frames, tf.constant((window[:, None] * np.sin(angles)).astype(np.float32)))
  return tf.sqrt(real * real + imag * imag)


def frontend_rows(windows: np.ndarray, rounds: int) -> list:
  """Our two-stage DFT against YAMNet's DFT matmuls, both as TFLite models of one patch."""
  import tensorflow as tf
  from tf_skeptical.data import frontend
  from tf_skeptical.data.params import DEFAULT_FRONTEND

  def tflite(fn) -> bytes:
    spec = tf.TensorSpec([windows.shape[1]], tf.float32, name="waveform")
    module = tf.Module()
    module.f = tf.function(lambda waveform: {"magnitude": fn(waveform)}, input_signature=[spec])
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [module.f.get_concrete_function()], module)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return converter.convert()

  ours = tflite(lambda w: frontend._stft_magnitude(w, DEFAULT_FRONTEND))
  base = tflite(yamnet_dft_magnitude)
  ratios = [latency(ours, windows, "serving_default") / latency(base, windows, "serving_default")
            for _ in range(rounds)]
  return [common.row("STFT magnitude per patch, two-stage DFT / YAMNet's DFT matmuls, "
                     "TFLite latency",
                     statistics.median(ratios)),
          common.row("STFT magnitude weights, two-stage DFT / YAMNet's DFT matmuls, TFLite bytes",
                     len(ours) / len(base))]


def main():
  import argparse
  extra = argparse.ArgumentParser(add_help=False)
  extra.add_argument("--trained", default="tfsk_work/sweep/tagger")
  extra.add_argument("--held_out", default="tfsk_work/builtin/audio/eval*.wav")
  known = args = common.parse_args(__doc__, extra)
  from tf_skeptical.datasets import builtin_data
  from tf_skeptical.data import examples
  from tf_skeptical import exporting, models, taggers
  from tf_skeptical.masked_loss import MaskedBCEModel
  from tf_skeptical.data.params import DEFAULT_FRONTEND as P

  work = os.path.join(args.work_dir, "export")
  data = os.path.join(work, "audio_data")
  if not os.path.exists(os.path.join(data, builtin_data.SUMMARY)):
    builtin_data.generate(data, builtin_data.BuiltinDataParams(train_clips=40, eval_clips=1))
  model_path = os.path.join(work, "w1.keras")
  features = examples.Features(examples.LOG_MEL, P.mel_bands, P)
  model = MaskedBCEModel.wrap(models.build_model("mobilenet_v1", features.input_shape, 527, 1.0),
                              features=features.to_dict())
  model.save(model_path)
  from tf_skeptical.data.class_map import ClassMap, write_class_map
  cmap_path = os.path.join(work, "classes.csv")
  write_class_map(ClassMap(tuple(f"/m/{i}" for i in range(527)),
                           tuple(f"class {i}" for i in range(527))), cmap_path)
  out = os.path.join(work, "tagger_w1")
  exporting.export(model_path, cmap_path, out,
                   calibration_files=sorted(glob.glob(os.path.join(data, "audio", "*.wav"))),
                   cfg=exporting.ExportConfig(calibration_windows=50 if args.quick else 200))
  flt, q = (os.path.join(out, n) for n in (exporting.FLOAT_TFLITE, exporting.INT8_TFLITE))
  size_ratio = os.path.getsize(q) / os.path.getsize(flt)
  windows = (0.1 * np.random.default_rng(0).standard_normal(
      (20 if args.quick else 100, P.min_patch_samples))).astype(np.float32)
  ratios, lf, lq = [], [], []
  for _ in range(3 if args.quick else 5):
    a, b = latency(q, windows), latency(flt, windows)
    lq.append(a), lf.append(b), ratios.append(a / b)
  hop_seconds = P.patch_hop_samples / P.sample_rate
  rows = [
      common.row("TFLite float size (MB), MobileNetV1 w1.0, 527 classes", os.path.getsize(flt) / 1e6),
      common.row("int8 / float model size", size_ratio, "<= 0.3", size_ratio <= 0.3),
      common.row("int8 / float latency per patch, 1 thread (median)",
                 statistics.median(ratios), "<= 0.6", statistics.median(ratios) <= 0.6),
      common.row("real-time factor float (compute s per audio s)",
                 statistics.median(lf) / hop_seconds),
      common.row("real-time factor int8 (compute s per audio s)",
                 statistics.median(lq) / hop_seconds),
  ]
  rows += frontend_rows(windows, 3 if args.quick else 5)
  held_out = sorted(glob.glob(known.held_out))[:100]
  if os.path.isdir(known.trained) and held_out:
    agreement = exporting.int8_agreement(known.trained, taggers.clips(held_out, P),
                                         P.patch_hop_samples)
    mean_diff, top5 = agreement["mean_abs_difference"], agreement["top5_agreement"]
    rows += [common.row(f"int8 vs float mean absolute score difference, {len(held_out)} held-out clips",
                        mean_diff, "<= 0.02", mean_diff <= 0.02),
             common.row("int8 vs float top-5 agreement", top5, ">= 0.9", top5 >= 0.9)]
  common.report("export", rows)


if __name__ == "__main__":
  main()
