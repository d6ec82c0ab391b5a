"""The whole experiment on the built-in data, whose missing labels are known.

  tfsk_demo                      # about 9 minutes on 2 CPU cores (12 training runs)
  tfsk_demo --train_clips=300 --eval_clips=100 --epochs=2 --percents=0,2   # a smoke run
  tfsk_demo --full               # the README's built-in results: 30 runs, about an hour
  tfsk_demo --review=300         # then a simulated listening test of the top 300 flags

Generates the data, prepares it (Beam), trains the teacher, scores the train set (Beam),
flags likely missing labels, trains one student per discard percentage, exports the best
one (SavedModel + TFLite), and ends with the results table, the flags' precision against
the truth and the paths of the plots and the tagger. The students mask their flagged
entries (the paper's treatment; no other measured significantly better on this data:
docs/treatments.md); --treatments=mask,soft,distill,positive compares them all.
The runs train side by side, one process per core (--jobs). Re-running continues where a
previous run stopped. With --review=N a simulated listener answers the teacher's top N
candidates from the truth file (tfsk_review --simulate_from), a second sweep trains on
those verdicts (<work_dir>/sweep_reviewed), and the demo ends with what they buy against
plain training, paired by seed.
"""

import dataclasses
import os

from absl import flags, logging

from tf_skeptical.datasets import builtin_data
from tf_skeptical import evaluation, flagging, prepare, sweep, teacher_check, verdict
from tf_skeptical.review import simulated
from tf_skeptical.data import examples
from tf_skeptical.util import files, output_paths
from tf_skeptical_bin import checks, cli, sweep_options, train_options

flags.adopt_module_key_flags(train_options)  # --help lists the training flags too
flags.adopt_module_key_flags(sweep_options)  # and the sweep's

WORK_DIR = flags.DEFINE_string("work_dir", "tfsk_work", "Where data and every stage go.")
TRAIN_CLIPS = flags.DEFINE_integer("train_clips", 3000, "Built-in train clips.")
EVAL_CLIPS = flags.DEFINE_integer("eval_clips", 1000, "Built-in eval clips.")
MISSING_RATE = flags.DEFINE_float("missing_rate", 0.02, "Missing train labels as a fraction "
                                  "of the implicit negatives.")
DATA_SEED = flags.DEFINE_integer("data_seed", 0, "Seed of the generated data.")
REVIEW = flags.DEFINE_integer(
    "review", 0, "N > 0: after the sweep, a simulated listener answers the teacher's top N "
    "flagged candidates from the truth file, and a second sweep trains on the verdicts "
    "(every run, teacher included; <work_dir>/sweep_reviewed). 0: no review.")
checks.positive(TRAIN_CLIPS, EVAL_CLIPS)
checks.non_negative(REVIEW)
checks.fraction(MISSING_RATE, high_open=True)
# The larger experiment: the README's built-in results (docs/treatments.md, built-in data).
FULL_SETTINGS = dict(seeds=5, percents="0,2", treatments=["mask", "soft", "positive"])
FULL = flags.DEFINE_bool(
    "full", False, "The larger experiment behind the README's built-in results: " + " ".join(
        f"--{k}={','.join(v) if isinstance(v, list) else v}" for k, v in FULL_SETTINGS.items())
    + " (30 training runs with the references, about an hour on 2 cores). A flag given "
    "explicitly still wins.")

# The demo's recipe: a small MobileNetV1 that trains in under two minutes per run, two at a
# time on 2 cores; with p = 0, 1, 2, 4 (sweep.DEMO_PERCENTS), 2 seeds and both references,
# 12 runs (README gives the measured time).
flags.FLAGS.set_default("width", 0.25)
flags.FLAGS.set_default("epochs", 8)
flags.FLAGS.set_default("seeds", 2)  # paired gains need 2+ runs a p for an interval


DEMO_OUTPUT = output_paths.OutputKind("demo work directory", ("builtin", "examples", "sweep"))


