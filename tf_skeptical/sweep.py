"""The paper's experiment: teacher -> score -> flag -> one student per p -> table and plots.

Stages whose outputs are complete (their marker file exists) are skipped on a re-run, so
an interrupted sweep continues where it stopped. p = 0 with seed 0 is the teacher itself:
same data, same recipe, nothing masked; every student differs from it only by its mask
(and, with seeds > 1, its seed). Runs differ by a few hundredths of d' from seed to seed
and thread scheduling, so with seeds > 1 every p is trained that many times and the table
holds the means, with the spread of d'.

Layout of the work directory:
  teacher/          the teacher (a model directory, see training.py)
  scores/           its scores of the train set (scoring.py)
  flags/            flags.npz, summary.csv, review.csv (flagging.py)
  students/p<p>/    one model directory per discard percentage (p<p>_seed<s> for seed s)
  results.csv/.md   the table;  plot_metrics.png, plot_flags.png   the figures
  logs/             TensorBoard: every run's curves and the HParams dashboard
"""

import dataclasses
import os
from typing import Dict, List, Optional, Sequence

import matplotlib
import numpy as np
import tensorflow as tf
from absl import logging
from tensorboard.plugins.hparams import api as hp

from tf_skeptical import (evaluation, examples, files, flagging, inference, provenance, scoring,
                          training)

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the file-only backend)

DEMO_PERCENTS = (0.0, 0.5, 1.0, 2.0, 4.0)
TEACHER, SCORES, FLAGS, STUDENTS, LOGS, TAGGER = (
    "teacher", "scores", "flags", "students", "logs", "tagger")
RESULTS_CSV, RESULTS_MD = "results.csv", "results.md"
PLOT_METRICS, PLOT_FLAGS = "plot_metrics.png", "plot_flags.png"
REVIEW_PERCENT = 1.0  # the review list holds the flags up to this p


@dataclasses.dataclass(frozen=True)
class SweepConfig:
  train: training.TrainConfig = training.TrainConfig()
  percents: Sequence[float] = DEMO_PERCENTS
  max_percent: float = 20.0
  score_workers: int = 2
  seeds: int = 1  # training runs per p, seeds train.seed, train.seed + 1, ...


def run_dir(work_dir: str, p: float, seed_index: int = 0) -> str:
  """The model directory of the run at p (the teacher for p = 0, seed 0)."""
  if p == 0 and seed_index == 0:
    return os.path.join(work_dir, TEACHER)
  suffix = f"_seed{seed_index}" if seed_index else ""
  return os.path.join(work_dir, STUDENTS, f"p{p:g}{suffix}")


def _train(train_dir, eval_dir, model_dir, cfg, discards=None, p=0.0):
  if training.is_trained(model_dir):
    result = files.read_json(os.path.join(model_dir, training.RESULT))
    made_by = (result.get("flags") or {}).get("model_id")
    if discards is None or made_by == discards.made_from.get("model_id"):
      logging.info("skipping %s: already trained", model_dir)
      return result
    logging.warning("%s was trained on flags of another teacher: training it again", model_dir)
    files.remove(model_dir)
  logging.info("training %s (discarding %g%% of implicit negatives)", model_dir, p)
  return training.train(train_dir, model_dir, cfg, eval_dir=eval_dir, discards=discards,
                        verbose=2, extra_result=dict(discard_percent=p))


