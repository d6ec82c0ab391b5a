"""Every binary's documented usage runs: the command lines in each binary's docstring (what
`--help` prints), executed in order in one folder, with size flags appended so that they
finish in seconds on a tiny built-in set."""

import ast
import importlib.util
import json
import os
import shlex
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tf_skeptical.data import audioset_embeddings
from tf_skeptical.review import verdicts
from tf_skeptical.data.class_map import ClassMap, write_class_map

# End-to-end: trains, exports or runs the binaries (.ci/run runs these on one Python only).
pytestmark = pytest.mark.end_to_end

BINARIES = ("tfsk_make_builtin", "tfsk_simulate_audioset", "tfsk_prepare", "tfsk_train", "tfsk_score", "tfsk_flag",
            "tfsk_review", "tfsk_evaluate", "tfsk_export", "tfsk_tag", "tfsk_sweep", "tfsk_demo")

TINY_MODEL = ["--width=0.25", "--batch_size=8", "--train_hop_frames=48"]
SIZE_FLAGS = {
    "tfsk_make_builtin": ["--num_classes=4", "--train_clips=24", "--eval_clips=12",
                          "--clip_seconds=1.2", "--seed=1"],
    "tfsk_simulate_audioset": ["--train_clips=300", "--eval_clips=40", "--num_classes=30",
                               "--clips_per_shard=128", "--smallest_class=0.01"],
    "tfsk_prepare": ["--clip_seconds=1.2"],
    "tfsk_train": TINY_MODEL + ["--epochs=2"],
    "tfsk_score": ["--local_workers=1"],
    "tfsk_flag": [],
    "tfsk_review": [],
    "tfsk_evaluate": [],
    "tfsk_export": ["--calibration_windows=30"],
    "tfsk_tag": [],
    "tfsk_sweep": TINY_MODEL + ["--epochs=1", "--percents=0,5", "--max_percent=5",
                                "--score_workers=1"],
    "tfsk_demo": ["--train_clips=24", "--eval_clips=12", "--epochs=2", "--percents=0,5",
                  "--seeds=1", "--batch_size=8", "--work_dir=demo"],
}

# Lines that serve until stopped: run with --port=0, asked for their first page, then
# stopped with Ctrl-C (SIGINT), which ends them at once with exit status 130.
SERVED = {("tfsk_review", 0)}

# The order the documented lines run in: (binary, line index in its docstring).
PLAN = [("tfsk_make_builtin", 0), ("tfsk_simulate_audioset", 0), ("tfsk_prepare", 0), ("tfsk_prepare", 1),
        ("tfsk_prepare", 2), ("tfsk_train", 0), ("tfsk_score", 0), ("tfsk_flag", 0),
        ("tfsk_review", 0), ("tfsk_review", 1), ("tfsk_review", 2), ("tfsk_train", 1), ("tfsk_train", 2),
        ("tfsk_train", 3), ("tfsk_evaluate", 0), ("tfsk_evaluate", 1), ("tfsk_export", 0),
        ("tfsk_tag", 0), ("tfsk_tag", 1), ("tfsk_sweep", 0), ("tfsk_demo", 0),
        ("tfsk_demo", 1), ("tfsk_demo", 2), ("tfsk_demo", 3)]


def documented_usage(binary: str) -> list:
  """The `tfsk_...` command lines of a binary's docstring, continuation lines joined and
  trailing comments dropped, each as an argument list."""
  # Read, not imported: the binaries define flags of the same names.
  with open(importlib.util.find_spec(f"tf_skeptical_bin.{binary}").origin) as f:
    doc = ast.get_docstring(ast.parse(f.read()))
  commands, current = [], None
  for line in doc.splitlines():
    text = line.strip()
    if current is None and text.startswith(binary):
      current = ""
    if current is None:
      continue
    current += " " + text.rstrip("\\")
    if not text.endswith("\\"):
      commands.append(shlex.split(current, comments=True))
      current = None
  return commands


def test_every_documented_line_is_in_the_plan():
  for binary in BINARIES:
    lines = documented_usage(binary)
    assert lines, f"{binary} documents no usage"
    assert {i for b, i in PLAN if b == binary} == set(range(len(lines))), binary


def write_embedding_records(folder):
  """What `tfsk_prepare --embeddings` reads: AudioSet's release layout, 4 classes."""
  os.makedirs(folder / "bal_train")
  write_class_map(ClassMap(tuple(f"/m/{i}" for i in range(4)),
                           tuple(f"class {i}" for i in range(4))),
                  str(folder / "class_labels_indices.csv"))
  rng = np.random.default_rng(0)
  with tf.io.TFRecordWriter(str(folder / "bal_train" / "a.tfrecord")) as w:
    for i in range(6):
      w.write(audioset_embeddings.make_sequence_example(
          f"clip{i}", 0.0, 10.0, [i % 4], rng.integers(0, 256, (10, 128), dtype=np.uint8)))


