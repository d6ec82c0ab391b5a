"""The sweep's report: the table's rows (each p's mean metrics, d' spread, flag quality and
its gain over the baseline, paired by seed, verdict.py), results.csv/.md with the
references, the paper's figure, and TensorBoard's HParams dashboard."""

import os
from typing import Dict, List, Optional, Sequence

import matplotlib
import numpy as np
import tensorflow as tf
from tensorboard.plugins.hparams import api as hp

from tf_skeptical import errors
from tf_skeptical import evaluation, treatments, verdict
from tf_skeptical.util import files
from tf_skeptical.sweep import layout

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the file-only backend)


METRIC_NAMES = {"d_prime": "d'", "lwlrap": "lwlrap", "mAP": "mAP"}


_NO_GAIN = dict(paired_runs=0, **{
    prefix + key: float("nan") for prefix in verdict.METRICS.values()
    for key in ("gain", "gain_seed_low", "gain_seed_high", "gain_clip_low", "gain_clip_high")},
    **{prefix + "significant": "" for prefix in verdict.METRICS.values()})


def best_row(rows: Sequence[Dict]) -> Dict:
  """The best of these table rows: the highest mean d' (the sweep's, a round's teacher, the
  one exported; with the baseline among them, the baseline when no student beats it)."""
  return max(rows, key=lambda r: r["d_prime"])


def table_row(p: float, results: List[Dict], quality: Dict, gain: Optional[Dict],
              round_index: int, teacher: str, treatment: str = treatments.MASK) -> Dict:
  """One row of the table: the runs' mean metrics, d' spread, flag quality and gain."""
  evals = [r["eval"] for r in results]
  mean = {k: float(np.mean([e[k] for e in evals])) for k in ("d_prime", "lwlrap", "mAP", "AUC")}
  answered = results[0].get("verdicts") or {}  # a listening test's verdicts (targets.py)
  return dict(round=round_index, treatment=treatment if p else "", discard_percent=p,
              teacher=teacher if p else "",
              masked_entries=results[0].get("masked_entries", 0),
              verdicts=answered.get("confirmed", 0) + answered.get("rejected", 0),
              verdicts_confirmed=answered.get("confirmed", 0), runs=len(evals), **mean,
              d_prime_min=min(e["d_prime"] for e in evals),
              d_prime_max=max(e["d_prime"] for e in evals),
              flag_precision=quality.get("precision", float("nan")),
              flag_recall=quality.get("recall", float("nan")),
              base_rate=quality.get("base_rate", float("nan")),
              flag_classes=quality.get("classes", 0),
              classes_without_positives=quality.get("classes_without_positives", 0),
              flagged_without_positives=quality.get("flagged_without_positives", 0),
              **(gain or _NO_GAIN))


def verdicts(work_dir: str, eval_dir: str, percents: Sequence[float], seeds: int,
             params: verdict.VerdictParams = verdict.VerdictParams(),
             round_index: int = 1, treatment: str = treatments.MASK) -> Dict[float, Dict]:
  """Per p > 0 of a round and treatment: the paired gain over the baseline with its
  intervals (verdict.py)."""
  runs = {p: [evaluation.eval_scores(layout.run_dir(work_dir, p, i, round_index, treatment),
                                     eval_dir) for i in range(seeds)]
          for p in sorted(set(percents) | {0.0})}
  ids, labels, _ = runs[0.0][0]
  if any(list(r[0]) != list(ids) for rs in runs.values() for r in rs):
    raise errors.Failed(f"runs in {work_dir} were evaluated on different eval clips")
  baselines = [r[2] for r in runs[0.0]]
  return {p: verdict.paired_gain(labels, [r[2] for r in rs], baselines, params)
          for p, rs in runs.items() if p > 0}


