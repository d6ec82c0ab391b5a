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

from bench import common


def latency(path: str, windows: np.ndarray) -> float:
  from ai_edge_litert.interpreter import Interpreter
  runner = Interpreter(model_path=path, num_threads=1).get_signature_runner("patch")
  runner(waveform=windows[0])
  start = time.perf_counter()
  for w in windows:
    runner(waveform=w)
  return (time.perf_counter() - start) / len(windows)


def int8_quality(export_dir: str, audio: list):
  import tensorflow as tf
  from tf_skeptical import audio_io, exporting
  f, q = [], []
  for path in audio:
    w = audio_io.load_clip(tf.constant(path)).numpy()
    f.append(exporting.tflite_scores(os.path.join(export_dir, exporting.FLOAT_TFLITE), w))
    q.append(exporting.tflite_scores(os.path.join(export_dir, exporting.INT8_TFLITE), w))
  f, q = np.concatenate(f), np.concatenate(q)
  top5 = np.mean([len(set(np.argsort(-a)[:5]) & set(np.argsort(-b)[:5])) / 5
                  for a, b in zip(f, q)])
  return float(np.abs(f - q).mean()), float(top5)


def main():
  import argparse
  import sys
  extra = argparse.ArgumentParser(add_help=False)
  extra.add_argument("--trained", default="tfsk_work/sweep/tagger")
  extra.add_argument("--held_out", default="tfsk_work/builtin/audio/eval*.wav")
  known, rest = extra.parse_known_args()
  sys.argv = [sys.argv[0]] + rest
  args = common.parse_args(__doc__)
  from tf_skeptical import builtin_data, exporting, models
  from tf_skeptical.masked_loss import MaskedBCEModel

  work = os.path.join(args.work_dir, "export")
  data = os.path.join(work, "audio_data")
  if not os.path.exists(os.path.join(data, builtin_data.SUMMARY)):
    builtin_data.generate(data, builtin_data.BuiltinDataParams(train_clips=40, eval_clips=1))
  model_path = os.path.join(work, "w1.keras")
  model = MaskedBCEModel.wrap(models.build_model("mobilenet_v1", (96, 64), 527, 1.0))
  model.save(model_path)
  from tf_skeptical.class_map import ClassMap, write_class_map
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
      (20 if args.quick else 100, exporting.WINDOW))).astype(np.float32)
  ratios, lf, lq = [], [], []
  for _ in range(3 if args.quick else 5):
    a, b = latency(q, windows), latency(flt, windows)
    lq.append(a), lf.append(b), ratios.append(a / b)
  hop_seconds = exporting.HOP / 16000
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
  held_out = sorted(glob.glob(known.held_out))[:100]
  if os.path.isdir(known.trained) and held_out:
    mean_diff, top5 = int8_quality(known.trained, held_out)
    rows += [common.row(f"int8 vs float mean absolute score difference, {len(held_out)} held-out clips",
                        mean_diff, "<= 0.02", mean_diff <= 0.02),
             common.row("int8 vs float top-5 agreement", top5, ">= 0.9", top5 >= 0.9)]
  common.report("export", rows)


if __name__ == "__main__":
  main()
