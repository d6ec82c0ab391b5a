"""The whole pipeline at AudioSet's size on this machine: wall time and peak memory per stage.

  python -m bench.scale --sizes=100000,500000,2041789      # hours at the largest
  python -m bench.scale --quick                            # CI: 20,000 clips
  python -m bench.scale --sizes=                           # the table of earlier runs only

For each size, on an AudioSet-like simulation (tfsk_simulate_audioset: 527 classes, long
tail, known missing labels), each stage runs as its binary in its own process: simulate,
prepare (train, eval), the teacher (embedding_mlp), score, flag to 20%, the students at
p = 1% and 20% (the teacher is the p = 0 run), evaluate, and the flags' precision against
the truth. Peak memory is the largest resident set of the stage's process tree (Beam
workers included), sampled every 0.2 s. Prepare and score run with --local_workers Beam
worker processes (default 2, one a core here); the scoring job then runs again with the
other count (1 or 2) for the ratio of the two. Models: embedding_mlp at --width (0.5) for
--epochs (2). Between sizes, each stage's growth exponent log(t2 / t1) / log(n2 / n1) says
whether its time grows linearly (1.0).
"""

import argparse
import json
import math
import os
import subprocess
import sys
import threading
import time

import harness as common

STAGES = ("simulate", "prepare_train", "prepare_eval", "teacher", "score", "flag",
          "student_p1", "student_p20", "evaluate_p1", "flag_quality")