def main(argv):
  del argv
  if FULL.value:
    for name, value in FULL_SETTINGS.items():
      if not flags.FLAGS[name].present:
        flags.FLAGS[name].value = value
  work = WORK_DIR.value
  output_paths.check_directory(work, DEMO_OUTPUT, "--work_dir")
  data = os.path.join(work, "builtin")
  params = builtin_data.BuiltinDataParams(
      train_clips=TRAIN_CLIPS.value, eval_clips=EVAL_CLIPS.value,
      missing_rate=MISSING_RATE.value, seed=DATA_SEED.value)
  if not files.exists(os.path.join(data, builtin_data.SUMMARY)):
    logging.info("generating the built-in dataset in %s", data)
    builtin_data.generate(data, params)
  dirs = {}
  for split, csv_name in (("train", builtin_data.TRAIN_SEGMENTS),
                          ("eval", builtin_data.EVAL_SEGMENTS)):
    dirs[split] = os.path.join(work, "examples", split)
    if not files.exists(os.path.join(dirs[split], examples.MANIFEST)):
      logging.info("preparing %s examples", split)
      prepare.prepare_audio(os.path.join(data, csv_name),
                            os.path.join(data, builtin_data.AUDIO_DIR),
                            os.path.join(data, builtin_data.CLASS_MAP), dirs[split],
                            clip_seconds=params.clip_seconds)
  cfg = sweep_options.config_from_flags()
  out = os.path.join(work, "sweep")
  result = sweep.run(dirs["train"], dirs["eval"], out, cfg,
                     truth_csv=os.path.join(data, builtin_data.TRUTH))
  best, tagger = sweep.export_best(result, dirs["train"])
  print("\n" + sweep.results_text(out))
  print(sweep.best_line(best, result.table))
  print(f"Table:   {os.path.join(out, sweep.RESULTS_MD)}")
  for name in (sweep.PLOT_METRICS, sweep.PLOT_FLAGS, evaluation.FLAG_QUALITY):
    print(f"{name + ':':<18}{os.path.join(out, name)}")
  print(f"Review:  {os.path.join(out, sweep.FLAGS, flagging.REVIEW)} (top candidates); listen "
        f"to them: tfsk_review --flags={os.path.join(out, sweep.FLAGS)} "
        f"--verdicts={os.path.join(work, 'verdicts.csv')}")
  print(f"Teacher check: {os.path.join(out, sweep.FLAGS, teacher_check.CHECK_FILE)} (flags "
        "against random, estimated before any student trained)")
  print(f"Curves:  tensorboard --logdir={out}")
  print(f"Tagger:  {tagger} (SavedModel + TFLite); try: tfsk_tag --tagger={tagger} "
        f"{os.path.join(data, builtin_data.AUDIO_DIR, 'eval000000.wav')}")
  if REVIEW.value:
    review(work, dirs, out, cfg, os.path.join(data, builtin_data.TRUTH))


def review(work, dirs, plain_dir, cfg, truth_csv):
  """The simulated listening test of the plain sweep's flags, and a sweep on its verdicts."""
  path = os.path.join(work, "review", "verdicts.csv")
  flags_dir = os.path.join(plain_dir, sweep.FLAGS)
  if not files.exists(path):  # a re-run keeps the answers given
    files.makedirs(os.path.dirname(path))
    simulated.review(flags_dir, truth_csv, path + ".tmp", REVIEW.value)
    files.rename(path + ".tmp", path)
  # The teacher whose flags were answered gives the flags again, an answer overriding its
  # entry's flag; a teacher retrained on the verdicts did worse, and so did flags refilled
  # past the answered entries (docs/review.md). Out-of-fold teachers are no one model to
  # keep: they train again.
  teacher = cfg.teacher or ("" if cfg.teacher_folds else sweep.run_dir(plain_dir, 0.0))
  reviewed_cfg = dataclasses.replace(cfg, reviewed=path, teacher=teacher,
                                     complete_reference=False, perfect_mask_reference=False)
  out = os.path.join(work, "sweep_reviewed")
  result = sweep.run(dirs["train"], dirs["eval"], out, reviewed_cfg, truth_csv=truth_csv)
  from tf_skeptical.review import verdicts
  counts = verdicts.read(path).counts()
  print(f"\nListening test (simulated, the teacher's top {REVIEW.value}): "
        f"{counts['present']} present, {counts['absent']} absent; verdicts in {path}")
  print(sweep.against_plain(out, plain_dir, dirs["eval"], result.table, cfg.seeds,
                            verdict.VerdictParams(bootstrap=cfg.verdict_params.bootstrap)))
  print(f"Reviewed sweep: {os.path.join(out, sweep.RESULTS_MD)}")


def run():
  cli.run(main)


if __name__ == "__main__":
  run()
