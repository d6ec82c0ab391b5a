"""The treatments of flagged entries (mask, soft, distill, positive) against plain training,
with both references, overall and on head and tail classes, on one dataset.

  python -m experiments.treatments --set=builtin --demo_dir=tfsk_work
  python -m experiments.treatments --set=harder [--seeds=5] [--percents=0,2] [--ontology]
  python -m experiments.treatments --set=real [--seeds=5] [--treatments=mask,soft,positive]

builtin: reads a finished demo sweep (`tfsk_demo --full`: mask, soft and positive at p =
2%, 5 seeds). harder: simulates the harder set (experiments.harder_set's data: an
ontology, parents often missing), and runs the sweep with every treatment at embedding
level, with class-balanced sampling (PANNs' AudioSet recipe; --balanced=0 for the
unbalanced one, under which the tail classes lose whenever the head classes' labels are
corrected); without the ontology it also gives the complete labels back to the head classes
only and to the tail classes only. --ontology trains and flags with the set's ontology.json
(labels propagated to ancestors, no flag on a labelled class's ancestor), in a sweep
directory of its own, and compares its baseline with the plain one, paired by seed. real: the real-recordings set
(experiments.real_recordings: Debian packages' recordings, downloaded once), prepared and swept
with the demo's recipe (MobileNetV1 w0.25, 8 epochs; --balanced=1 for class-balanced
sampling); --ontology as for harder; --pretrained: teacher and students start from a
tagger pretrained on recordings disjoint from the set (experiments.pretrain_pool), in sweep
directories of their own, compared with the same recipe from random weights, paired by
seed. --deterministic_input=1 (harder and real): every run of
a seed gets the same batches in the same order, in sweep directories of their own.

For every treatment at every p and both references (complete labels, perfect mask): the d'
and lwlrap gains over the baseline with 95% intervals over seeds and eval clips, on all
classes, on the head (classes with more train positives than the median class) and on the
tail (the rest); then the goal: significant in both metrics (every interval above 0), at
least half of the complete labels' lwlrap gain, and more d' than the perfect mask.
Writes <sweep dir>/treatments.md, and its rows (marked with the set) into
experiments/results/treatments.json beside the other sets' (experiments/RESULTS.md, `python -m experiments
--report`).
"""

import argparse
import json
import os
import sys

import numpy as np

import harness as common
from tf_skeptical.verdict import HEAD, TAIL

COMMAND = "python -m experiments.treatments"  # as run (set by _parse), recorded with its rows


def _parse():
  extra = argparse.ArgumentParser(add_help=False)
  extra.add_argument("--set", choices=("builtin", "harder", "real"), default="builtin")
  extra.add_argument("--demo_dir", default="tfsk_work")
  extra.add_argument("--seeds", type=int, default=5)
  extra.add_argument("--percents", default="0,2")
  extra.add_argument("--treatments", default="mask,soft,distill,positive")
  extra.add_argument("--ontology", action="store_true")
  extra.add_argument("--pretrained", action="store_true")
  extra.add_argument("--flag_min_positives", type=int, default=0)
  extra.add_argument("--clips", type=int, default=20000)
  extra.add_argument("--classes", type=int, default=200)
  extra.add_argument("--epochs", type=int, default=8)
  extra.add_argument("--bootstrap", type=int, default=200)
  # Class-balanced sampling (training.balanced_clip_weights; PANNs' AudioSet recipe): on
  # by default for the harder set, whose long tail the unbalanced recipe sacrifices.
  extra.add_argument("--balanced", type=int, choices=(0, 1), default=None)
  # Batches in the same order for every run of a seed (training.TrainConfig
  # deterministic_input): a student and its baseline of one seed differ only by their
  # targets, so their paired gain carries less of the batch order's noise.
  extra.add_argument("--deterministic_input", type=int, choices=(0, 1), default=0)
  global COMMAND
  COMMAND = " ".join(["python -m experiments.treatments"] + sys.argv[1:])
  args = common.parse_args(__doc__, extra)
  return args, args


def class_split(sweep_dir: str):
  """verdict.head_and_tail of the train positives counted in the teacher's score records
  (which carry each clip's positives), and those counts."""
  from tf_skeptical import scoring, sweep, verdict
  scores = scoring.read_scores(os.path.join(sweep_dir, sweep.SCORES))
  counts = np.bincount(scores.positives[1], minlength=scores.scores.shape[1])
  return verdict.head_and_tail(counts), counts


def _scores(sweep_dir, eval_dir, dirs):
  from tf_skeptical import evaluation
  return [evaluation.eval_scores(d, eval_dir)[2] for d in dirs]