def run(train_dir: str, eval_dir: str, work_dir: str, cfg: SweepConfig = SweepConfig(),
        truth_csv: Optional[str] = None) -> List[Dict]:
  """Runs (or resumes) the whole sweep; returns the results table's rows."""
  files.makedirs(work_dir)
  if max(cfg.percents) > cfg.max_percent:
    raise ValueError(f"largest p {max(cfg.percents)} exceeds max_percent {cfg.max_percent}")
  teacher_dir = run_dir(work_dir, 0.0)
  results = {0.0: [_train(train_dir, eval_dir, teacher_dir, cfg.train)]}

  # Scores and flags are reused only if this teacher made them (a retrained teacher's
  # model differs, and so does its id).
  teacher_id = provenance.file_id(inference.model_path(teacher_dir))
  scores_dir = os.path.join(work_dir, SCORES)
  scores_manifest = os.path.join(scores_dir, scoring.MANIFEST)
  if (not files.exists(scores_manifest)
      or files.read_json(scores_manifest).get("model_id") != teacher_id):
    logging.info("scoring the train set with the teacher")
    scoring.score(train_dir, teacher_dir, scores_dir, local_workers=cfg.score_workers)
  flags_dir = os.path.join(work_dir, FLAGS)
  flags_path = os.path.join(flags_dir, flagging.FLAGS_FILE)
  class_map = examples.read_info(train_dir).class_map
  if (not files.exists(flags_path)
      or flagging.read_flags(flags_path).made_from.get("model_id") != teacher_id):
    logging.info("flagging up to %g%% of each class's implicit negatives", cfg.max_percent)
    files.makedirs(flags_dir)
    flags = flagging.flag_scores(scoring.read_scores(scores_dir), cfg.max_percent)
    flagging.write_summary(flags, class_map.display_names,
                           os.path.join(flags_dir, flagging.SUMMARY))
    flagging.write_review(flags, class_map.mids, class_map.display_names,
                          os.path.join(flags_dir, flagging.REVIEW), percent=REVIEW_PERCENT)
    flagging.write_flags(flags, flags_path)
  flags = flagging.read_flags(flags_path)

  for i in range(cfg.seeds):
    seeded = dataclasses.replace(cfg.train, seed=cfg.train.seed + i)
    for p in cfg.percents:
      if p > 0 or i > 0:
        results.setdefault(p, []).append(_train(
            train_dir, eval_dir, run_dir(work_dir, p, i), seeded,
            flags.discards(p) if p > 0 else None, p))

  quality = {}
  if truth_csv:
    percents = [p for p in sorted(set(cfg.percents) | {1.0}) if p <= cfg.max_percent]
    rows = evaluation.flag_quality(flags, evaluation.read_truth(truth_csv, class_map),
                                   percents)
    evaluation.write_rows(rows, os.path.join(work_dir, evaluation.FLAG_QUALITY))
    quality = {r["percent"]: r for r in rows}

  table = []
  for p in sorted(results):
    evals = [r["eval"] for r in results[p]]
    mean = {k: float(np.mean([e[k] for e in evals])) for k in ("d_prime", "lwlrap", "mAP", "AUC")}
    q = quality.get(p, {})
    table.append(dict(discard_percent=p, masked_entries=results[p][0].get("masked_entries", 0),
                      runs=len(evals), **mean,
                      d_prime_min=min(e["d_prime"] for e in evals),
                      d_prime_max=max(e["d_prime"] for e in evals),
                      flag_precision=q.get("precision", float("nan")),
                      flag_recall=q.get("recall", float("nan")),
                      base_rate=q.get("base_rate", float("nan"))))
  write_table(table, work_dir)
  plot(table, list(quality.values()), work_dir)
  write_hparams(table, work_dir)
  return table


