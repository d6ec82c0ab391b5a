r"""Trains a teacher (labels as given) or a student (flagged entries masked out of the loss).

  tfsk_train --train=examples/train --eval=examples/eval --model_dir=runs/teacher
  tfsk_train --train=examples/train --eval=examples/eval --model_dir=runs/p1 \
      --flags=flags/flags.npz --discard_percent=1

Watch it with `tensorboard --logdir=runs`. Killed runs resume from their last backup
when started again with the same flags.
"""

from absl import flags

from tf_skeptical import cli, flagging, train_options, training

flags.adopt_module_key_flags(train_options)  # --help lists the training flags too

TRAIN = flags.DEFINE_string("train", None, "Train examples directory (from tfsk_prepare).")
EVAL = flags.DEFINE_string(
    "eval", None, "Eval examples directory: clip-level d', lwlrap and mAP after every epoch "
    "in TensorBoard, and in result.json. Optional.")
MODEL_DIR = flags.DEFINE_string("model_dir", None, "Where logs, backups and the model go.")
FLAGS_FILE = flags.DEFINE_string("flags", None, "Flags file from tfsk_flag (for a student).")
DISCARD_PERCENT = flags.DEFINE_float(
    "discard_percent", 0.0, "Ignore, in the loss, the top-scored p% of each class's implicit "
    "negatives listed in --flags. 0 trains on the labels as given.")
OVERWRITE = flags.DEFINE_bool(
    "overwrite", False, "Train again into a --model_dir that holds a finished run (by "
    "default a finished run is kept: scores and flags made with it depend on it).")
flags.mark_flags_as_required(["train", "model_dir"])


def main(argv):
  del argv
  if not 0 <= DISCARD_PERCENT.value <= 100:  # also NaN
    raise flags.ValidationError(f"--discard_percent must be in [0, 100], got "
                                f"{DISCARD_PERCENT.value}")
  if DISCARD_PERCENT.value > 0 and not FLAGS_FILE.value:
    raise flags.ValidationError("--discard_percent needs --flags")
  discards = (flagging.load_discards(FLAGS_FILE.value, DISCARD_PERCENT.value)
              if FLAGS_FILE.value else None)
  training.train(TRAIN.value, MODEL_DIR.value, train_options.config_from_flags(),
                 eval_dir=EVAL.value, discards=discards,
                 extra_result=dict(discard_percent=DISCARD_PERCENT.value),
                 overwrite=OVERWRITE.value)


def run():
  cli.run(main)


if __name__ == "__main__":
  run()