def gains_by_part(labels, students, baselines, split, params):
  """paired_gain on all classes and on each part of the split (columns of the eval set)."""
  from tf_skeptical import verdict
  out = {"all": verdict.paired_gain(labels, students, baselines, params)}
  for part, cols in split.items():
    out[part] = verdict.paired_gain(labels[:, cols], [s[:, cols] for s in students],
                                    [b[:, cols] for b in baselines], params)
  return out


def gain_rows(what: str, g, show: bool = True):
  """Report rows of gains_by_part's result: each metric's gain on all, head and tail classes,
  with its intervals in the row's name (printed too, with show)."""
  from tf_skeptical import verdict
  rows = []
  for part in ("all", HEAD, TAIL):
    for metric, k in verdict.METRICS.items():
      line = f"{what}, {part} classes: {metric} gain {verdict.describe(g[part], metric)}"
      if show:
        print(line)
      rows.append(common.row(line, g[part][k + "gain"]))
  return rows


def run_groups(table, sweep_dir, reference_sweep_dir, seeds, prefix="", reference_prefix=""):
  """{name: one model dir per seed}: each first-round treatment and p of `table` (in
  sweep_dir), then the complete-label and perfect-mask references of reference_sweep_dir
  where all their seeds have finished."""
  from tf_skeptical import sweep
  runs = {}
  for r in table:
    if r["discard_percent"] > 0 and r.get("round", 1) == 1:
      runs[f"{prefix}{r['treatment']}, p = {r['discard_percent']:g}%"] = [
          sweep.row_dir(sweep_dir, r, i) for i in range(seeds)]
  for name in (sweep.COMPLETE, sweep.PERFECT_MASK):
    dirs = [sweep.reference_dir(reference_sweep_dir, name, i) for i in range(seeds)]
    if all(os.path.exists(os.path.join(d, "result.json")) for d in dirs):
      runs[reference_prefix + name.replace("_", " ")] = dirs
  return runs


def analyse(sweep_dir: str, eval_dir: str, table, seeds: int, params):
  """Rows for the report and the markdown table: every treatment's rows and the
  references, overall, head and tail; and the goal's verdict per treatment."""
  from tf_skeptical import evaluation, sweep
  split, counts = class_split(sweep_dir)
  _, labels, _ = evaluation.eval_scores(sweep.run_dir(sweep_dir, 0.0), eval_dir)
  baselines = _scores(sweep_dir, eval_dir, [sweep.run_dir(sweep_dir, 0.0, i)
                                            for i in range(seeds)])
  runs = run_groups(table, sweep_dir, sweep_dir, seeds)
  gains = {name: gains_by_part(labels, _scores(sweep_dir, eval_dir, dirs), baselines, split,
                               params) for name, dirs in runs.items()}
  for name in ("complete", "perfect mask"):
    if name in gains:
      gains[name]["reference"] = True
  occurring = counts[counts > 0]
  lines = [f"Head: the {split[HEAD].size} classes with more train positives than the median "
           f"({np.median(occurring) if occurring.size else 0:g}) of the {occurring.size} "
           f"classes that have any; tail: the other {split[TAIL].size} of them"
           + (f" ({counts.size - occurring.size} classes without a train positive are in "
              "neither)" if counts.size > occurring.size else "")
           + f". {seeds} seeds; 95% intervals [seeds; eval clips].\n"] + baseline_lines(
               sweep_dir, eval_dir, seeds)
  text, rows = report_gains(gains, gains.get("complete"), gains.get("perfect mask"), lines)
  with open(os.path.join(sweep_dir, "treatments.md"), "w") as f:
    f.write(text)
  print(text)
  return rows


def _cell(g, metric="d_prime"):
  from tf_skeptical import verdict
  k = verdict.METRICS[metric]
  mark = " *" if g[k + "significant"] and g[k + "gain"] > 0 else ""
  return (f"{g[k + 'gain']:+.3f} [{g[k + 'gain_seed_low']:+.3f}, {g[k + 'gain_seed_high']:+.3f}; "
          f"{g[k + 'gain_clip_low']:+.3f}, {g[k + 'gain_clip_high']:+.3f}]{mark}")


