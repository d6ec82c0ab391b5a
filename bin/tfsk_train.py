r"""Trains a teacher (labels as given) or a student (flagged entries treated: masked out of
the loss by default, or given the teacher's score, or made positives).

  tfsk_train --train=examples/train --eval=examples/eval --model_dir=runs/teacher
  tfsk_train --train=examples/train --eval=examples/eval --model_dir=runs/p1 \
      --teacher_flags=flags/flags.npz --discard_percent=1
  tfsk_train --train=examples/train --eval=examples/eval --model_dir=runs/p1_distill \
      --teacher_flags=flags/flags.npz --discard_percent=1 --treatment=distill --teacher_scores=scores
  tfsk_train --train=examples/train --eval=examples/eval --model_dir=runs/p1_reviewed \
      --teacher_flags=flags/flags.npz --discard_percent=1 --reviewed=verdicts.csv

Watch it with `tensorboard --logdir=runs`. Killed runs resume from their last backup
when started again with the same flags.
"""

from absl import flags

from tf_skeptical import scoring, targets, training, treatments
from tf_skeptical.data import examples
from tf_skeptical_bin import checks, cli, train_options

flags.adopt_module_key_flags(train_options)  # --help lists the training flags too

TRAIN = flags.DEFINE_string("train", None, "Train examples directory (from tfsk_prepare).")
EVAL = flags.DEFINE_string(
    "eval", None, "Eval examples directory: clip-level d', lwlrap and mAP after every epoch "
    "in TensorBoard, and in result.json. Optional.")
MODEL_DIR = flags.DEFINE_string("model_dir", None, "Where logs, backups and the model go.")
TEACHER_FLAGS = flags.DEFINE_string(
    "teacher_flags", None, "The teacher's flags, flags.npz from tfsk_flag (for a student).")
DISCARD_PERCENT = flags.DEFINE_float(
    "discard_percent", 0.0, "Treat (--treatment; by default ignore in the loss) the "
    "top-scored p% of each class's implicit negatives listed in --teacher_flags. 0 trains on "
    "the labels as given.")
TREATMENT = flags.DEFINE_enum(
    "treatment", treatments.MASK, list(treatments.TREATMENTS),
    "What a student does with its flagged entries: mask (left out of the loss, the paper), "
    "soft (the teacher's score as target), distill (every target blends label and teacher "
    "score by --distill_weight, flagged ones take the teacher's score), positive (made "
    "positives).")
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
  treatment = treatments.Treatment(TREATMENT.value, train_options.DISTILL_WEIGHT.value)
  scores = (scoring.read_scores(TEACHER_SCORES.value)
            if treatment.needs_teacher_scores and TEACHER_SCORES.value else None)
  told = targets.read(TEACHER_FLAGS.value, DISCARD_PERCENT.value, treatment, scores,
                      train_options.propagated_ontology(),
                      examples.read_info(TRAIN.value).class_map.mids,
                      reviewed=train_options.REVIEWED.value)
  training.train(TRAIN.value, MODEL_DIR.value, train_options.config_from_flags(),
                 targets=told, eval_dir=EVAL.value, overwrite=OVERWRITE.value)


def run():
  cli.run(main)


if __name__ == "__main__":
  run()