def write_table(table: List[Dict], work_dir: str) -> str:
  evaluation.write_rows(table, os.path.join(work_dir, RESULTS_CSV))
  base = table[0]
  runs = table[0].get("runs", 1)
  lines = ["d' = sqrt(2) * Phi^-1(AUC averaged over classes), as AudioSet papers report it.",
           f"Means over {runs} run(s) per p (seeds); d' range = lowest..highest run.\n" if runs > 1
           else "",
           "| discard % | masked entries | d' | d' range | lwlrap | mAP | flag precision | "
           "flag recall |",
           "|---:|---:|---:|---:|---:|---:|---:|---:|"]
  for r in table:
    def delta(k):
      d = r[k] - base[k]
      return f"{r[k]:.3f}" + ("" if r is base else f" ({d:+.3f})")
    prec = "" if np.isnan(r["flag_precision"]) else f"{r['flag_precision']:.3f}"
    rec = "" if np.isnan(r["flag_recall"]) else f"{r['flag_recall']:.3f}"
    spread = f"{r.get('d_prime_min', r['d_prime']):.3f}..{r.get('d_prime_max', r['d_prime']):.3f}"
    lines.append(f"| {r['discard_percent']:g} | {r['masked_entries']} | {delta('d_prime')} | "
                 f"{spread} | {delta('lwlrap')} | {delta('mAP')} | {prec} | {rec} |")
  if not np.isnan(table[-1]["base_rate"]):
    lines.append(f"\nBase rate (missing labels among implicit negatives, the precision of "
                 f"random flags): {table[-1]['base_rate']:.4f}")
  text = "\n".join(l for l in lines if l) + "\n"
  path = os.path.join(work_dir, RESULTS_MD)
  with files.atomic_write(path) as f:
    f.write(text)
  return text


def _percent_axis(ax, percents):
  """The paper's grid is far from uniform: evenly spaced points labelled with their p."""
  ax.set_xticks(range(len(percents)), [f"{p:g}" for p in percents])
  ax.set_xlabel("% of implicit negatives per class")
  ax.grid(alpha=0.3)


def plot(table: List[Dict], quality: List[Dict], work_dir: str) -> List[str]:
  """The paper's figure (metrics against % discarded, baseline dashed) and flag quality."""
  percents = [r["discard_percent"] for r in table]
  x = range(len(percents))
  paths = []
  fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
  for ax, key, label in zip(axes, ("d_prime", "lwlrap", "mAP"),
                            ("d' (from mean AUC)", "lwlrap", "mAP")):
    ax.plot(x, [r[key] for r in table], "o-", label="student (mean over seeds)")
    if key == "d_prime" and table[0].get("runs", 1) > 1:
      ax.fill_between(x, [r["d_prime_min"] for r in table], [r["d_prime_max"] for r in table],
                      alpha=0.2, label="range over seeds")
    ax.axhline(table[0][key], color="gray", ls="--", label="baseline (p = 0)")
    ax.set_title(f"{label} on the eval set")
    _percent_axis(ax, percents)
  axes[0].legend()
  fig.tight_layout()
  paths.append(os.path.join(work_dir, PLOT_METRICS))
  files.save_figure(fig, paths[-1], dpi=110)
  plt.close(fig)
  if quality:
    q = sorted(quality, key=lambda r: r["percent"])
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    x = range(len(q))
    ax.plot(x, [r["precision"] for r in q], "o-", label="precision")
    ax.plot(x, [r["recall"] for r in q], "s-", label="recall")
    ax.axhline(q[0]["base_rate"], color="gray", ls="--", label="base rate (random flags)")
    ax.set_title("flags against the known missing labels")
    _percent_axis(ax, [r["percent"] for r in q])
    ax.legend()
    fig.tight_layout()
    paths.append(os.path.join(work_dir, PLOT_FLAGS))
    files.save_figure(fig, paths[-1], dpi=110)
    plt.close(fig)
  return paths


def write_hparams(table: List[Dict], work_dir: str) -> None:
  """One TensorBoard run per p with its hparams and final metrics (the HParams dashboard)."""
  root = os.path.join(work_dir, LOGS)
  metric_names = ("d_prime", "lwlrap", "mAP")
  with tf.summary.create_file_writer(root).as_default():
    hp.hparams_config(hparams=[hp.HParam("discard_percent", hp.RealInterval(0.0, 100.0))],
                      metrics=[hp.Metric(f"final/{m}", display_name=m) for m in metric_names])
  for r in table:
    with tf.summary.create_file_writer(
        os.path.join(root, f"p{r['discard_percent']:g}")).as_default():
      hp.hparams({"discard_percent": float(r["discard_percent"])},
                 trial_id=f"p{r['discard_percent']:g}")
      for m in metric_names:
        tf.summary.scalar(f"final/{m}", r[m], step=0)
