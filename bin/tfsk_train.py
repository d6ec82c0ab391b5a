"""Trains a teacher (labels as given) or a student (flagged entries masked out of the loss).

  tfsk_train --train=examples/train --eval=examples/eval --model_dir=runs/teacher
  tfsk_train --train=examples/train --eval=examples/eval --model_dir=runs/p1 \
      --flags=flags/flags.npz --discard_percent=1

Watch it with `tensorboard --logdir=runs`. Killed runs resume from their last backup
when started again with the same flags.
"""

from absl import flags

from tf_skeptical import cli, flagging, models, training

_D = training.TrainConfig()
TRAIN = flags.DEFINE_string("train", None, "Train examples directory (from tfsk_prepare).")
EVAL = flags.DEFINE_string(
    "eval", None, "Eval examples directory: clip-level d', lwlrap and mAP after every epoch "
    "in TensorBoard, and the best checkpoint by d'. Optional.")
MODEL_DIR = flags.DEFINE_string("model_dir", None, "Where logs, checkpoints and the model go.")
MODEL = flags.DEFINE_enum("model", _D.model, sorted(models.MODELS), "Architecture.")
WIDTH = flags.DEFINE_float("width", _D.width, "MobileNetV1 width multiplier.")
FLAGS_FILE = flags.DEFINE_string("flags", None, "Flags file from tfsk_flag (for a student).")
DISCARD_PERCENT = flags.DEFINE_float(
    "discard_percent", 0.0, "Ignore, in the loss, the top-scored p%% of each class's implicit "
    "negatives listed in --flags. 0 trains on the labels as given.")
EPOCHS = flags.DEFINE_integer("epochs", _D.epochs, "Epochs.")
STEPS = flags.DEFINE_integer("steps_per_epoch", _D.steps_per_epoch,
                             "Steps per epoch; 0 = one pass over the train patches.")
BATCH = flags.DEFINE_integer("batch_size", _D.batch_size, "Patches per batch.")
LR = flags.DEFINE_float("learning_rate", _D.learning_rate, "Adam's (initial) learning rate.")
BN_MOMENTUM = flags.DEFINE_float(
    "bn_momentum", _D.bn_momentum, "BatchNorm momentum; Keras' 0.99 suits only long runs.")
SCHEDULE = flags.DEFINE_enum("schedule", _D.schedule, ["cosine", "constant"],
                             "Learning-rate schedule over all steps.")
HOP = flags.DEFINE_integer("hop_frames", _D.hop_frames, "Frames between train patches.")
POOLING = flags.DEFINE_enum("pooling", _D.pooling, ["mean", "max"],
                            "How patch scores pool into a clip score for evaluation.")
BALANCED = flags.DEFINE_bool("balanced", _D.balanced,
                             "Class-balanced sampling (rare classes are seen more often).")
STRATEGY = flags.DEFINE_enum("strategy", _D.strategy, ["default", "mirrored"],
                             "tf.distribute strategy.")
MIXED = flags.DEFINE_bool("mixed_precision", _D.mixed_precision, "mixed_float16 training.")
BACKUP_STEPS = flags.DEFINE_integer(
    "backup_every_steps", _D.backup_every_steps,
    "Back up for resuming every this many steps; 0 = at the end of every epoch.")
SEED = flags.DEFINE_integer("seed", _D.seed, "Random seed.")
flags.mark_flags_as_required(["train", "model_dir"])


def config_from_flags() -> training.TrainConfig:
  return training.TrainConfig(
      model=MODEL.value, width=WIDTH.value, epochs=EPOCHS.value, steps_per_epoch=STEPS.value,
      batch_size=BATCH.value, learning_rate=LR.value, bn_momentum=BN_MOMENTUM.value, schedule=SCHEDULE.value,
      hop_frames=HOP.value, pooling=POOLING.value, balanced=BALANCED.value,
      strategy=STRATEGY.value, mixed_precision=MIXED.value,
      backup_every_steps=BACKUP_STEPS.value, seed=SEED.value)


def main(argv):
  del argv
  if DISCARD_PERCENT.value > 0 and not FLAGS_FILE.value:
    raise flags.ValidationError("--discard_percent needs --flags")
  discards = (flagging.load_discards(FLAGS_FILE.value, DISCARD_PERCENT.value)
              if FLAGS_FILE.value else None)
  training.train(TRAIN.value, MODEL_DIR.value, config_from_flags(), eval_dir=EVAL.value,
                 discards=discards, extra_result=dict(discard_percent=DISCARD_PERCENT.value))


def run():
  cli.run(main)


if __name__ == "__main__":
  run()
