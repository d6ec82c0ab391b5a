"""The training recipe as absl flags, shared by tfsk_train, tfsk_sweep and tfsk_demo.

Every flag defaults to TrainConfig's value; `config_from_flags()` builds the dataclass.
"""

from absl import flags

from tf_skeptical_bin import checks
from tf_skeptical import inference, models, training, treatments
from tf_skeptical.training import TrainConfig

_D = TrainConfig()
MODEL = flags.DEFINE_enum("model", _D.model, sorted(models.MODELS), "Architecture.")
WIDTH = flags.DEFINE_float("width", _D.width, "MobileNetV1 width multiplier.")
EPOCHS = flags.DEFINE_integer("epochs", _D.epochs, "Epochs.")
STEPS = flags.DEFINE_integer("steps_per_epoch", _D.steps_per_epoch,
                             "Steps per epoch; 0 = one pass over the train patches.")
BATCH = flags.DEFINE_integer("batch_size", _D.batch_size, "Patches per batch.")
LR = flags.DEFINE_float("learning_rate", _D.learning_rate, "Adam's (initial) learning rate.")
BN_MOMENTUM = flags.DEFINE_float(
    "bn_momentum", _D.bn_momentum, "BatchNorm momentum; Keras' 0.99 suits only long runs.")
SCHEDULE = flags.DEFINE_enum("schedule", _D.schedule, ["cosine", "constant"],
                             "Learning-rate schedule over all steps.")
TRAIN_HOP = flags.DEFINE_integer(
    "train_hop_frames", _D.train_hop_frames,
    "Frames between training patches (96 = non-overlapping). Evaluation cuts patches at the "
    "examples' frontend hop (YAMNet: 48).")
POOLING = flags.DEFINE_enum("pooling", _D.pooling, list(inference.POOLINGS),
                            "How patch scores pool into a clip score for evaluation.")
EVAL_EVERY = flags.DEFINE_integer(
    "eval_every_epochs", _D.eval_every_epochs,
    "With eval examples: clip-level d'/lwlrap/mAP every this many epochs and after the last "
    "(the result's numbers); 1 = a TensorBoard point every epoch.", lower_bound=1)
BALANCED = flags.DEFINE_bool("balanced", _D.balanced,
                             "Class-balanced sampling (rare classes are seen more often).")
DETERMINISTIC = flags.DEFINE_bool(
    "deterministic_input", _D.deterministic_input,
    "The same --seed gives the same batches in the same order (a little slower): runs "
    "compared by seed then differ only by their labels and flags.")
STRATEGY = flags.DEFINE_enum(
    "strategy", _D.strategy, list(training.STRATEGIES),
    "tf.distribute strategy: default (one device), mirrored (this machine's devices), or "
    "multi_worker (MultiWorkerMirroredStrategy over the cluster in TF_CONFIG: start the same "
    "command on every worker; the chief writes --model_dir; docs/multi_worker.md).")
MIXED = flags.DEFINE_bool("mixed_precision", _D.mixed_precision, "mixed_float16 training.")
BACKUP_STEPS = flags.DEFINE_integer(
    "backup_every_steps", _D.backup_every_steps,
    "Back up for resuming every this many steps; 0 = at the end of every epoch.")
SEED = flags.DEFINE_integer("seed", _D.seed, "Random seed.")
REJECT_PER_EPOCH = flags.DEFINE_float(
    "reject_per_epoch", _D.reject_per_epoch,
    "Online large-loss rejection (LL-R, the teacher-free peer): each batch, ignore this % "
    "more of the implicit negatives with the largest loss every epoch. 0 = off.")
TREATMENT = flags.DEFINE_enum(
    "treatment", _D.treatment, list(treatments.TREATMENTS),
    "What a student does with its flagged entries: mask (left out of the loss, the paper), "
    "soft (the teacher's score as target), distill (every target blends label and teacher "
    "score by --distill_weight, flagged ones take the teacher's score), positive (made "
    "positives).")
DISTILL_WEIGHT = flags.DEFINE_float(
    "distill_weight", _D.distill_weight,
    "distill: the teacher score's share of every target (EfficientAT: 0.9).",
    lower_bound=0.0, upper_bound=1.0)
ONTOLOGY = flags.DEFINE_string(
    "ontology", _D.ontology,
    "An AudioSet-layout ontology.json: with --propagate_labels every positive's ancestors "
    "are positives too (YAMNet's practice), and flagging never flags an ancestor of a "
    "labelled class. Empty: none.")
PROPAGATE = flags.DEFINE_bool(
    "propagate_labels", _D.propagate_labels,
    "With --ontology: train on labels propagated to their ancestors (off: only flagging "
    "uses the ontology).")
REJECT_MAX = flags.DEFINE_float("reject_max", _D.reject_max,
                                "Cap, in %, of the large-loss rejection rate (100 = none, as "
                                "in LL-R).")
checks.positive(WIDTH, EPOCHS, BATCH, LR, TRAIN_HOP)
checks.non_negative(STEPS, BACKUP_STEPS)
checks.fraction(BN_MOMENTUM, high_open=True)
checks.fraction(DISTILL_WEIGHT)
checks.percent(REJECT_PER_EPOCH, REJECT_MAX)


def config_from_flags() -> TrainConfig:
  return TrainConfig(
      model=MODEL.value, width=WIDTH.value, epochs=EPOCHS.value, steps_per_epoch=STEPS.value,
      batch_size=BATCH.value, learning_rate=LR.value, bn_momentum=BN_MOMENTUM.value,
      schedule=SCHEDULE.value, train_hop_frames=TRAIN_HOP.value, pooling=POOLING.value,
      eval_every_epochs=EVAL_EVERY.value,
      balanced=BALANCED.value, deterministic_input=DETERMINISTIC.value, strategy=STRATEGY.value, mixed_precision=MIXED.value,
      backup_every_steps=BACKUP_STEPS.value, seed=SEED.value,
      reject_per_epoch=REJECT_PER_EPOCH.value, reject_max=REJECT_MAX.value,
      treatment=TREATMENT.value, distill_weight=DISTILL_WEIGHT.value,
      ontology=ONTOLOGY.value, propagate_labels=PROPAGATE.value)
