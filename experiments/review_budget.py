"""What a listening test buys: students trained on a simulated reviewer's verdicts
(tf_skeptical.review.simulated: the truth file answers), for budgets of verdicts in the
teacher's order and the same number drawn at random from the implicit negatives (a review
without the teacher), each with the unreviewed entries left as given (the verdicts alone)
and with the treatment on the first teacher's flags, an answer overriding its entry's flag
(what `tfsk_sweep --reviewed --teacher=<the first teacher>` and tfsk_demo --review train);
beside the treatment alone and the complete labels. Two oracles on the goal's review (the
teacher's top --random_budget): its confirmed entries as positives with every other
missing label masked (a perfect mask on the rest: the most any teacher's flags could add
to it without relabelling), and as many missing labels drawn at random added as positives
(do the labels a teacher finds teach as much as typical ones?). --orders adds the page's
other orders (round-robin over classes, closest to the decision boundary) at that budget.
Every run is paired by seed
with plain training; --seeds beyond the set's sweep trains its missing plain, treatment and
complete-label runs too.

  python -m experiments.review_budget --set=real [--seeds=3] [--budgets=100,300,1000]
  python -m experiments.review_budget --set=builtin --demo_dir=tfsk_work [--seeds=5]
  python -m experiments.review_budget --set=builtin --demo_dir=tfsk_work \
      --sweep_dir=tfsk_work/sweep_e16 --budgets=300  # another recipe's sweep (16 epochs)
  python -m experiments.review_budget ... --budgets=300 --orders=boundary  # the page's
      # other orders at the goal's budget, beside the teacher's

It reuses a finished sweep of the set (its teacher's flags, plain baselines, treatment and
complete-label runs): real: experiments.treatments --set=real --ontology (the
real-recordings set's sweep with the ontology, mask and soft at p = 2%); builtin: a
finished `tfsk_demo --full` (5 seeds, mask, soft and positive at p = 2%). The treatment
on the rest is the sweep's best by d' at --percent (--treatment to choose one). Runs go in
<sweep>/review_budget/; the table in <sweep>/review_budget/review_budget.md and its rows in
experiments/results/review_budget.json (experiments/RESULTS.md); the plot of gain against
budget in <sweep>/review_budget/plot_budget.png and
experiments/results/review_budget_<set>_e<epochs>.png.

The goal: 300 verdicts in the teacher's order, with the treatment on the rest, recover at
least half of the complete labels' gain in both metrics, significantly, and more than the
treatment alone; the verdicts alone in the teacher's order beat the same number at random.
"""

import argparse
import csv
import dataclasses
import json
import os
import sys


import harness as common

COMMAND = "python -m experiments.review_budget"
# The row comparing the two reviews directly: the teacher's order's verdicts-alone runs
# against the random review's, paired by seed (not against plain training).
TEACHER_OVER_RANDOM = "verdicts alone: the teacher's order over random (paired by seed)"
DEFAULT_PERCENT = 2.0  # the flags (at p %) the treatment takes on the unreviewed entries
# The goal's review (the teacher's top N) with flags of precision and recall 1 on the rest.
CEILING = "{} verdicts, teacher order, a perfect mask on the rest (the ceiling)"
# As many missing labels as the goal's review confirmed, drawn at random from the truth.
TYPICAL = "{} verdicts' worth of missing labels drawn at random, added (an oracle)"
AS_GIVEN = "the rest as given"  # a review's verdicts alone, every other entry as labelled
# Another order of the page (--orders) against the teacher's, both with the rest as given.
ORDER_OVER_TEACHER = "verdicts alone: the {} order over the teacher's (paired by seed)"
PICKS_OVER_TYPICAL = ("verdicts alone: the teacher's picks over as many typical missing "
                      "labels (paired by seed)")


