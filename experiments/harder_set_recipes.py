"""Why d' and lwlrap disagree on the harder set: the same three label treatments (labels as
given, complete labels, perfect mask) under other training recipes, and per-class AUC by
role in the ontology and by frequency.

  python -m experiments.harder_set_recipes [--recipes=w0.5e8,w0.5e16,w2e8] [--seed=0]

Needs `python -m experiments.harder_set` to have run (same --work_dir): it reuses its data, its
flags' provenance and its default-recipe runs (w0.5e8: embedding_mlp width 0.5, 8 epochs).
Other recipes train one seed of each treatment. Reports, per recipe and treatment: d',
lwlrap, and the mean eval AUC of the parents (classes with a child), the children, the
classes outside the ontology, the head (50+ eval positives) and the tail (fewer than 10).
"""

import dataclasses
import json
import os
import re

import numpy as np

import harness as common


def _parse():
  import argparse
  extra = argparse.ArgumentParser(add_help=False)
  extra.add_argument("--recipes", default="w0.5e8,w0.5e16,w2e8",
                     help="Recipes as w<width>e<epochs>; w0.5e8 is the harder set's own.")
  extra.add_argument("--seed", type=int, default=0)
  args = common.parse_args(__doc__, extra)
  return args, args


def class_groups(generation_json: str, eval_labels: np.ndarray):
  """Boolean masks over classes: parents, children, outside the ontology, head, tail."""
  with open(generation_json) as f:
    parents = {int(c): int(p) for c, p in json.load(f)["parents"].items()}
  num_classes = eval_labels.shape[1]
  is_parent = np.isin(np.arange(num_classes), list(parents.values()))
  is_child = np.isin(np.arange(num_classes), list(parents))
  positives = (eval_labels > 0).sum(axis=0)
  return {"parents": is_parent, "children": is_child & ~is_parent,
          "outside the ontology": ~is_parent & ~is_child,
          "head (50+ eval positives)": positives >= 50,
          "tail (< 10 eval positives)": positives < 10}


def main():
  known, args = _parse()
  if args.quick:
    print("harder_set_recipes: trains minutes-long runs; not a --quick benchmark, skipped")
    return
  from tf_skeptical import evaluation, flagging, metrics, sweep, training
  from tf_skeptical.data import examples
  from tf_skeptical.targets import Targets
  from experiments.harder_set import dataset
  work = os.path.join(args.work_dir, "harder_set")
  train_dir, eval_dir, truth_csv = dataset(work, 20000, 3000, 200)
  sweep_dir = os.path.join(work, "sweep")
  flags = flagging.read_flags(os.path.join(sweep_dir, sweep.FLAGS, flagging.FLAGS_FILE))
  truth = evaluation.read_truth(truth_csv, examples.read_info(train_dir).class_map)
  entries = evaluation.truth_as_entries(truth)
  perfect = dataclasses.replace(entries, made_from=sweep.truth_provenance(flags.made_from,
                                                                         truth_csv))
  treatments = {"labels as given": Targets(), "complete labels": Targets(added_positives=entries),
                "perfect mask": Targets(flagged=perfect)}
  own = {"labels as given": sweep.run_dir(sweep_dir, 0.0, known.seed),
         "complete labels": sweep.reference_dir(sweep_dir, sweep.COMPLETE, known.seed),
         "perfect mask": sweep.reference_dir(sweep_dir, sweep.PERFECT_MASK, known.seed)}
  groups, rows = None, []
  for recipe in known.recipes.split(","):
    width, epochs = re.fullmatch(r"w([\d.]+)e(\d+)", recipe).groups()
    cfg = training.TrainConfig(model="embedding_mlp", width=float(width), epochs=int(epochs),
                               batch_size=256, seed=known.seed)
    for name, told in treatments.items():
      model_dir = (own[name] if recipe == "w0.5e8" else
                   os.path.join(work, "recipes", recipe, name.replace(" ", "_")))
      if not training.is_trained(model_dir):
        training.train(train_dir, model_dir, cfg, targets=told, eval_dir=eval_dir, verbose=0)
      _, labels, scores = evaluation.eval_scores(model_dir, eval_dir)
      if groups is None:
        groups = class_groups(os.path.join(work, "sim", "generation.json"), labels)
      auc = metrics.per_class_auc(labels, scores)
      label = f"{recipe} {name}"
      rows += [common.row(f"{label}: d'", metrics.d_prime(np.nanmean(auc))),
               common.row("  lwlrap", metrics.lwlrap(labels, scores))]
      rows += [common.row(f"  AUC of {g} ({int(m.sum())})", np.nanmean(auc[m]))
               for g, m in groups.items()]
  common.report("harder_set_recipes", rows, common.EXPERIMENTS)


if __name__ == "__main__":
  main()
