"""Where a training run's time goes, and what running a sweep's runs side by side buys.

  python -m bench.training_speed            # the demo's data (3000 + 1000 clips), ~10 min
  python -m bench.training_speed --quick    # 300 + 100 clips, ~3 min
  python -m bench.training_speed --demo     # and times tfsk_demo itself in a fresh work dir

In one run, on the same built-in examples and the same MobileNetV1 w0.25:
- plain Keras fit (the built-in BCE on the labels, no callbacks) against one run of
  training.train (the masked loss, its callbacks, evaluation, backups, the saved model),
  alternating; the run's result.json says where its time went (setup, training steps,
  evaluation, the rest);
- the same run as before 2026-12-03, with clip-level evaluation after every epoch: its
  whole-run rate and time shares beside today's;
- a small sweep (p = 0 and 2, 2 seeds, both references: 8 runs) with one job, then with one
  job per core: the side-by-side wall time against the sum of the same runs alone, and the
  sweep's patches per second against plain fit's.
"""

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time

import harness as common

WIDTH, BATCH = 0.25, 64


def _args():
  extra = argparse.ArgumentParser(add_help=False)
  extra.add_argument("--demo", action="store_true")
  args = common.parse_args(__doc__ + "\n--demo: also time tfsk_demo (~14 min).", extra)
  return args.demo, args


