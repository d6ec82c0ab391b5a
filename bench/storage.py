"""Compact example storage: the demo's baseline trained on float16 log-mel examples against
the same recipe and seeds on float32 ones, on a finished demo.

  python -m bench.storage --demo_dir=tfsk_work

Prepares the demo's train and eval audio again with --feature_storage=float16 (into
<demo_dir>/storage_bench), trains the demo teacher's recipe there with each of the demo's
seeds, and prints the bytes per clip and the paired d' difference with its 95% intervals
(verdict.py) against the demo's own p = 0 runs.
"""

import json
import os

import harness as common


def main():
  given = common.demo_benchmark("storage", __doc__)
  if given is None:
    return
  _, work = given
  from tf_skeptical.datasets import builtin_data
  from tf_skeptical import evaluation, prepare, sweep, training, verdict
  from tf_skeptical.data import examples
  from tf_skeptical.util import files
  sweep_dir = os.path.join(work, "sweep")
  data = os.path.join(work, "builtin")
  out = os.path.join(work, "storage_bench")
  with open(os.path.join(sweep_dir, sweep.TEACHER, training.RESULT)) as f:
    recipe = json.load(f)["config"]
  clip_seconds = examples.read_info(os.path.join(work, "examples", "train")).extra[
      "clip_seconds"]
  dirs = {}
  for split, csv_name in (("train", builtin_data.TRAIN_SEGMENTS),
                          ("eval", builtin_data.EVAL_SEGMENTS)):
    dirs[split] = os.path.join(out, "examples", split)
    if not files.exists(os.path.join(dirs[split], examples.MANIFEST)):
      prepare.prepare_audio(os.path.join(data, csv_name),
                            os.path.join(data, builtin_data.AUDIO_DIR),
                            os.path.join(data, builtin_data.CLASS_MAP), dirs[split],
                            clip_seconds=clip_seconds, feature_storage=examples.FLOAT16)
  runs = 1 + len([d for d in os.listdir(os.path.join(sweep_dir, sweep.STUDENTS))
                  if d.startswith("p0_seed")])  # the teacher is seed 0
  float16, float32 = [], []
  for i in range(runs):
    model_dir = os.path.join(out, f"p0_seed{i}")
    training.train(dirs["train"], model_dir, training.TrainConfig(
        **dict(recipe, seed=recipe["seed"] + i)), eval_dir=dirs["eval"], verbose=0)
    float16.append(evaluation.eval_scores(model_dir, dirs["eval"]))
    float32.append(evaluation.eval_scores(sweep.run_dir(sweep_dir, 0.0, i),
                                     os.path.join(work, "examples", "eval")))
  assert all(list(a[0]) == list(b[0]) for a, b in zip(float16, float32))
  labels = float32[0][1]
  gain = verdict.paired_gain(labels, [r[2] for r in float16], [r[2] for r in float32])

  def size(d):
    info = examples.read_info(d)
    return sum(files.size(s) for s in info.shards) / info.num_clips
  rows = [common.row("float16 / float32 example bytes per clip (train)",
                     size(dirs["train"]) / size(os.path.join(work, "examples", "train"))),
          common.row(f"eval d' float32 examples (mean of {runs} seeds)",
                     sum(verdict.d_prime(labels, r[2]) for r in float32) / runs),
          common.row(f"eval d' float16 examples (mean of {runs} seeds)",
                     sum(verdict.d_prime(labels, r[2]) for r in float16) / runs),
          common.row("float16 - float32 d', paired by seed", gain["gain"]),
          common.row("  95% interval over eval clips, low", gain["gain_clip_low"]),
          common.row("  95% interval over eval clips, high", gain["gain_clip_high"])]
  if runs > 1:
    rows += [common.row("  95% interval over seeds, low", gain["gain_seed_low"]),
             common.row("  95% interval over seeds, high", gain["gain_seed_high"])]
  common.report("storage", rows)


if __name__ == "__main__":
  main()