def against_plain(work_dir: str, plain_dir: str, eval_dir: str, table: List[Dict],
                  seeds: int, params: verdict.VerdictParams = verdict.VerdictParams(),
                  name: str = "with the verdicts") -> str:
  """Markdown: every first-round run of `table` (a sweep in work_dir trained otherwise,
  `name`: e.g. on a listening test's verdicts) against plain training (plain_dir's
  baseline), paired by seed, beside plain_dir's own students: what the difference buys."""
  _, labels, _ = evaluation.eval_scores(layout.run_dir(plain_dir, 0.0), eval_dir)
  plain = [evaluation.eval_scores(layout.run_dir(plain_dir, 0.0, i), eval_dir)[2]
           for i in range(seeds)]
  lines = ["| run | d' gain over plain training | lwlrap gain |", "|---|---|---|"]
  for where, label in ((plain_dir, "plain"), (work_dir, name)):
    for r in table:
      if r.get("round", 1) != 1 or (where == plain_dir and not r["discard_percent"]):
        continue
      dirs = [layout.row_dir(where, r, i) for i in range(seeds)]
      if not all(files.exists(os.path.join(d, "result.json")) for d in dirs):
        continue
      g = verdict.paired_gain(labels, [evaluation.eval_scores(d, eval_dir)[2] for d in dirs],
                              plain, params)
      what = (f"{r['treatment']}, p = {r['discard_percent']:g}%" if r["discard_percent"]
              else "the rest as given")
      lines.append(f"| {label}: {what} | {verdict.describe(g)} | "
                   f"{verdict.describe(g, 'lwlrap')} |")
  return "\n".join(lines) + "\n"


def reference_summary(work_dir: str, eval_dir: str, seeds: int, params: verdict.VerdictParams,
                      name: str, results: List[Dict], missing_labels: int) -> Dict:
  """A reference's mean d' and lwlrap over its seeds and its gain over the baseline,
  paired by seed (verdict.paired_gain)."""
  _, labels, _ = evaluation.eval_scores(layout.run_dir(work_dir, 0.0), eval_dir)
  baselines = [evaluation.eval_scores(layout.run_dir(work_dir, 0.0, i), eval_dir)[2]
               for i in range(seeds)]
  scores = [evaluation.eval_scores(layout.reference_dir(work_dir, name, i), eval_dir)[2]
            for i in range(seeds)]
  return dict(d_prime=float(np.mean([r["eval"]["d_prime"] for r in results])),
              lwlrap=float(np.mean([r["eval"]["lwlrap"] for r in results])),
              missing_labels=missing_labels,
              **verdict.paired_gain(labels, scores, baselines, params))


