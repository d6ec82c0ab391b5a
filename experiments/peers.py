"""Peers on the built-in data, whose missing labels are known, from the same teacher scores.

Needs a finished demo (`tfsk_demo`, default work dir tfsk_work). Prints:
1. Flags: precision and recall against the truth of (a) cleanlab's multi-label, per-class
   label-issue finder at its own estimated budget, and of our flags at the same per-class
   counts; (b) cleanlab's per-class quality ranking against ours at equal budgets. Only
   given negatives that are implicit (not explicit negatives) are candidates for both.
2. Students: mean eval d' / lwlrap of the skeptical student at the demo's best p, of
   students trained with online large-loss rejection (LL-R), and of plain training (p = 0).
   The LL-R runs are trained here with the demo's recipe and seeds (skipped when present).
"""

import argparse
import json
import os

import numpy as np

import harness as common


def demo_flags(work: str):
  """A finished demo's in-sample teacher scores, its flags and the truth (clip, class)."""
  from tf_skeptical.datasets import builtin_data
  from tf_skeptical import evaluation, flagging, scoring
  from tf_skeptical.data import examples
  sweep = os.path.join(work, "sweep")
  cmap = examples.read_info(os.path.join(work, "examples", "train")).class_map
  return (scoring.read_scores(os.path.join(sweep, "scores")),
          flagging.read_flags(os.path.join(sweep, "flags", "flags.npz")),
          evaluation.read_truth(os.path.join(work, "builtin", builtin_data.TRUTH), cmap))


def flag_rows(scores, flags, truth, label: str = ""):
  """cleanlab against our flags on the same probabilities (a teacher's scores and the flags
  made from them), measured against the truth; `label` prefixes rows."""
  import cleanlab.multilabel_classification.filter as cl_filter
  import cleanlab.multilabel_classification.rank as cl_rank
  from tf_skeptical import flagging
  n, c = scores.scores.shape
  index = {k: i for i, k in enumerate(scores.clip_ids)}
  missing = np.zeros((n, c), bool)
  for k, cls in truth:
    missing[index[k], cls] = True
  pos_ptr, pos_idx = scores.positives
  neg_ptr, neg_idx = scores.explicit_negatives
  labels = [list(pos_idx[pos_ptr[i]:pos_ptr[i + 1]]) for i in range(n)]
  candidate = np.ones((n, c), bool)
  for i in range(n):
    candidate[i, labels[i]] = False
    candidate[i, neg_idx[neg_ptr[i]:neg_ptr[i + 1]]] = False
  probs = np.ascontiguousarray(scores.scores, dtype=np.float64)

  def quality(selected):
    tp = int((selected & missing).sum())
    return tp / max(int(selected.sum()), 1), tp / int(missing.sum())

  def ours_top(counts):
    sel = np.zeros((n, c), bool)
    keep = flags.rank <= np.asarray(counts)[flags.cls]
    sel[flags.clip[keep], flags.cls[keep]] = True
    return sel

  rows = []
  issues = np.asarray(cl_filter.find_multilabel_issues_per_class(labels, probs))
  if issues.shape != (n, c):  # some versions return (C, N)
    issues = issues.T
  cl_sel = issues & candidate
  counts = cl_sel.sum(axis=0)
  cap = flagging.flag_count(flags.max_percent, flags.num_implicit)
  p_cl, r_cl = quality(cl_sel)
  p_us, r_us = quality(ours_top(np.minimum(counts, cap)))
  share = 100 * cl_sel.sum() / candidate.sum()
  rows += [common.row(f"{label}cleanlab own budget: {int(cl_sel.sum())} flags ({share:.2f}% of "
                      "implicit negatives), precision", p_cl),
           common.row("  cleanlab own budget: recall", r_cl),
           common.row("  ours at the same per-class counts: precision", p_us),
           common.row("  ours at the same per-class counts: recall", r_us)]
  q = np.asarray(cl_rank.get_label_quality_scores_per_class(labels, probs))
  if q.shape != (n, c):
    q = q.T
  for percent in (1.0, 2.0):
    k = flagging.flag_count(percent, flags.num_implicit)
    sel = np.zeros((n, c), bool)
    for cls in range(c):
      cand = np.flatnonzero(candidate[:, cls])
      sel[cand[np.argsort(q[cand, cls], kind="stable")[:k[cls]]], cls] = True
    p_q, r_q = quality(sel)
    p_o, r_o = quality(ours_top(k))
    rows += [common.row(f"{label}equal budget {percent:g}%: cleanlab quality ranking precision / "
                        "recall", p_q), common.row("  recall", r_q),
             common.row("  ours precision (ranking by teacher score)", p_o),
             common.row("  recall", r_o)]
  rows.append(common.row("base rate (missing among implicit negatives)",
                         missing.sum() / candidate.sum()))
  return rows


def student_rows(work: str, per_epoch: float, max_percent: float):
  from tf_skeptical import training
  sweep = os.path.join(work, "sweep")
  with open(os.path.join(sweep, "results.csv")) as f:
    import csv
    table = list(csv.DictReader(f))
  base = table[0]
  best = max(table, key=lambda r: float(r["d_prime"]))
  runs = int(base.get("runs", 1) or 1)
  teacher_cfg = json.load(open(os.path.join(sweep, "teacher", training.RESULT)))["config"]
  results = []
  for i in range(runs):
    cfg = training.TrainConfig(**dict(teacher_cfg, seed=teacher_cfg["seed"] + i,
                                      reject_per_epoch=per_epoch, reject_max=max_percent))
    model_dir = os.path.join(work, "peers", f"llr_seed{i}")
    if training.is_trained(model_dir):
      results.append(json.load(open(os.path.join(model_dir, training.RESULT))))
    else:
      results.append(training.train(os.path.join(work, "examples", "train"), model_dir, cfg,
                                    eval_dir=os.path.join(work, "examples", "eval"),
                                    verbose=0))
  llr = {k: float(np.mean([r["eval"][k] for r in results])) for k in ("d_prime", "lwlrap")}
  return [
      common.row(f"plain training (p = 0), mean of {runs}: d'", float(base["d_prime"])),
      common.row("  lwlrap", float(base["lwlrap"])),
      common.row(f"skeptical teacher, best p = {float(best['discard_percent']):g}%: d'",
                 float(best["d_prime"])),
      common.row("  lwlrap", float(best["lwlrap"])),
      common.row(f"LL-R ({per_epoch:g}%/epoch, max {max_percent:g}%), mean of {runs}: d'",
                 llr["d_prime"]),
      common.row("  lwlrap", llr["lwlrap"]),
  ]


def main():
  extra = argparse.ArgumentParser(add_help=False)
  extra.add_argument("--demo_dir", default="tfsk_work")
  extra.add_argument("--llr_per_epoch", type=float, default=0.5)
  extra.add_argument("--llr_max", type=float, default=4.0)
  known = args = common.parse_args(__doc__, extra)
  if not os.path.exists(os.path.join(known.demo_dir, "sweep", "results.csv")):
    print(f"peers: no finished demo in {known.demo_dir} (run tfsk_demo first); skipped")
    return
  rows = flag_rows(*demo_flags(known.demo_dir))
  if not args.quick:
    rows += student_rows(known.demo_dir, known.llr_per_epoch, known.llr_max)
  common.report("peers", rows, common.EXPERIMENTS)


if __name__ == "__main__":
  main()