def plain_fit_seconds(train_dir: str, epochs: int) -> float:
  """Seconds of plain Keras fit: the same model, batches and steps, the built-in BCE."""
  import keras
  from tf_skeptical.data import examples
  from tf_skeptical import input_pipeline, models
  info = examples.read_info(train_dir)
  steps = -(-info.num_clips * info.patches_per_clip(96) // BATCH)
  keras.utils.set_random_seed(0)
  model = models.build_model("mobilenet_v1", info.features.input_shape, info.num_classes,
                             WIDTH, 0.9)
  model.compile(optimizer=keras.optimizers.Adam(3e-3), jit_compile=False,
                loss=keras.losses.BinaryCrossentropy(from_logits=True))
  data = input_pipeline.training_dataset(train_dir, BATCH, hop_frames=96, seed=0).map(
      lambda x, y: (x, y["labels"]))
  start = time.perf_counter()
  model.fit(data, epochs=epochs, steps_per_epoch=steps, verbose=0)
  return time.perf_counter() - start


def run_seconds(train_dir: str, eval_dir: str, out: str, epochs: int,
                eval_every: int = 0) -> dict:
  """One training.train run from scratch (evaluating every eval_every epochs; 0: the
  default): its result's seconds (training.py)."""
  from tf_skeptical import training
  shutil.rmtree(out, ignore_errors=True)
  cfg = training.TrainConfig(width=WIDTH, epochs=epochs)
  if eval_every:
    cfg = dataclasses.replace(cfg, eval_every_epochs=eval_every)
  result = training.train(train_dir, out, cfg, eval_dir=eval_dir, verbose=0)
  return dict(result["seconds"], patches=epochs * result["steps_per_epoch"] * BATCH)


def sweep_seconds(dirs, truth: str, out: str, epochs: int, jobs: int):
  """Wall seconds of a fresh 8-run sweep, and its runs' own result.json."""
  from tf_skeptical import sweep, training
  shutil.rmtree(out, ignore_errors=True)
  cfg = sweep.SweepConfig(train=training.TrainConfig(width=WIDTH, epochs=epochs),
                          percents=(0.0, 2.0), seeds=2, jobs=jobs)
  start = time.perf_counter()
  sweep.run(dirs["train"], dirs["eval"], out, cfg, truth_csv=truth)
  wall = time.perf_counter() - start
  results = []
  for stage in (sweep.TEACHER, sweep.STUDENTS):
    for root, _, names in os.walk(os.path.join(out, stage)):
      if training.RESULT in names:
        with open(os.path.join(root, training.RESULT)) as f:
          results.append(json.load(f))
  return wall, results


def demo_minutes(work: str) -> float:
  out = os.path.join(work, "demo")
  shutil.rmtree(out, ignore_errors=True)
  start = time.perf_counter()
  subprocess.run([sys.executable, "-m", "tf_skeptical_bin.tfsk_demo", f"--work_dir={out}"],
                 check=True, stdout=subprocess.DEVNULL)
  return (time.perf_counter() - start) / 60


def main():
  demo, args = _args()
  from tf_skeptical.datasets import builtin_data
  from tf_skeptical import side_by_side
  train_clips, eval_clips = (300, 100) if args.quick else (3000, 1000)
  data, dirs = common.builtin_dataset(args.work_dir, train_clips, eval_clips)
  truth = os.path.join(data, builtin_data.TRUTH)
  epochs = 2 if args.quick else 3

  plain, runs, before = [], [], []
  for k in range(2):  # alternating, so that drift touches all alike
    plain.append(plain_fit_seconds(dirs["train"], epochs))
    runs.append(run_seconds(dirs["train"], dirs["eval"],
                            os.path.join(args.work_dir, "speed_run"), epochs))
    # Before: clip-level evaluation after every epoch (the default until 2026-12-03).
    before.append(run_seconds(dirs["train"], dirs["eval"],
                              os.path.join(args.work_dir, "speed_run"), epochs, eval_every=1))
  patches = runs[0]["patches"]
  plain_rate = patches / min(plain)
  best = min(runs, key=lambda r: r["total"])
  step_ratio = (patches / best["train_steps"]) / plain_rate
  run_ratio = (patches / best["total"]) / plain_rate
  rows = [
      common.row(f"one run's training steps / plain Keras fit, patches/s (w{WIDTH:g}, "
                 f"{train_clips} clips, {epochs} epochs)", step_ratio, ">= 0.90",
                 step_ratio >= 0.90),
      common.row("one whole run (setup, evaluation, save) / plain Keras fit, patches/s",
                 run_ratio, ">= 0.75", run_ratio >= 0.75)]
  old = min(before, key=lambda r: r["total"])
  for label, r in (("", best), ("before (evaluation after every epoch): ", old)):
    if label:
      rows.append(common.row(f"{label}one whole run / plain Keras fit, patches/s",
                             (patches / r["total"]) / plain_rate))
    for part in ("setup", "first_epoch_steps", "train_steps", "evaluation", "other_in_fit"):
      rows.append(common.row(f"  {label}share of the run's time: {part}", r[part] / r["total"]))
  rows.append(common.row("  (context) plain Keras fit, patches/s", plain_rate))

  sweep_epochs = 1 if args.quick else 2
  jobs = side_by_side.auto_jobs()
  alone_wall, alone = sweep_seconds(dirs, truth, os.path.join(args.work_dir, "speed_sweep1"),
                                    sweep_epochs, 1)
  side_wall, side = sweep_seconds(dirs, truth, os.path.join(args.work_dir, "speed_sweep2"),
                                  sweep_epochs, jobs)
  alone_sum = sum(r["seconds"]["total"] for r in alone)
  trained = sum(sweep_epochs * r["steps_per_epoch"] * BATCH for r in side)
  ratio = side_wall / alone_sum
  sweep_rate = (trained / side_wall) / plain_rate
  rows += [
      common.row(f"sweep wall time with {jobs} jobs side by side / the sum of its {len(alone)} "
                 "runs alone", ratio, "<= 0.70", ratio <= 0.70),
      common.row(f"the sweep's patches/s with {jobs} jobs / plain Keras fit's", sweep_rate,
                 ">= 1.00", sweep_rate >= 1.0),
      common.row("  before (one run at a time): sweep wall time, 1 job / the sum of its runs "
                 "alone (scoring, flags, report)", alone_wall / alone_sum)]
  if demo:
    minutes = demo_minutes(args.work_dir)
    rows.append(common.row("tfsk_demo wall minutes, fresh work dir (absolute: drifts)",
                           minutes, "<= 15", minutes <= 15))
  common.report("training_speed", rows)


if __name__ == "__main__":
  main()