def _parse():
  extra = argparse.ArgumentParser(add_help=False)
  extra.add_argument("--set", choices=("builtin", "real"), default="real")
  extra.add_argument("--demo_dir", default="tfsk_work")
  extra.add_argument("--sweep_dir", default="",
                     help="the set's finished sweep (default: builtin <demo_dir>/sweep, real "
                          "the --ontology sweep); its teacher's recipe is every run's")
  extra.add_argument("--seeds", type=int, default=3)
  extra.add_argument("--budgets", default="100,300,1000")
  extra.add_argument("--random_budget", type=int, default=300,
                     help="the random review's size and the goal's budget (0: neither)")
  extra.add_argument("--percent", type=float, default=DEFAULT_PERCENT,
                     help="the flags the treatment takes on the unreviewed entries; another "
                          "than the default goes in its own review_budget_p<percent>/")
  extra.add_argument("--orders", default="",
                     help="the page's other orders (round_robin, boundary), each reviewed at "
                          "the goal's budget beside the teacher's, its verdicts alone: what "
                          "a verdict buys in each order")
  extra.add_argument("--treatment", default="")
  extra.add_argument("--bootstrap", type=int, default=200)
  global COMMAND
  COMMAND = " ".join(["python -m experiments.review_budget"] + sys.argv[1:])
  args = common.parse_args(__doc__, extra)
  from tf_skeptical.review import queue
  args.budgets = [int(b) for b in args.budgets.split(",")]
  args.orders = [o for o in args.orders.split(",") if o]
  others = [o for o in queue.ORDERS if o != queue.TEACHER]
  for o in args.orders:
    if o not in others:
      raise SystemExit(f"review_budget: error: --orders takes {', '.join(others)}, not {o!r}")
  if args.orders and args.random_budget not in args.budgets:
    raise SystemExit(f"review_budget: error: --orders reviews at the goal's budget "
                     f"(--random_budget={args.random_budget}), against the teacher's order "
                     f"at it: add it to --budgets")
  return args, args


def _run_name(budget, order, rest=AS_GIVEN) -> str:
  """How a review's runs are named in the table, the rows and the plot."""
  return f"{budget} verdicts, {order} order, {rest}"


def _sweep(known, args):
  """(train examples, eval examples, truth CSV, sweep dir, SweepConfig) of the set's sweep
  (--sweep_dir, or the set's own); the recipe is the sweep teacher's, as its result.json
  records it, so that every run here trains as the sweep's did."""
  from tf_skeptical import sweep, training
  from tf_skeptical.util import files
  onto = ""
  if known.set == "builtin":
    work = known.demo_dir
    train_dir, eval_dir = (os.path.join(work, "examples", s) for s in ("train", "eval"))
    truth = os.path.join(work, "builtin", "train_missing_labels.csv")
    sweep_dir = known.sweep_dir or os.path.join(work, "sweep")
  else:
    from experiments import real_recordings
    work = os.path.join(args.work_dir, "real_recordings")
    train_dir, eval_dir, truth, onto = real_recordings.prepared(work)
    sweep_dir = known.sweep_dir or os.path.join(work, "sweep_ontology")
  teacher = os.path.join(sweep.run_dir(sweep_dir, 0.0), training.RESULT)
  recipe = (training.TrainConfig(**files.read_json(teacher)["config"])
            if os.path.exists(teacher) else training.TrainConfig())
  return train_dir, eval_dir, truth, sweep_dir, sweep.SweepConfig(train=recipe, ontology=onto)


def _suffix(known) -> str:
  """Runs with the treatment at another p than the default keep apart (their own folder,
  rows and plot), so that neither measurement overwrites the other."""
  return "" if known.percent == DEFAULT_PERCENT else f"_p{known.percent:g}"