def serve_once(binary, args, cwd, env) -> str:
  """Starts a serving binary, fetches the page at the address it prints, stops it with
  SIGINT; returns what it printed."""
  import signal
  import urllib.request
  proc = subprocess.Popen([sys.executable, "-m", f"tf_skeptical_bin.{binary}", *args], cwd=cwd,
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  printed = []
  for line in proc.stdout:
    printed.append(line)
    if "open http" in line:
      break
  url = printed[-1].split("open ", 1)[1].split(" ", 1)[0] if printed else ""
  assert url.startswith("http"), (printed, proc.stderr.read()[-3000:])
  with urllib.request.urlopen(url + "api/start", timeout=120) as r:
    assert json.loads(r.read())["counts"]["total"] > 0
  proc.send_signal(signal.SIGINT)
  assert proc.wait(timeout=30) == 130
  return "".join(printed)


def test_documented_usage_runs_in_order(tmp_path):
  write_embedding_records(tmp_path)
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  outputs, logs = {}, {}
  for binary, index in PLAN:
    args = documented_usage(binary)[index][1:] + SIZE_FLAGS[binary]
    if (binary, index) in SERVED:
      outputs[(binary, index)] = serve_once(binary, args + ["--port=0"], tmp_path, env)
      continue
    done = subprocess.run([sys.executable, "-m", f"tf_skeptical_bin.{binary}", *args],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, (f"{binary} {' '.join(args)}\n"
                                  f"{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    outputs[(binary, index)], logs[(binary, index)] = done.stdout, done.stderr

  def exists(*names):
    for name in names:
      assert (tmp_path / name).exists(), name

  exists("data/train_missing_labels.csv", "examples/train/manifest.json",
         "examples/eval/manifest.json", "examples/bal_train/manifest.json",
         "runs/teacher/model.keras", "runs/teacher/result.json", "scores/scores.json",
         "flags/flags.npz", "flags/summary.csv", "flags/review.csv", "runs/p1/result.json",
         "runs/p1_distill/result.json", "runs/p1/eval/eval.json", "flag_quality/flag_quality.csv", "tagger/metadata.json",
         "tagger/tagger_int8.tflite", "sweep/results.md", "sweep/plot_metrics.png",
         "demo/sweep/results.md", "demo/sweep/tagger/metadata.json",
         "sim/train/train-00000-of-00003.tfrecord", "sim/train_missing_labels.csv",
         "sim/generation.json", "verdicts.csv", "cleaned/train_segments.csv",
         "cleaned/changes.csv")
  with open(tmp_path / "examples/bal_train/manifest.json") as f:
    assert json.load(f)["num_clips"] == 6
  with open(tmp_path / "runs/p1/result.json") as f:
    assert json.load(f)["discard_percent"] == 1
  with open(tmp_path / "runs/p1_reviewed/result.json") as f:
    used = json.load(f)["verdicts"]
  answered = verdicts.read(str(tmp_path / "verdicts.csv")).counts()  # up to --budget=20
  assert 0 < used["confirmed"] + used["rejected"] == answered["present"] + answered["absent"]
  assert used["confirmed"] == answered["present"]
  with open(tmp_path / "runs/p1_distill/result.json") as f:
    assert json.load(f)["treatment"] == "distill0.9"
  assert outputs[("tfsk_tag", 0)].count("clip (mean of") == 2
  assert outputs[("tfsk_tag", 1)].count("clip (mean of") == 1
  demo = outputs[("tfsk_demo", 1)]  # a 2-epoch demo: a student may or may not beat its baseline
  assert "Best discard percentage" in demo or "No student beat the baseline" in demo
  # --full adds the soft and positive students; the explicit --seeds and --percents win.
  assert "| positive | 5 |" in outputs[("tfsk_demo", 2)]
  # --review: the simulated listening test, a sweep on its verdicts, what they buy.
  assert "Listening test (simulated, the teacher's top 300)" in outputs[("tfsk_demo", 3)]
  assert "| with the verdicts: the rest as given |" in outputs[("tfsk_demo", 3)]
  # Quiet: neither TensorFlow's INFO lines nor the converter's and LiteRT's C++ lines.
  for key in (("tfsk_export", 0), ("tfsk_tag", 0), ("tfsk_demo", 1)):
    for chatter in ("fully_quantize", "XNNPACK", "Assets written", "fingerprint"):
      assert chatter not in logs[key], (key, chatter, logs[key][-2000:])
