r"""Trains a teacher (labels as given) or a student (flagged entries treated: masked out of
the loss by default, or given the teacher's score, or made positives).

  tfsk_train --train=examples/train --eval=examples/eval --model_dir=runs/teacher
  tfsk_train --train=examples/train --eval=examples/eval --model_dir=runs/p1 \
      --flags=flags/flags.npz --discard_percent=1
  tfsk_train --train=examples/train --eval=examples/eval --model_dir=runs/p1_distill \
      --flags=flags/flags.npz --discard_percent=1 --treatment=distill --teacher_scores=scores

Watch it with `tensorboard --logdir=runs`. Killed runs resume from their last backup
when started again with the same flags.
"""

from absl import flags

from tf_skeptical import flagging, scoring, training
from tf_skeptical_bin import checks, cli, train_options

flags.adopt_module_key_flags(train_options)  # --help lists the training flags too

TRAIN = flags.DEFINE_string("train", None, "Train examples directory (from tfsk_prepare).")
EVAL = flags.DEFINE_string(
    "eval", None, "Eval examples directory: clip-level d', lwlrap and mAP after every epoch "
    "in TensorBoard, and in result.json. Optional.")
MODEL_DIR = flags.DEFINE_string("model_dir", None, "Where logs, backups and the model go.")
FLAGS_FILE = flags.DEFINE_string("flags", None, "Flags file from tfsk_flag (for a student).")
DISCARD_PERCENT = flags.DEFINE_float(
    "discard_percent", 0.0, "Treat (--treatment; by default ignore in the loss) the "
    "top-scored p% of each class's implicit negatives listed in --flags. 0 trains on the "
    "labels as given.")
TEACHER_SCORES = flags.DEFINE_string(
    "teacher_scores", None, "The teacher's scores of the train set (tfsk_score's output "
    "directory, the one the flags came from): --treatment=distill needs them.")
OVERWRITE = flags.DEFINE_bool(
    "overwrite", False, "Train again into a --model_dir that holds a finished run (by "
    "default a finished run is kept: scores and flags made with it depend on it).")
checks.percent(DISCARD_PERCENT)
flags.mark_flags_as_required(["train", "model_dir"])


def main(argv):
  del argv
  if DISCARD_PERCENT.value > 0 and not FLAGS_FILE.value:
    raise flags.ValidationError("--discard_percent needs --flags")
  cfg = train_options.config_from_flags()
  if cfg.treatment_spec.needs_teacher_scores and not TEACHER_SCORES.value:
    raise flags.ValidationError(f"--treatment={cfg.treatment} needs --teacher_scores")
  discards = (flagging.load_discards(FLAGS_FILE.value, DISCARD_PERCENT.value,
                                     with_scores=cfg.treatment_spec.needs_flag_scores)
              if FLAGS_FILE.value else None)
  teacher_scores = (scoring.read_scores(TEACHER_SCORES.value)
                    if cfg.treatment_spec.needs_teacher_scores else None)
  training.train(TRAIN.value, MODEL_DIR.value, cfg,
                 eval_dir=EVAL.value, discards=discards, teacher_scores=teacher_scores,
                 extra_result=dict(discard_percent=DISCARD_PERCENT.value),
                 overwrite=OVERWRITE.value)


def run():
  cli.run(main)


if __name__ == "__main__":
  run()