def _oracle_runs(prefix, cfg, seeds, verdicts_path, truth_csv, class_map, flags_made_from):
  """Two oracles on the goal's review, for what its verdicts could buy at best and why:
  CEILING, its confirmed entries as positives and every other missing label masked (flags
  of precision and recall 1 beyond the review: no treatment of a teacher's flags can add
  more without relabelling); TYPICAL, as many missing labels drawn at random from the
  truth added as positives (the rest as given), against which the teacher's picks show
  whether the labels a teacher finds teach as much as the typical missing one."""
  import numpy as np
  from tf_skeptical import evaluation
  from tf_skeptical.review import verdicts
  from tf_skeptical.sweep import orchestration, runs as sweep_runs
  index = {mid: i for i, mid in enumerate(class_map.mids)}
  missing = evaluation.read_truth(truth_csv, class_map)
  confirmed = {(clip_id, index[mid]) for (clip_id, mid), answer
               in verdicts.read(verdicts_path, class_map.mids).answers.items()
               if answer.verdict == verdicts.PRESENT} & missing
  masked = dataclasses.replace(evaluation.truth_as_entries(missing - confirmed),
                               made_from=orchestration.truth_provenance(flags_made_from,
                                                                        truth_csv))
  ordered = sorted(missing)
  drawn = np.random.default_rng(0).choice(len(ordered), len(confirmed), replace=False)
  typical = evaluation.truth_as_entries({ordered[j] for j in drawn})
  return {
      CEILING: [sweep_runs.Run(f"{prefix}_perfect_mask_seed{i}", cfg.seeded(i), masked=masked,
                               added_positives=evaluation.truth_as_entries(confirmed),
                               ontology=cfg.propagated) for i in range(seeds)],
      TYPICAL: [sweep_runs.Run(f"{prefix}_typical_seed{i}", cfg.seeded(i),
                               added_positives=typical, ontology=cfg.propagated)
                for i in range(seeds)]}


def _best_treatment(sweep_dir, percent, wanted):
  from tf_skeptical import sweep
  with open(os.path.join(sweep_dir, sweep.RESULTS_CSV)) as f:
    rows = [r for r in csv.DictReader(f)
            if float(r["discard_percent"]) == percent and int(r.get("round") or 1) == 1]
  if wanted:
    rows = [r for r in rows if r["treatment"] == wanted]
  if not rows:
    raise SystemExit(f"review_budget: {sweep_dir} has no student at p = {percent:g}%"
                     + (f" with {wanted}" if wanted else "") + ": run its sweep first")
  row = max(rows, key=lambda r: float(r["d_prime"]))
  return dict(row, discard_percent=float(row["discard_percent"]),
              round=int(row.get("round") or 1))