def write_table(table: List[Dict], work_dir: str, references: Optional[Dict] = None) -> str:
  """results.csv and results.md: the table, then the references (orchestration.reference_runs) and how
  much of the missing labels' cost the best p recovers."""
  evaluation.write_rows(table, os.path.join(work_dir, layout.RESULTS_CSV))
  base = table[0]
  runs = table[0].get("runs", 1)
  rounds = max(r.get("round", 1) for r in table) > 1
  lines = ["d' = sqrt(2) * Phi^-1(AUC averaged over classes), as AudioSet papers report it.",
           f"Means over {runs} run(s) per p (seeds); d' range = lowest..highest run.\n" if runs > 1
           else "",
           "Gains: d' and lwlrap over the baseline, paired by seed, with 95% intervals over "
           "seeds and over eval clips (bootstrap); significant when every interval excludes 0.\n",
           "Round r >= 2: the flags of the best student of round r - 1 (its teacher column).\n"
           if rounds else "",
           (f"Every run but the references trained on {base['verdicts']} verdicts of a "
            f"listening test ({base['verdicts_confirmed']} confirmed present, "
            f"{base['verdicts'] - base['verdicts_confirmed']} absent).\n")
           if base.get("verdicts") else "",
           "Treatment: what the student does with the flagged entries (mask: left out of the "
           "loss; soft: the teacher's score as target; distill<w>: every target (1 - w) x "
           "label + w x teacher, flagged ones the teacher's; positive: made positives).\n",
           ("| round | teacher " if rounds else "") +
           "| treatment | discard % | flagged entries | d' | d' range | lwlrap | mAP | "
           "flag precision | flag recall | d' gain [95% intervals]: verdict | lwlrap gain "
           "[95% intervals]: verdict |",
           ("|---:|---" if rounds else "") +
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"]
  for r in table:
    def delta(k):
      d = r[k] - base[k]
      return f"{r[k]:.3f}" + ("" if r is base else f" ({d:+.3f})")
    prec = "" if np.isnan(r["flag_precision"]) else f"{r['flag_precision']:.3f}"
    rec = "" if np.isnan(r["flag_recall"]) else f"{r['flag_recall']:.3f}"
    spread = f"{r.get('d_prime_min', r['d_prime']):.3f}..{r.get('d_prime_max', r['d_prime']):.3f}"
    gains = (f"{verdict.describe(r)} | {verdict.describe(r, 'lwlrap')}"
             if r.get("paired_runs") else "baseline | baseline")
    lines.append((f"| {r['round']} | {r['teacher']} " if rounds else "") +
                 f"| {r.get('treatment') or 'baseline'} "
                 f"| {r['discard_percent']:g} | {r['masked_entries']} | {delta('d_prime')} | "
                 f"{spread} | {delta('lwlrap')} | {delta('mAP')} | {prec} | {rec} | {gains} |")
  lines += _reference_lines(table, references or {})
  if not np.isnan(table[-1]["base_rate"]):
    lines.append(f"\nBase rate (missing labels among implicit negatives, the precision of "
                 f"random flags): {table[-1]['base_rate']:.4f}")
    absent = table[-1].get("classes_without_positives", 0)
    if absent:
      took = max(r.get("flagged_without_positives", 0) for r in table)
      lines.append(f"Flag precision, recall and the base rate are over the "
                   f"{table[-1]['flag_classes']} classes with train positives; the {absent} "
                   f"classes without one (the teacher never saw them present) "
                   + (f"took up to {took} flags." if took else "took no flags."))
  text = "\n".join(l for l in lines if l) + "\n"
  path = os.path.join(work_dir, layout.RESULTS_MD)
  with files.atomic_write(path) as f:
    f.write(text)
  return text


def _reference_lines(table: List[Dict], references: Dict[str, Dict]) -> List[str]:
  """What the missing labels cost, what a perfect mask recovers, and the best p's share of
  each, for d' and for lwlrap."""
  complete, perfect = references.get(layout.COMPLETE), references.get(layout.PERFECT_MASK)
  lines = []
  if not references:
    return lines
  for ref, what in ((complete, "Complete labels (the {n} missing ones added back)"),
                    (perfect, "Perfect mask (exactly the {n} missing labels masked: flags of "
                     "precision and recall 1)")):
    if ref:
      lines.append(f"\n{what.format(n=ref['missing_labels'])}, same recipe and seeds: d' "
                   f"{ref['d_prime']:.3f}, gain {verdict.describe(ref)}; lwlrap "
                   f"{ref['lwlrap']:.3f}, gain {verdict.describe(ref, 'lwlrap')}.")
  best = best_row(table[1:] or table)
  if not best.get("paired_runs"):
    return lines
  which = f", round {best['round']}" if len(_by_round(table)) > 1 else ""
  if (best.get("treatment") or treatments.MASK) != treatments.MASK:
    which = f", {best['treatment']}{which}"
  for metric, prefix in verdict.METRICS.items():
    name = METRIC_NAMES[metric]
    head = f"By {name}, the best p ({best['discard_percent']:g}%{which})"
    if not best[prefix + "significant"]:
      lines.append(f"{head} gains {best[prefix + 'gain']:+.3f}, within noise (an interval "
                   "includes 0): no share of the references' gains is claimed.")
      continue
    shares = [_share(best[prefix + "gain"], ref, prefix, label)
              for ref, label in ((complete, "what the missing labels cost"),
                                 (perfect, "what a perfect mask gains")) if ref]
    if complete and perfect:
      shares.append("a perfect mask itself recovers " + _share(
          perfect[prefix + "gain"], complete, prefix, "the cost"))
    lines.append(f"{head} recovers " + "; ".join(shares) + "." if shares else
                 f"{head} gains {best[prefix + 'gain']:+.3f}; no reference was trained.")
  return lines


def _share(gain: float, reference: Dict, prefix: str, what: str) -> str:
  """A gain as a share of a reference's gain, in words: 'within noise' where the
  reference's own gain is (a share of noise means nothing), and a share above 100% said
  to be one."""
  ref = reference[prefix + "gain"]
  if not reference[prefix + "significant"] or ref <= 0:
    return (f"none of {what}, which is within noise ({ref:+.3f}, an interval includes 0)"
            if not reference[prefix + "significant"] else
            f"none of {what}: the reference lost ({ref:+.3f})")
  share = 100 * gain / ref
  return f"{share:.0f}% of {what}" + (
      " (over 100%: more than the reference itself gained)" if share > 100 else "")


def results_text(work_dir: str) -> str:
  """results.md as written by the last run."""
  with files.open(os.path.join(work_dir, layout.RESULTS_MD)) as f:
    return f.read()


def _percent_axis(ax, percents):
  """The paper's grid is far from uniform: evenly spaced points labelled with their p."""
  ax.set_xticks(range(len(percents)), [f"{p:g}" for p in percents])
  ax.set_xlabel("% of implicit negatives per class")
  ax.grid(alpha=0.3)


def _by_round(rows: List[Dict]) -> Dict[int, List[Dict]]:
  out = {}
  for r in rows:
    out.setdefault(r.get("round", 1), []).append(r)
  return out


def _series(table: List[Dict]) -> Dict[str, List[Dict]]:
  """The students' rows by (round, treatment), named for a plot's legend."""
  rounds = len(_by_round(table)) > 1
  out = {}
  for r in table:
    if r["discard_percent"] > 0:
      name = (r.get("treatment") or treatments.MASK) + (
          f", round {r.get('round', 1)}" if rounds else "")
      out.setdefault(name, []).append(r)
  return out


def plot(table: List[Dict], quality: List[Dict], work_dir: str) -> List[str]:
  """The paper's figure (metrics against % discarded, baseline dashed; one line per round)
  and flag quality."""
  percents = sorted({r["discard_percent"] for r in table})
  x = {p: i for i, p in enumerate(percents)}
  base, series = table[0], _series(table)
  paths = []
  fig, axes = plt.subplots(1, 5, figsize=(21, 3.6))
  for ax, key, label in zip(axes, ("d_prime", "lwlrap", "mAP"),
                            ("d' (from mean AUC)", "lwlrap", "mAP")):
    for k, (name, rows) in enumerate(series.items()):
      rows = [base] + rows
      xs = [x[r["discard_percent"]] for r in rows]
      line, = ax.plot(xs, [r[key] for r in rows], "o-", label=f"{name} (mean over seeds)")
      if key == "d_prime" and base.get("runs", 1) > 1:
        ax.fill_between(xs, [r["d_prime_min"] for r in rows], [r["d_prime_max"] for r in rows],
                        alpha=0.15, color=line.get_color(),
                        label="range over seeds" if k == 0 else None)
    ax.axhline(base[key], color="gray", ls="--", label="baseline (p = 0)")
    ax.set_title(f"{label} on the eval set")
    _percent_axis(ax, percents)
  axes[0].legend()
  _plot_gains(axes[3], table, x, "d_prime")
  _plot_gains(axes[4], table, x, "lwlrap")
  fig.tight_layout()
  paths.append(os.path.join(work_dir, layout.PLOT_METRICS))
  files.save_figure(fig, paths[-1], dpi=110)
  plt.close(fig)
  if quality:
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    by_round = _by_round(quality)
    grid = sorted({r["percent"] for r in quality})
    for k, rows in by_round.items():
      rows = sorted(rows, key=lambda r: r["percent"])
      xs = [grid.index(r["percent"]) for r in rows]
      suffix = "" if len(by_round) == 1 else f", round {k}"
      ax.plot(xs, [r["precision"] for r in rows], "o-", color=f"C{k - 1}",
              label="precision" + suffix)
      ax.plot(xs, [r["recall"] for r in rows], "s:", color=f"C{k - 1}", label="recall" + suffix)
    ax.axhline(quality[0]["base_rate"], color="gray", ls="--", label="base rate (random flags)")
    ax.set_title("flags against the known missing labels")
    _percent_axis(ax, grid)
    ax.legend()
    fig.tight_layout()
    paths.append(os.path.join(work_dir, layout.PLOT_FLAGS))
    files.save_figure(fig, paths[-1], dpi=110)
    plt.close(fig)
  return paths


def _plot_gains(ax, table: List[Dict], x: Dict[float, int], metric: str) -> None:
  """Each p's paired gain in a metric (verdict.METRICS) with its 95% intervals (clips, and
  seeds where there are 2+), the rounds' and treatments' side by side."""
  k = verdict.METRICS[metric]
  series = _series(table)
  names = list(series)
  labelled = set()
  for name, rows in series.items():
    for r in rows:
      if not r.get("paired_runs"):
        continue
      g = r[k + "gain"]
      j = names.index(name)
      i = x[r["discard_percent"]] + (0.5 / len(names)) * (j - (len(names) - 1) / 2)
      suffix = "" if len(names) == 1 else f", {name}"
      color = f"C{j}"
      ax.errorbar(i - 0.05, g, yerr=[[g - r[k + "gain_clip_low"]], [r[k + "gain_clip_high"] - g]],
                  fmt="o", color=color, capsize=4,
                  label=None if ("clip", suffix) in labelled else "95%: eval clips" + suffix)
      labelled.add(("clip", suffix))
      if not np.isnan(r[k + "gain_seed_low"]):
        ax.errorbar(i + 0.05, g, yerr=[[g - r[k + "gain_seed_low"]],
                                       [r[k + "gain_seed_high"] - g]],
                    fmt="s", color=color, capsize=4, alpha=0.6,
                    label=None if ("seed", suffix) in labelled else "95%: seeds" + suffix)
        labelled.add(("seed", suffix))
      if r[k + "significant"]:
        ax.annotate("*", (i, max(r[k + "gain_clip_high"], g)), ha="center", va="bottom")
  ax.axhline(0, color="gray", ls="--")
  ax.set_title(f"{METRIC_NAMES[metric]} gain over the baseline (* significant)")
  _percent_axis(ax, sorted(x, key=x.get))
  ax.set_xlim(-0.5, len(x) - 0.5)  # room for the rounds' offsets
  ax.legend()


def run_name(row: Dict) -> str:
  """"2%", "2% (soft)", or "2% (soft, round 2)" after the first round (the mask unnamed)."""
  treatment = row.get("treatment") or treatments.MASK
  what = [treatment] if row["discard_percent"] and treatment != treatments.MASK else []
  if row.get("round", 1) > 1:
    what.append(f"round {row['round']}")
  return f"{row['discard_percent']:g}%" + (f" ({', '.join(what)})" if what else "")


def run_label(row: Dict) -> str:
  """"p = 2%" or "p = 2% soft": how a round's teacher is named."""
  t = row.get("treatment") or treatments.MASK
  return f"p = {row['discard_percent']:g}%" + ("" if t == treatments.MASK else f" {t}")


def best_line(best: Dict, table: List[Dict]) -> str:
  if best is table[0]:
    return (f"No student beat the baseline by mean d' (baseline d' {best['d_prime']:.3f}): "
            "the baseline is the best run.")
  text = (f"Best discard percentage by mean d': {run_name(best)} "
          f"(d' {best['d_prime']:.3f} vs baseline {table[0]['d_prime']:.3f})")
  return text + (f"; gain {verdict.describe(best)}." if best.get("paired_runs") else ".")


def write_hparams(table: List[Dict], work_dir: str) -> None:
  """One TensorBoard run per round and p with its hparams and final metrics (the HParams
  dashboard)."""
  root = os.path.join(work_dir, layout.LOGS)
  metric_names = ("d_prime", "lwlrap", "mAP")
  with tf.summary.create_file_writer(root).as_default():
    hp.hparams_config(hparams=[hp.HParam("discard_percent", hp.RealInterval(0.0, 100.0)),
                               hp.HParam("round", hp.IntInterval(1, 100)),
                               hp.HParam("verdicts", hp.IntInterval(0, 2 ** 31 - 1)),
                               hp.HParam("treatment", hp.Discrete(sorted(
                                   {r.get("treatment") or "baseline" for r in table})))],
                      metrics=[hp.Metric(f"final/{m}", display_name=m) for m in metric_names])
  for r in table:
    k = r.get("round", 1)
    t = r.get("treatment") or treatments.MASK
    name = (f"{t}_" if r["discard_percent"] and t != treatments.MASK else "") + (
        f"p{r['discard_percent']:g}") + (f"_round{k}" if k > 1 else "")
    with tf.summary.create_file_writer(os.path.join(root, name)).as_default():
      hp.hparams({"discard_percent": float(r["discard_percent"]), "round": int(k),
                  "verdicts": int(r.get("verdicts", 0)),
                  "treatment": r.get("treatment") or "baseline"}, trial_id=name)
      for m in metric_names:
        tf.summary.scalar(f"final/{m}", r[m], step=0)