def _tree_rss(root: int) -> int:
  """Resident bytes of a process and all its descendants (from /proc)."""
  children, rss = {}, {}
  for name in os.listdir("/proc"):
    if not name.isdigit():
      continue
    try:
      with open(f"/proc/{name}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
      children.setdefault(int(fields[1]), []).append(int(name))
      rss[int(name)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, IndexError, ValueError):
      continue
  total, stack = 0, [root]
  while stack:
    pid = stack.pop()
    total += rss.get(pid, 0)
    stack += children.get(pid, [])
  return total


def run_stage(args, cwd, log):
  """Runs one binary; returns (seconds, peak bytes of its process tree)."""
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  start = time.monotonic()
  with open(log, "w") as out:
    proc = subprocess.Popen([sys.executable, "-m", *args], cwd=cwd, env=env, stdout=out,
                            stderr=subprocess.STDOUT)
    peak = [0]

    def sample():
      while proc.poll() is None:
        peak[0] = max(peak[0], _tree_rss(proc.pid))
        time.sleep(0.2)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    code = proc.wait()
    sampler.join()
  if code:
    with open(log) as f:
      tail = f.read()[-3000:]
    raise RuntimeError(f"{' '.join(args)} failed ({code}); log {log}:\n{tail}")
  return time.monotonic() - start, peak[0]


def commands(n: int, eval_clips: int, epochs: int, workers: int, width: float):
  b = "tf_skeptical_bin."
  train = ["--model=embedding_mlp", f"--width={width}", f"--epochs={epochs}",
           "--batch_size=1024", "--train=ex/train"]
  return {
      "simulate": [b + "tfsk_simulate_audioset", "--output_dir=sim", f"--train_clips={n}",
                   f"--eval_clips={eval_clips}"],
      "prepare_train": [b + "tfsk_prepare", "--embeddings=sim/train/*.tfrecord",
                        "--class_map=sim/class_labels_indices.csv", "--output_dir=ex/train",
                        f"--local_workers={workers}"],
      "prepare_eval": [b + "tfsk_prepare", "--embeddings=sim/eval/*.tfrecord",
                       "--class_map=sim/class_labels_indices.csv", "--output_dir=ex/eval",
                       f"--local_workers={workers}"],
      "teacher": [b + "tfsk_train", *train, "--model_dir=runs/teacher"],
      "score": [b + "tfsk_score", "--examples=ex/train", "--model=runs/teacher",
                "--output_dir=scores", f"--local_workers={workers}"],
      "flag": [b + "tfsk_flag", "--scores=scores", "--output_dir=flags", "--max_percent=20",
               "--review_csv=flags/review.csv", "--review_limit=1000"],
      "student_p1": [b + "tfsk_train", *train, "--model_dir=runs/p1",
                     "--teacher_flags=flags/flags.npz", "--discard_percent=1"],
      "student_p20": [b + "tfsk_train", *train, "--model_dir=runs/p20",
                      "--teacher_flags=flags/flags.npz", "--discard_percent=20"],
      "evaluate_p1": [b + "tfsk_evaluate", "--model=runs/p1", "--eval=ex/eval",
                      "--output_dir=runs/p1/eval"],
      "flag_quality": [b + "tfsk_evaluate", "--teacher_flags=flags/flags.npz",
                       "--truth=sim/train_missing_labels.csv",
                       "--class_map=sim/class_labels_indices.csv",
                       "--output_dir=flag_quality"],
  }


def run_size(n: int, work: str, *, eval_clips: int, epochs: int, workers: int,
             width: float) -> dict:
  os.makedirs(work, exist_ok=True)
  out = {}
  for stage, args in commands(n, eval_clips, epochs, workers, width).items():
    seconds, peak = run_stage(args, work, os.path.join(work, f"{stage}.log"))
    out[stage] = dict(seconds=seconds, peak_gb=peak / 1e9)
    print(f"  {n} clips  {stage:<14} {seconds:9.1f} s  {peak / 1e9:6.2f} GB", flush=True)
  with open(os.path.join(work, "flag_quality", "flag_quality.csv")) as f:
    import csv
    quality = {float(r["percent"]): r for r in csv.DictReader(f)}
  with open(os.path.join(work, "runs", "p1", "eval", "eval.json")) as f:
    d_prime = json.load(f)["summary"]["d_prime"]
  other = 1 if workers > 1 else 2  # the scoring job again, with the other worker count
  seconds, peak = run_stage(
      commands(n, eval_clips, epochs, other, width)["score"][:-2]
      + ["--output_dir=scores_other", f"--local_workers={other}"],
      work, os.path.join(work, "score_other_workers.log"))
  out["score_other_workers"] = dict(seconds=seconds, peak_gb=peak / 1e9, workers=other)
  print(f"  {n} clips  score, {other} worker(s) {seconds:9.1f} s  {peak / 1e9:6.2f} GB",
        flush=True)
  out["result"] = dict(
      precision_at_1=float(quality[1.0]["precision"]),
      precision_at_20=float(quality[20.0]["precision"]),
      base_rate=float(quality[1.0]["base_rate"]), student_p1_d_prime=d_prime)
  return out


def main():
  extra = argparse.ArgumentParser(add_help=False)
  extra.add_argument("--sizes", default="100000,500000,2041789",
                     help="Train clip counts, comma-separated.")
  extra.add_argument("--eval_clips", type=int, default=20371)
  extra.add_argument("--epochs", type=int, default=2)
  extra.add_argument("--local_workers", type=int, default=1,
                     help="Beam worker processes for prepare and score (the scoring job "
                     "runs again with 1, or 2 if this is 1, for the ratio).")
  extra.add_argument("--width", type=float, default=0.5,
                     help="embedding_mlp width (0.5: 256 units; see bench/RESULTS.md).")
  known = args = common.parse_args(__doc__, extra)
  sizes = [20000] if args.quick else [int(s) for s in known.sizes.split(",") if s.strip()]
  eval_clips = 2000 if args.quick else known.eval_clips
  settings = dict(eval_clips=eval_clips, epochs=known.epochs, workers=known.local_workers,
                  width=known.width)
  results = {}
  for n in sizes:
    work = os.path.join(args.work_dir, f"scale_{n}")
    results[n] = dict(run_size(n, work, **settings), settings=settings)
    with open(os.path.join(work, "result.json"), "w") as f:
      json.dump(results[n], f, indent=2)
  # Sizes measured by earlier runs into the same work_dir with the same settings join the
  # table and the growth exponents (the largest takes hours: run it on its own).
  for name in sorted(os.listdir(args.work_dir)):
    path = os.path.join(args.work_dir, name, "result.json")
    if name.startswith("scale_") and os.path.exists(path):
      with open(path) as f:
        earlier = json.load(f)
      n = int(name[len("scale_"):])
      if n not in results and earlier.get("settings") == settings:
        results[n] = earlier
  results = dict(sorted(results.items()))
  rows = []
  for n, r in results.items():
    total = sum(r[k]["seconds"] for k in STAGES)
    rows.append(common.row(f"{n} clips: whole pipeline, minutes", total / 60))
    rows.append(common.row(f"{n} clips: largest stage peak memory, GB",
                           max(v["peak_gb"] for k, v in r.items() if k in STAGES),
                           "<= 12", max(v["peak_gb"] for k, v in r.items()
                                        if k in STAGES) <= 12))
    for stage in STAGES:
      rows.append(common.row(f"  {n}: {stage} s", r[stage]["seconds"]))
      rows.append(common.row(f"  {n}: {stage} peak GB", r[stage]["peak_gb"]))
    other = r["score_other_workers"]
    # Side by side: if the score stage was re-measured on its own later, the ratio uses the
    # score run that ran beside the other worker count (kept under "earlier").
    score = r.get("earlier", {}).get("score_paired_with_other_workers", r["score"])
    two, one = ((score, other) if other["workers"] == 1 else (other, score))
    rows.append(common.row(f"  {n}: score with 2 local Beam workers / 1, time",
                           two["seconds"] / one["seconds"]))
    res = r["result"]
    rows += [common.row(f"  {n}: flag precision at 1% (base rate {res['base_rate']:.5f})",
                        res["precision_at_1"]),
             common.row(f"  {n}: flag precision at 20%", res["precision_at_20"]),
             common.row(f"  {n}: student p = 1% eval d'", res["student_p1_d_prime"])]
  ns = sorted(results)
  for a, b in zip(ns, ns[1:]):
    for stage in STAGES:
      t1, t2 = results[a][stage]["seconds"], results[b][stage]["seconds"]
      exponent = math.log(t2 / t1) / math.log(b / a)
      rows.append(common.row(f"growth exponent {a}->{b}: {stage}", exponent, "<= 1.1",
                             exponent <= 1.1))
  common.report("scale", rows)
  with open(os.path.join(args.work_dir, "scale.json"), "w") as f:
    json.dump({str(k): v for k, v in results.items()}, f, indent=2)


if __name__ == "__main__":
  main()