def main():
  known, args = _parse()
  if args.quick:
    print("review_budget: trains dozens of students; not a --quick benchmark, skipped")
    return
  from tf_skeptical import evaluation, flagging, side_by_side, sweep, treatments, verdict
  from tf_skeptical.review import queue, simulated
  from tf_skeptical.data import examples
  from tf_skeptical.sweep import orchestration, runs as sweep_runs
  train_dir, eval_dir, truth, sweep_dir, cfg = _sweep(known, args)
  if not os.path.exists(os.path.join(sweep_dir, sweep.RESULTS_CSV)):
    print(f"review_budget: no finished sweep in {sweep_dir} (see --help); skipped")
    return
  best = _best_treatment(sweep_dir, known.percent, known.treatment)
  treatment = treatments.Treatment(best["treatment"])
  flags_path = os.path.join(sweep_dir, sweep.FLAGS, flagging.FLAGS_FILE)
  flags = flagging.read_flags(flags_path)
  flags_id = tuple(flags.made_from.get(k) for k in sweep_runs.FLAGS_IDENTITY)
  scores_dirs = (os.path.join(sweep_dir, sweep.SCORES),)
  out = os.path.join(sweep_dir, "review_budget" + _suffix(known))
  os.makedirs(out, exist_ok=True)
  reviews = [(queue.TEACHER, b) for b in known.budgets] + (
      [(simulated.RANDOM, known.random_budget)] if known.random_budget else []) + [
      (o, known.random_budget) for o in known.orders]
  files_of = {}
  for order, budget in reviews:
    path = os.path.join(out, f"verdicts_{order}_{budget}.csv")
    if not os.path.exists(path):
      simulated.review(flags_path, truth, path + ".tmp", budget, order, known.percent,
                       seed=0, examples_dir=train_dir)
      os.replace(path + ".tmp", path)
    files_of[(order, budget)] = path

  seeds = known.seeds
  # Each review's runs: the verdicts alone, and with the treatment on the first teacher's
  # flags, an answer overriding its entry's flag: what `tfsk_sweep --reviewed
  # --teacher=<the first teacher>` (tfsk_demo --review) trains.
  plans = {}
  for (order, budget), path in files_of.items():
    # The page's other orders are measured by their verdicts alone (what a verdict buys);
    # the treatment on the rest would add the same flags to each.
    for p in (0.0, known.percent) if order not in known.orders else (0.0,):
      name = _run_name(budget, order, AS_GIVEN if p == 0 else f"{treatment.label} on the rest")
      plans[name] = [sweep_runs.Run(
          os.path.join(out, f"{order}{budget}_{'alone' if p == 0 else treatment.label}_seed{i}"),
          cfg.seeded(i), treatment if p else treatments.Treatment(), p,
          flags_path if p else "", flags_id if p else (),
          scores_dirs if p and treatment.needs_teacher_scores else (),
          ontology=cfg.propagated, reviewed=path) for i in range(seeds)]
  # The plain sweep's baselines, treatment and complete-label runs for every seed (those
  # beyond the sweep's own seeds are trained here, into its layout, as it would have).
  class_map = examples.read_info(train_dir).class_map
  complete = evaluation.truth_as_entries(evaluation.read_truth(truth, class_map))
  plain = {"plain": [sweep_runs.Run(sweep.run_dir(sweep_dir, 0.0, i), cfg.seeded(i),
                                    ontology=cfg.propagated) for i in range(seeds)],
           "treatment": [sweep_runs.Run(sweep.row_dir(sweep_dir, best, i), cfg.seeded(i),
                                        treatment, known.percent, flags_path, flags_id,
                                        scores_dirs if treatment.needs_teacher_scores else (),
                                        ontology=cfg.propagated) for i in range(seeds)],
           "complete": orchestration.reference_runs(
               sweep_dir, dataclasses.replace(cfg, seeds=seeds), sweep.COMPLETE, complete)}
  goal = (queue.TEACHER, known.random_budget)
  if goal in files_of:
    oracles = _oracle_runs(os.path.join(out, f"{queue.TEACHER}{known.random_budget}"), cfg,
                           seeds, files_of[goal], truth, class_map, flags.made_from)
    plans.update({name.format(known.random_budget): rs for name, rs in oracles.items()})
  with side_by_side.Runner(cfg.resolved_jobs()) as runner:
    futures = {name: [sweep_runs.submit(runner, train_dir, eval_dir, r) for r in rs]
               for name, rs in list(plain.items()) + list(plans.items())}
    for fs in futures.values():
      sweep_runs.results(fs)

  params = verdict.VerdictParams(bootstrap=known.bootstrap)
  _, labels, _ = evaluation.eval_scores(sweep.run_dir(sweep_dir, 0.0), eval_dir)

  def scores(dirs):
    return [evaluation.eval_scores(d, eval_dir)[2] for d in dirs]

  baselines = scores([sweep.run_dir(sweep_dir, 0.0, i) for i in range(seeds)])
  groups = {f"{treatment.label}, p = {known.percent:g}% alone": [
      sweep.row_dir(sweep_dir, best, i) for i in range(seeds)],
      "complete labels": [sweep.reference_dir(sweep_dir, sweep.COMPLETE, i)
                          for i in range(seeds)]}
  groups.update({name: [r.model_dir for r in rs] for name, rs in plans.items()})
  gains = {name: verdict.paired_gain(labels, scores(dirs), baselines, params)
           for name, dirs in groups.items()}
  teacher_alone = _run_name(known.random_budget, queue.TEACHER)
  random_alone = _run_name(known.random_budget, simulated.RANDOM)
  if teacher_alone in groups:  # the teacher's order against random, paired by seed
    gains[TEACHER_OVER_RANDOM] = verdict.paired_gain(
        labels, scores(groups[teacher_alone]), scores(groups[random_alone]), params)
  for o in known.orders:  # another order of the page against the teacher's, paired by seed
    gains[ORDER_OVER_TEACHER.format(o.replace("_", "-"))] = verdict.paired_gain(
        labels, scores(groups[_run_name(known.random_budget, o)]),
        scores(groups[teacher_alone]), params)
  typical = TYPICAL.format(known.random_budget)
  if typical in groups:  # the teacher's picks against typical missing labels, paired
    gains[PICKS_OVER_TYPICAL] = verdict.paired_gain(
        labels, scores(groups[teacher_alone]), scores(groups[typical]), params)
  counts = {}
  from tf_skeptical.review import verdicts
  for (order, budget), path in files_of.items():
    counts[f"{order}{budget}"] = verdicts.read(path).counts()
  report(known, out, gains, counts, reviews, treatment, seeds, cfg.train)