def report_gains(gains, complete, perfect, lines, what: str = ""):
  """The markdown table of gains (name -> gains_by_part), the goal's verdict for each run that
  is not a reference (against complete's and perfect's gains_by_part, either may be None),
  and their report rows (names prefixed with what); returns (text, rows)."""
  lines = list(lines) + [
      "| run | d' gain | lwlrap gain | head d' | tail d' | head lwlrap | tail lwlrap |",
      "|---|---|---|---|---|---|---|"]
  rows = []
  for name, g in gains.items():
    lines.append(f"| {name} | {_cell(g['all'])} | {_cell(g['all'], 'lwlrap')} | "
                 f"{_cell(g[HEAD])} | {_cell(g[TAIL])} | {_cell(g[HEAD], 'lwlrap')} | "
                 f"{_cell(g[TAIL], 'lwlrap')} |")
    rows += gain_rows(f"{what}{name}", g, show=False)
  lines.append("\n* every interval above 0.\n")
  complete, perfect = (r and r["all"] for r in (complete, perfect))
  for name, g in gains.items():
    if g.get("reference"):
      continue
    g = g["all"]
    checks = [("significant d' gain", g["significant"] and g["gain"] > 0),
              ("significant lwlrap gain", g["lwlrap_significant"] and g["lwlrap_gain"] > 0)]
    if complete:
      share = g["lwlrap_gain"] / complete["lwlrap_gain"] if complete["lwlrap_gain"] > 0 else 0
      checks.append((f"{100 * share:.0f}% of the complete labels' lwlrap gain (>= 50%)",
                     share >= 0.5))
    if perfect:
      checks.append((f"d' {g['gain']:+.3f} vs the perfect mask's {perfect['gain']:+.3f}",
                     g["gain"] > perfect["gain"]))
    met = all(ok for _, ok in checks)
    lines.append(f"- {what}{name}: {'meets the goal' if met else 'misses the goal'} ("
                 + "; ".join(f"{c}: {'yes' if ok else 'no'}" for c, ok in checks) + ")")
    rows.append(common.row(f"{what}{name}: meets the goal (1 = yes)", float(met)))
  return "\n".join(lines) + "\n", rows


def builtin(known, args):
  import csv
  from tf_skeptical import sweep, verdict
  sweep_dir = os.path.join(known.demo_dir, "sweep")
  eval_dir = os.path.join(known.demo_dir, "examples", "eval")
  if not os.path.exists(os.path.join(sweep_dir, sweep.RESULTS_CSV)):
    print(f"treatments: no finished demo in {known.demo_dir} (run tfsk_demo --full "
          "first); skipped")
    return None
  with open(os.path.join(sweep_dir, sweep.RESULTS_CSV)) as f:
    table = [dict(r, discard_percent=float(r["discard_percent"]), round=int(r["round"]))
             for r in csv.DictReader(f)]
  seeds = min(known.seeds, int(table[0]["runs"]))  # the runs the demo made
  return analyse(sweep_dir, eval_dir, table, seeds,
                 verdict.VerdictParams(bootstrap=known.bootstrap))


def _in_order(known) -> str:
  """The sweep directories' suffix for --deterministic_input."""
  return "_deterministic" if known.deterministic_input else ""


def real(known, args):
  """The real-recordings set (experiments.real_recordings), at the demo's size and recipe."""
  from experiments import real_recordings
  from tf_skeptical import sweep, training, verdict
  work = os.path.join(args.work_dir, "real_recordings")
  train_dir, eval_dir, truth, onto_path = real_recordings.prepared(work)
  params = verdict.VerdictParams(bootstrap=known.bootstrap)
  init_from = ""
  if known.pretrained:
    from experiments import pretrain_pool
    init_from = pretrain_pool.pretrained(
        args.work_dir, real_recordings.fetch(os.path.join(work, "debs")))
  cfg = sweep.SweepConfig(
      train=training.TrainConfig(width=0.25, epochs=known.epochs, balanced=bool(known.balanced),
                                 deterministic_input=bool(known.deterministic_input),
                                 init_from=init_from),
      ontology=onto_path if known.ontology else "",
      percents=tuple(float(p) for p in known.percents.split(",")), seeds=known.seeds,
      treatments=tuple(known.treatments.split(",")),
      flag_min_positives=known.flag_min_positives, verdict_params=params)
  recipe = "sweep" + ("_balanced" if known.balanced else "") + _in_order(known)
  plain = recipe + ("_pretrained" if known.pretrained else "")
  suffix = ("_ontology" if known.ontology else "") + (
      f"_min{known.flag_min_positives}" if known.flag_min_positives else "")
  sweep_dir = os.path.join(work, plain + suffix)
  table = sweep.run(train_dir, eval_dir, sweep_dir, cfg, truth).table
  rows = analyse(sweep_dir, eval_dir, table, known.seeds, params)
  if known.ontology:
    rows += ontology_vs_plain(sweep_dir, os.path.join(work, plain), eval_dir, known.seeds,
                              params, table)
  if known.pretrained:
    rows += pretrained_vs_random(sweep_dir, os.path.join(work, recipe + suffix), eval_dir,
                                 known.seeds, params, table)
  return rows


