"""How many train positives a class needs before its teacher's flags are worth taking: the
default of --min_positives (tfsk_flag) and --flag_min_positives (tfsk_sweep).

On each dataset with known missing labels (the built-in data, the harder set, the real
recordings with their ontology, and the real recordings on a class map padded to AudioSet's
527 classes, most of which never occur: the common case of a user's data covering part of
the ontology), a teacher trained on the labels as given scores the train set and flags up
to 4% of every class's implicit negatives (min_positives 0). Then, at p = 2%, for each
threshold k: the flags kept (classes with at least k train positives), their precision,
their lift over the base rate (the precision of random flags), the flags dropped and the
precision those had, and the recall of all missing labels.

  python -m experiments.flag_threshold [--sets=builtin,harder,real,real527] [--quick]
"""

import argparse
import csv
import os

import numpy as np

import harness as common

THRESHOLDS = (0, 1, 2, 3, 5, 10, 20)
P = 2.0
PADDED_CLASSES = 527


def _parse():
  extra = argparse.ArgumentParser(add_help=False)
  extra.add_argument("--sets", default="builtin,harder,real,real527")
  return common.parse_args(__doc__, extra)


def _padded(work: str, train_dir: str, eval_dir: str, quick: bool):
  """The real recordings' examples again, on a class map of PADDED_CLASSES classes: the
  set's own and absent ones (mids /pad/NNN) that no clip carries."""
  from tf_skeptical import prepare
  from tf_skeptical.data import examples
  from tf_skeptical.data.class_map import HEADER
  from tf_skeptical.datasets import layout
  data = os.path.join(os.path.dirname(os.path.dirname(train_dir)), "data")
  out = os.path.join(work, "real527")
  cmap = examples.read_info(train_dir).class_map
  padded_csv = os.path.join(out, layout.CLASS_MAP)
  os.makedirs(out, exist_ok=True)
  with open(padded_csv, "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(HEADER)
    rows = list(zip(cmap.mids, cmap.display_names)) + [
        (f"/pad/{i:03d}", f"absent class {i}") for i in range(PADDED_CLASSES - len(cmap))]
    for i, (mid, name) in enumerate(rows):
      w.writerow([i, mid, name])
  dirs = []
  for split, segments in (("train", layout.TRAIN_SEGMENTS), ("eval", layout.EVAL_SEGMENTS)):
    ex = os.path.join(out, "examples", split)
    if not os.path.exists(os.path.join(ex, examples.MANIFEST)):
      prepare.prepare_audio(os.path.join(data, segments), os.path.join(data, layout.AUDIO_DIR),
                            padded_csv, ex, clip_seconds=2.0)
    dirs.append(ex)
  return dirs[0], dirs[1]


def datasets(names, work: str, quick: bool):
  """{name: (train examples, truth CSV, ontology path or "", training recipe)}."""
  from tf_skeptical import training
  out = {}
  small = training.TrainConfig(width=0.25, epochs=2 if quick else 8)
  if "builtin" in names:
    data, dirs = common.builtin_dataset(work, 300 if quick else 3000, 100 if quick else 1000)
    out["builtin"] = (dirs["train"], os.path.join(data, "train_missing_labels.csv"), "", small)
  if "harder" in names:
    from experiments import harder_set
    from tf_skeptical.datasets import audioset_simulation as sim
    hard = os.path.join(work, "harder_set")
    train_dir, _, truth = harder_set.dataset(hard, 2000 if quick else 20000, 300 if quick
                                             else 3000, 200)
    out["harder"] = (train_dir, truth, os.path.join(hard, "sim", sim.ONTOLOGY),
                     training.TrainConfig(model="embedding_mlp", width=0.5,
                                          epochs=2 if quick else 8, batch_size=256,
                                          balanced=True))
  if {"real", "real527"} & set(names):
    from experiments import real_recordings
    real = os.path.join(work, "real_recordings")
    train_dir, eval_dir, truth, onto = real_recordings.prepared(real)
    if "real" in names:
      out["real"] = (train_dir, truth, onto, small)
    if "real527" in names:
      out["real527"] = (_padded(work, train_dir, eval_dir, quick)[0], truth, onto, small)
  return out


def measure(name: str, train_dir: str, truth_csv: str, onto_path: str, recipe, work: str):
  """The teacher, its scores and flags of one set (each made once), and the rows: per
  threshold, the flags at P kept and dropped."""
  from tf_skeptical import evaluation, flagging, scoring, training
  from tf_skeptical.data import examples, ontology
  here = os.path.join(work, "flag_threshold", name)
  teacher, scores_dir = os.path.join(here, "teacher"), os.path.join(here, "scores")
  training.train(train_dir, teacher, recipe, verbose=0)
  if not os.path.exists(os.path.join(scores_dir, scoring.MANIFEST)):
    scoring.score(train_dir, teacher, scores_dir, local_workers=2)
  cmap = examples.read_info(train_dir).class_map
  onto = ontology.read_ontology(onto_path, cmap.mids) if onto_path else None
  flags = flagging.flag_scores(scoring.read_scores(scores_dir), 4.0, onto, 0)
  truth = evaluation.read_truth(truth_csv, cmap)
  keys = {(k, c) for k, c in truth}
  selected = flags.selected(P)
  hit = np.array([(flags.clip_ids[i], int(c)) in keys
                  for i, c in zip(flags.clip[selected], flags.cls[selected])], bool)
  per_flag = flags.num_positives[flags.cls[selected]]
  base = len(truth) / flags.num_implicit.sum()
  rows = []
  print(f"\n{name}: {len(cmap)} classes, {int((flags.num_positives > 0).sum())} with train "
        f"positives; {len(truth)} missing labels; base rate {base:.4f}; flags at p = {P:g}%: "
        f"{selected.sum()}")
  print("  k  | flags kept | precision | lift | dropped | their precision | recall")
  for k in THRESHOLDS:
    kept = per_flag >= k
    n, tp = int(kept.sum()), int(hit[kept].sum())
    dropped, dropped_tp = int((~kept).sum()), int(hit[~kept].sum())
    precision = tp / n if n else float("nan")
    dropped_precision = dropped_tp / dropped if dropped else float("nan")
    recall = tp / len(truth) if truth else float("nan")
    print(f"  {k:>2} | {n:>10} | {precision:9.3f} | {precision / base:4.1f} | {dropped:>7} | "
          f"{dropped_precision:15.3f} | {recall:.3f}")
    label = f"{name}, min_positives {k}, p = {P:g}%"
    rows += [common.row(f"{label}: flags kept", n),
             common.row(f"{label}: precision of the flags kept", precision),
             common.row(f"{label}: precision of the flags dropped", dropped_precision),
             common.row(f"{label}: recall of the missing labels", recall)]
  rows.append(common.row(f"{name}: base rate (precision of random flags)", base))
  return rows


def main():
  args = _parse()
  names = args.sets.split(",")
  rows = []
  for name, (train_dir, truth, onto, recipe) in datasets(names, args.work_dir,
                                                         args.quick).items():
    rows += measure(name, train_dir, truth, onto, recipe, args.work_dir)
  common.report("flag_threshold", rows, home=common.EXPERIMENTS)


if __name__ == "__main__":
  main()