def report(known, out, gains, counts, reviews, treatment, seeds, recipe):
  from tf_skeptical import verdict
  label = f"{known.set}, {recipe.epochs} epochs, {seeds} seeds" + (
      ", deterministic input" if recipe.deterministic_input else "") + (
      f", rest at p = {known.percent:g}%" if _suffix(known) else "")
  lines = [f"# What a listening test buys ({known.set} set)\n",
           f"{label}, each run paired by seed with plain training; gains with 95% "
           "intervals [seeds; eval clips]. Verdicts from the truth file (a careful listener): "
           + "; ".join(f"{o} {b}: {counts[f'{o}{b}']['present']} present, "
                       f"{counts[f'{o}{b}']['absent']} absent" for o, b in reviews) + ".\n",
           "| run | d' gain | lwlrap gain |", "|---|---|---|"]
  rows = [common.row(f"[{label}] {COMMAND}", seeds)]
  for name, g in gains.items():
    lines.append(f"| {name} | {verdict.describe(g)} | {verdict.describe(g, 'lwlrap')} |")
    for metric, k in verdict.METRICS.items():
      rows.append(common.row(f"[{label}] {name}: {metric} gain {verdict.describe(g, metric)}",
                             g[k + "gain"]))
  complete = gains["complete labels"]
  alone = gains[f"{treatment.label}, p = {known.percent:g}% alone"]
  key300 = _run_name(300, "teacher", f"{treatment.label} on the rest")
  checks = []
  if key300 in gains:
    g = gains[key300]
    for metric, k in verdict.METRICS.items():
      share = g[k + "gain"] / complete[k + "gain"] if complete[k + "gain"] > 0 else 0.0
      checks.append((f"{metric}: {100 * share:.0f}% of the complete labels' gain, "
                     f"significant: {'yes' if g[k + 'significant'] and g[k + 'gain'] > 0 else 'no'}"
                     f", above the treatment alone ({alone[k + 'gain']:+.3f}): "
                     f"{'yes' if g[k + 'gain'] > alone[k + 'gain'] else 'no'}",
                     share >= 0.5 and g[k + "significant"] and g[k + "gain"] > 0
                     and g[k + "gain"] > alone[k + "gain"]))
  over = gains.get(TEACHER_OVER_RANDOM)
  if over:
    for metric, k in verdict.METRICS.items():
      ok = over[k + "significant"] and over[k + "gain"] > 0
      need = ""
      if not ok and seeds >= 2 and over[k + "gain"] > 0:
        n = verdict.seeds_to_resolve(over[k + "gain"], over[k + "gain_seed_low"],
                                     over[k + "gain_seed_high"], seeds)
        need = f" (at this spread and gain, {n} seeds would resolve it)"
      checks.append((f"verdicts alone, the teacher's order over random, {metric}: "
                     f"{verdict.describe(over, metric)}{need}", ok))
  met = bool(checks) and all(ok for _, ok in checks)
  lines.append("\nThe goal: " + ("met" if met else "missed") + ".\n")
  lines += [f"- {c}: {'yes' if ok else 'no'}" for c, ok in checks]
  ceiling = gains.get(CEILING.format(known.random_budget))
  if ceiling:
    lines.append(f"\nThe same review with a perfect mask on the rest (the most any teacher's "
                 "flags could add to it without relabelling): " + ", ".join(
                     f"{100 * ceiling[k + 'gain'] / complete[k + 'gain']:.0f}% of the complete "
                     f"labels' {metric} gain" for metric, k in verdict.METRICS.items()
                     if complete[k + "gain"] > 0) + ".")
  picks = gains.get(PICKS_OVER_TYPICAL)
  if picks:
    lines.append("\nThe verdicts alone against as many missing labels drawn at random and "
                 "added (do the labels a teacher finds teach as much as a typical one?): "
                 + "; ".join(f"{metric} {verdict.describe(picks, metric)}"
                             for metric in verdict.METRICS) + ".")
  rows.append(common.row(f"[{label}] meets the goal (1 = yes)", float(met)))
  text = "\n".join(lines) + "\n"
  with open(os.path.join(out, "review_budget.md"), "w") as f:
    f.write(text)
  print(text)
  if len(known.budgets) > 1:  # a plot of gain against budget needs budgets
    _plot(known, out, gains, treatment, label, f"review_budget_{known.set}_e{recipe.epochs}"
          + ("_deterministic" if recipe.deterministic_input else "") + _suffix(known))
  path = os.path.join(common.EXPERIMENTS, "results", "review_budget.json")
  kept = []
  if os.path.exists(path):
    with open(path) as f:
      kept = [r for r in json.load(f)["rows"] if not r["metric"].startswith(f"[{label}] ")]
  common.report("review_budget", kept + rows, common.EXPERIMENTS)