def harder(known, args):
  from experiments import harder_set
  from tf_skeptical.datasets import audioset_simulation as sim
  from tf_skeptical import sweep, training, verdict
  work = os.path.join(args.work_dir, "harder_set")
  train_dir, eval_dir, truth = harder_set.dataset(work, known.clips, 3000, known.classes)
  onto = os.path.join(work, "sim", sim.ONTOLOGY) if known.ontology else ""
  balanced = known.balanced is None or bool(known.balanced)
  params = verdict.VerdictParams(bootstrap=known.bootstrap)
  cfg = sweep.SweepConfig(
      train=training.TrainConfig(model="embedding_mlp", width=0.5, epochs=known.epochs,
                                 batch_size=256, balanced=balanced,
                                 deterministic_input=bool(known.deterministic_input)),
      ontology=onto,
      percents=tuple(float(p) for p in known.percents.split(",")), max_percent=20.0,
      score_workers=1, seeds=known.seeds, treatments=tuple(known.treatments.split(",")),
      flag_min_positives=known.flag_min_positives, verdict_params=params)
  plain = "sweep_treatments" + ("" if balanced else "_unbalanced") + _in_order(known)
  name = plain + ("_ontology" if onto else "") + (
      f"_min{known.flag_min_positives}" if known.flag_min_positives else "")
  sweep_dir = os.path.join(work, name)
  table = sweep.run(train_dir, eval_dir, sweep_dir, cfg, truth).table
  rows = analyse(sweep_dir, eval_dir, table, known.seeds, params)
  if onto:
    rows += ontology_vs_plain(sweep_dir, os.path.join(work, plain), eval_dir, known.seeds,
                              params, table)
  else:
    rows += partial_corrections(train_dir, eval_dir, sweep_dir, cfg, truth)
  return rows


def partial_corrections(train_dir, eval_dir, sweep_dir, cfg, truth_csv):
  """The complete labels given back to the head classes only, and to the tail classes only
  (each paired by seed with the baseline, on all classes, head and tail): which classes'
  missing labels the d' and lwlrap of this set depend on."""
  from tf_skeptical import evaluation, side_by_side, sweep
  from tf_skeptical.data import examples
  from tf_skeptical.sweep import runs
  split, _ = class_split(sweep_dir)
  truth = evaluation.read_truth(truth_csv, examples.read_info(train_dir).class_map)
  dirs = {}
  with side_by_side.Runner(cfg.resolved_jobs()) as runner:
    futures = []
    for part, cols in split.items():
      given = evaluation.truth_as_entries({(clip, c) for clip, c in truth
                                           if c in set(cols.tolist())})
      dirs[part] = [os.path.join(sweep_dir, "students", f"complete_{part}_only_seed{i}")
                    for i in range(cfg.seeds)]
      futures += [runs.submit(runner, train_dir, eval_dir, runs.Run(
          d, cfg.seeded(i), added_positives=given, ontology=cfg.propagated))
                  for i, d in enumerate(dirs[part])]
    runs.results(futures)
  _, labels, _ = evaluation.eval_scores(sweep.run_dir(sweep_dir, 0.0), eval_dir)
  baselines = _scores(sweep_dir, eval_dir, [sweep.run_dir(sweep_dir, 0.0, i)
                                            for i in range(cfg.seeds)])
  rows = []
  for part, model_dirs in dirs.items():
    g = gains_by_part(labels, _scores(sweep_dir, eval_dir, model_dirs), baselines, split,
                      cfg.verdict_params)
    missing = sum(1 for _, c in truth if c in set(split[part].tolist()))
    rows += gain_rows(f"complete labels of the {part} classes only ({missing} missing labels)",
                      g)
  return rows


def ontology_vs_plain(onto_dir, plain_dir, eval_dir, seeds, params, table):
  """What a user gets from the ontology, against plain training on the labels as given (the
  plain sweep's baseline, paired by seed): the propagated baseline alone, and the ontology
  with each treatment of `table` (the ontology sweep's rows), with the goal's verdict against
  the plain sweep's references. Appended to the ontology sweep's treatments.md; nothing when
  the plain sweep has not run these seeds."""
  return against_other_sweep(
      onto_dir, plain_dir, eval_dir, seeds, params, table,
      heading="Against plain training (the labels as given, no ontology)",
      alone="ontology alone (its baseline)", prefix="ontology + ", other_prefix="plain ",
      what="against plain training: ")


def pretrained_vs_random(pretrained_dir, random_dir, eval_dir, seeds, params, table):
  """What the pretrained start gives, against the same recipe from random weights (that
  sweep's baseline, paired by seed): the pretrained baseline alone, and each treatment of
  `table` from the pretrained start; nothing when the random-weights sweep has not run these
  seeds."""
  return against_other_sweep(
      pretrained_dir, random_dir, eval_dir, seeds, params, table,
      heading="Against random weights (the same recipe without the pretrained start)",
      alone="pretrained start alone (its baseline)", prefix="pretrained + ",
      other_prefix="random weights ", what="against random weights: ")


def against_other_sweep(this_dir, other_dir, eval_dir, seeds, params, table, *, heading,
                        alone, prefix, other_prefix, what):
  """This sweep's baseline and first-round treatments against the other sweep's baseline
  (paired by seed), with the goal's verdict against the other sweep's references; appended
  to this sweep's treatments.md. [] when the other sweep has not run these seeds."""
  from tf_skeptical import evaluation, sweep
  other_runs = [sweep.run_dir(other_dir, 0.0, i) for i in range(seeds)]
  if not all(os.path.exists(os.path.join(d, "result.json")) for d in other_runs):
    return []
  split, _ = class_split(this_dir)
  _, labels, _ = evaluation.eval_scores(sweep.run_dir(this_dir, 0.0), eval_dir)
  runs = {alone: [sweep.run_dir(this_dir, 0.0, i) for i in range(seeds)]}
  runs.update(run_groups(table, this_dir, other_dir, seeds, prefix, other_prefix))
  baselines = _scores(other_dir, eval_dir, other_runs)
  gains = {name: gains_by_part(labels, _scores(this_dir, eval_dir, dirs), baselines, split,
                               params) for name, dirs in runs.items()}
  complete, perfect = (other_prefix + n for n in ("complete", "perfect mask"))
  for name in (complete, perfect):
    if name in gains:
      gains[name]["reference"] = True
  text, rows = report_gains(
      gains, gains.get(complete), gains.get(perfect),
      [f"\n## {heading}\n",
       f"Each run paired by seed with {other_dir}'s baseline; the references are that "
       "sweep's.\n"] + baseline_lines(other_dir, eval_dir, seeds, f"{other_prefix}baseline"),
      what=what)
  with open(os.path.join(this_dir, "treatments.md"), "a") as f:
    f.write(text)
  print(text)
  return rows


def baseline_lines(sweep_dir, eval_dir, seeds, name="baseline"):
  """One line: the sweep's baseline (p = 0) d' and lwlrap, mean and spread over seeds."""
  from tf_skeptical import evaluation, metrics, sweep
  values = []
  for i in range(seeds):
    _, labels, scores = evaluation.eval_scores(sweep.run_dir(sweep_dir, 0.0, i), eval_dir)
    values.append(metrics.evaluate(labels, scores).summary())
  parts = []
  for metric in ("d_prime", "lwlrap"):
    v = np.array([x[metric] for x in values])
    parts.append(f"{metric} {v.mean():.3f} (sd {v.std(ddof=1) if seeds > 1 else 0:.3f}, "
                 f"range {v.min():.3f}-{v.max():.3f})")
  return [f"{name} over {seeds} seeds: " + ", ".join(parts) + ".\n"]


def main():
  known, args = _parse()
  if args.quick:
    print("treatments: trains dozens of students; not a --quick benchmark, skipped")
    return
  rows = dict(builtin=builtin, harder=harder, real=real)[known.set](known, args)
  if rows is None:
    return
  balanced = known.balanced is None if known.set == "harder" else bool(known.balanced)
  label = known.set + (
      "" if balanced == (known.set == "harder") else
      ", balanced" if balanced else ", unbalanced") + (
      ", deterministic input" if known.deterministic_input else "") + (
      ", pretrained" if known.pretrained else "") + (
      ", ontology" if known.ontology else "") + (
      f", flag_min_positives {known.flag_min_positives}" if known.flag_min_positives else "")
  # One stored result for every set: this set's rows replace its earlier ones.
  path = os.path.join(common.EXPERIMENTS, "results", "treatments.json")
  kept = []
  if os.path.exists(path):
    with open(path) as f:
      kept = [r for r in json.load(f)["rows"] if not r["metric"].startswith(f"[{label}] ")]
  rows = [dict(r, metric=f"[{label}] {r['metric']}") for r in rows]
  rows.insert(0, common.row(f"[{label}] {COMMAND}", known.seeds))  # the command, and seeds
  common.report("treatments", kept + rows, common.EXPERIMENTS)


if __name__ == "__main__":
  main()