def _plot(known, out, gains, treatment, label, filename):
  """Gain against budget: verdicts alone and with the treatment on the rest (teacher's
  order), the random review, the treatment alone and the complete labels as lines."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  from tf_skeptical import verdict
  budgets = sorted(known.budgets)
  fig, axes = plt.subplots(1, 2, figsize=(11, 4.8))
  for ax, (metric, k) in zip(axes, verdict.METRICS.items()):
    for rest, style in ((AS_GIVEN, "o-"), (f"{treatment.label} on the rest", "s-")):
      g = [gains[_run_name(b, "teacher", rest)] for b in budgets]
      ax.errorbar(budgets, [x[k + "gain"] for x in g],
                  yerr=[[x[k + "gain"] - x[k + "gain_seed_low"] for x in g],
                        [x[k + "gain_seed_high"] - x[k + "gain"] for x in g]],
                  fmt=style, capsize=3, label=f"teacher's order, {rest}")
      for order, marker in [("random", "x")] + list(zip(known.orders, "D+")):
        r = gains.get(_run_name(known.random_budget, order, rest))
        if r:
          ax.plot([known.random_budget], [r[k + "gain"]], marker, markersize=9,
                  label=f"{order.replace('_', '-')}, {rest}")
    for name, style, text in ((CEILING, "^", "teacher's order, a perfect mask on the rest"),
                              (TYPICAL, "v", "as many missing labels at random, added")):
      c = gains.get(name.format(known.random_budget))
      if c:
        ax.plot([known.random_budget], [c[k + "gain"]], style, markersize=8, label=text)
    for name, style in ((f"{treatment.label}, p = {known.percent:g}% alone", "--"),
                        ("complete labels", ":")):
      ax.axhline(gains[name][k + "gain"], linestyle=style, color="grey", label=name)
    ax.axhline(0, color="black", linewidth=0.5)
    ax.set_xscale("log")
    ax.set_xlabel("verdicts (budget)")
    ax.set_ylabel(f"{metric} gain over plain training")
    ax.grid(alpha=0.3)
  fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=4, fontsize=7)
  fig.suptitle(f"What a listening test buys ({label}; bars: 95% interval over seeds)")
  fig.tight_layout(rect=(0, 0.13, 1, 1))  # the legend below, clear of the markers
  for path in (os.path.join(out, "plot_budget.png"),
               os.path.join(common.EXPERIMENTS, "results", filename + ".png")):
    fig.savefig(path, dpi=110)
  plt.close(fig)


if __name__ == "__main__":
  main()
