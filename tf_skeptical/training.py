"""Training a teacher or a student: fit() with clip-level evaluation, TensorBoard and resume.

A model directory holds `logs/` (TensorBoard: loss, masked fraction, learning rate, and
clip-level d'/lwlrap/mAP on the eval set every few epochs and after the last), `eval_scores.npz`
(the eval clip scores of the model saved, for comparing runs), `backup/` (Keras BackupAndRestore,
so a killed run resumes where its last backup was), `model.keras` (the model after the
last epoch, recording the features it was trained on) and `result.json`, written last: its
presence means done.

No "best epoch" checkpoint is kept: the eval set is the test set of the experiment, and
choosing an epoch by it would flatter every run. Teachers and students alike are the model
after the last epoch.
"""

import dataclasses
import math
import os
import tempfile
import time
from typing import Optional

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from tf_skeptical import (errors, evaluation, folds, inference, input_pipeline, metrics, models,
                          pretrained)
from tf_skeptical.data import examples
from tf_skeptical.targets import Targets
from tf_skeptical.util import files, output_paths
from tf_skeptical.large_loss_rejection import RejectionSchedule
from tf_skeptical.masked_loss import MaskedBCEModel

RESULT = "result.json"
BACKUP = "backup"
LOGS = "logs"
OUTPUT = output_paths.OutputKind("model directory",
                                 (RESULT, BACKUP, LOGS, inference.MODEL_FILE))


def _setting(default, help: str, choices=None, flag: bool = True, **bounds):
  """A TrainConfig field with what its flag says about it (bin/train_options.py makes the
  flags from these): the help, the allowed values, and bounds for bin/checks.py."""
  return dataclasses.field(default=default, metadata=dict(help=help, choices=choices,
                                                          flag=flag, bounds=bounds))


STRATEGIES = ("default", "mirrored", "multi_worker")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """The training recipe of a teacher or a student (what they are told is targets.py's)."""

  model: str = _setting("mobilenet_v1", "Architecture.", choices=tuple(sorted(models.MODELS)))
  width: float = _setting(1.0, "MobileNetV1 width multiplier.", positive=True)
  epochs: int = _setting(10, "Epochs.", positive=True)
  steps_per_epoch: int = _setting(0, "Steps per epoch; 0 = one pass over the train patches.",
                                  low=0)
  batch_size: int = _setting(64, "Patches per batch.", positive=True)
  learning_rate: float = _setting(3e-3, "Adam's (initial) learning rate.", positive=True)
  bn_momentum: float = _setting(0.9, "BatchNorm momentum; Keras' 0.99 lags badly in short "
                                "runs (models.py).", low=0.0, high=1.0, high_open=True)
  schedule: str = _setting("cosine", "Learning-rate schedule over all steps.",
                           choices=("cosine", "constant"))
  train_hop_frames: int = _setting(
      96, "Frames between training patches (96 = non-overlapping). Evaluation cuts patches "
      "at the examples' frontend hop (YAMNet: 48).", positive=True)
  pooling: str = _setting("mean", "How patch scores pool into a clip score for evaluation.",
                          choices=inference.POOLINGS)
  eval_every_epochs: int = _setting(
      4, "With eval examples: clip-level d'/lwlrap/mAP every this many epochs and after the "
      "last (the result's numbers); 1 = a TensorBoard point every epoch. Each evaluation "
      "scores every eval patch.", positive=True)
  balanced: bool = _setting(False, "Class-balanced sampling (rare classes are seen more "
                            "often).")
  deterministic_input: bool = _setting(
      False, "The same --seed gives the same batches in the same order (a little slower): "
      "runs compared by seed then differ only by their labels and flags.")
  strategy: str = _setting(
      "default", "tf.distribute strategy: default (one device), mirrored (this machine's "
      "devices), or multi_worker (MultiWorkerMirroredStrategy over the cluster in TF_CONFIG: "
      "start the same command on every worker; the chief writes --model_dir; "
      "docs/multi_worker.md).", choices=STRATEGIES)
  mixed_precision: bool = _setting(False, "mixed_float16 training (for GPUs; slower on "
                                   "CPUs).")
  backup_every_steps: int = _setting(
      0, "Back up for resuming every this many steps; 0 = at the end of every epoch.", low=0)
  reject_per_epoch: float = _setting(
      0.0, "Online large-loss rejection (LL-R, the teacher-free peer): each batch, ignore "
      "this % more of the implicit negatives with the largest loss every epoch. 0 = off.",
      low=0.0, high=100.0)
  reject_max: float = _setting(100.0, "Cap, in %, of the large-loss rejection rate (100 = "
                               "none, as in LL-R).", low=0.0, high=100.0)
  # Out-of-fold teachers (folds.py): train on the clips outside fold holdout_fold of
  # holdout_folds. 0 folds: every clip. Set by the sweep, not a flag.
  holdout_folds: int = _setting(0, "", flag=False)
  holdout_fold: int = _setting(0, "", flag=False)
  seed: int = _setting(0, "Random seed.")
  init_from: str = _setting(
      "", "Start from a pretrained tagger instead of random weights: YAMNet's released "
      "weights file (yamnet.h5, the user's download; --model=mobilenet_v1 --width=1 on "
      "YAMNet's 96 x 64 log-mel patches), or a run of this project (its directory or "
      ".keras file, the same architecture). The classifier head is mapped by mid from the "
      "source's class map; new classes start fresh (pretrained.py).")
  init_class_map: str = _setting(
      "", "The class map of --init_from (index,mid,display_name); default: "
      "yamnet_class_map.csv beside a YAMNet weights file, or a run's train examples' map.")
  frozen_epochs: int = _setting(
      -1, "Epochs at the start with the backbone (every layer but the classifier head) "
      "frozen, its BatchNorm in inference mode: the new head learns before it can disturb "
      "the pretrained features. -1: 1 with --init_from, else 0.", low=-1)
  backbone_learning_rate_scale: float = _setting(
      -1.0, "After the frozen epochs, the backbone's share of each update (a learning rate "
      "that much lower than the head's, whatever the optimizer). -1: 0.1 with --init_from, "
      "else 1.", low=-1.0)
  freeze_batchnorm: bool = _setting(
      False, "Keep every BatchNorm layer as the start left it (moving statistics and "
      "offsets; inference mode): for a small fine-tuning set whose batches are a poor "
      "estimate of the pretrained statistics.")

  def __post_init__(self):
    """Refuses a recipe that cannot train (bin/checks.py refuses the same values as flags,
    naming the flag, and epochs = 0 too: here it makes an untrained reference model)."""
    for name, low in (("epochs", 0), ("batch_size", 1), ("steps_per_epoch", 0),
                      ("train_hop_frames", 1), ("eval_every_epochs", 1),
                      ("backup_every_steps", 0)):
      if not getattr(self, name) >= low:
        raise errors.BadValue(f"TrainConfig.{name} must be >= {low}, got {getattr(self, name)}")
    for name in ("width", "learning_rate"):
      if not getattr(self, name) > 0:  # NaN too
        raise errors.BadValue(f"TrainConfig.{name} must be > 0, got {getattr(self, name)}")
    for name in ("frozen_epochs", "backbone_learning_rate_scale"):
      if not (getattr(self, name) == -1 or getattr(self, name) >= 0):
        raise errors.BadValue(f"TrainConfig.{name} must be -1 (automatic) or >= 0, got "
                              f"{getattr(self, name)}")
    if self.strategy != "default" and (self.backbone_frozen_epochs
                                       or self.backbone_update_scale != 1):
      raise errors.BadValue("a frozen or slower backbone (--frozen_epochs, "
                            "--backbone_learning_rate_scale) trains on one device only: "
                            "use --strategy=default, or set them to 0 and 1")

  @property
  def backbone_frozen_epochs(self) -> int:
    """frozen_epochs, -1 resolved: 1 when starting from a pretrained tagger, else 0."""
    return self.frozen_epochs if self.frozen_epochs >= 0 else int(bool(self.init_from))

  @property
  def backbone_update_scale(self) -> float:
    """backbone_learning_rate_scale, -1 resolved: 0.1 from a pretrained tagger, else 1."""
    if self.backbone_learning_rate_scale >= 0:
      return self.backbone_learning_rate_scale
    return 0.1 if self.init_from else 1.0

  @property
  def excluded_fold(self) -> Optional[folds.Fold]:
    return folds.Fold(self.holdout_fold, self.holdout_folds) if self.holdout_folds else None


class EpochClock(keras.callbacks.Callback):
  """Seconds each epoch spent in its training steps (first in the callbacks, so that its
  epoch end comes before the evaluation's)."""

  def __init__(self):
    super().__init__()
    self.seconds, self._start = [], 0.0

  def on_epoch_begin(self, epoch, logs=None):
    self._start = time.perf_counter()

  def on_epoch_end(self, epoch, logs=None):
    self.seconds.append(time.perf_counter() - self._start)


class BackboneSchedule(keras.callbacks.Callback):
  """The backbone's share of each update, epoch by epoch: 0 (frozen) for the first
  `frozen` epochs, then `scale` (masked_loss.MaskedBCEModel.backbone_scale)."""

  def __init__(self, frozen: int, scale: float):
    super().__init__()
    self.frozen, self.scale = frozen, scale

  def on_epoch_begin(self, epoch, logs=None):
    self.model.backbone_scale.assign(0.0 if epoch < self.frozen else self.scale)


class ClipEvaluation(keras.callbacks.Callback):
  """Adds clip-level val_d_prime / val_lwlrap / val_mAP and learning_rate to the logs of
  every `every`-th epoch and of the last one, and keeps the last evaluation's clip scores
  (the result's numbers: the model after the last epoch is the model saved)."""

  def __init__(self, eval_dir: str, pooling: str, every: int, last_epoch: int):
    super().__init__()
    self.eval_dir, self.pooling = eval_dir, pooling
    self.every, self.last_epoch = max(1, every), last_epoch
    self.scores = None  # (epoch, clip ids, labels, scores) of the last evaluation
    self.seconds = 0.0

  def on_epoch_end(self, epoch, logs=None):
    if (epoch + 1) % self.every and epoch != self.last_epoch:
      return
    start = time.perf_counter()
    ids, labels, scores = inference.predict_clip_scores(self.model, self.eval_dir,
                                                        pooling=self.pooling)
    self.seconds += time.perf_counter() - start
    self.scores = (epoch, ids, labels, scores)
    if logs is not None:
      logs.update({f"val_{k}": v for k, v in metrics.evaluate(labels, scores).summary().items()
                   if k in ("d_prime", "lwlrap", "mAP")})
      logs["learning_rate"] = float(keras.ops.convert_to_numpy(
          self.model.optimizer.learning_rate))

  def final(self, model: keras.Model):
    """(clip ids, labels, scores) of the model after its last epoch: the last evaluation's
    when it was of that epoch (a resumed run that had no epoch left evaluates now)."""
    if self.scores is not None and self.scores[0] == self.last_epoch:
      return self.scores[1:]
    return inference.predict_clip_scores(model, self.eval_dir, pooling=self.pooling)


def balanced_clip_weights(examples_dir: str) -> dict:
  """Acceptance probability per clip so that rare classes are seen about as often as common.

  A clip is kept with probability (rarest class count / count of its rarest positive class).
  """
  ds, _ = input_pipeline.clips(examples_dir)
  ids, labels = [], []
  for clip_id, positives in ds.map(lambda c: (c["clip_id"], c["positives"])).as_numpy_iterator():
    ids.append(clip_id.decode("utf-8"))
    labels.append(positives)
  labels = np.asarray(labels) > 0
  counts = labels.sum(axis=0).astype(np.float64)
  floor = counts[counts > 0].min() if (counts > 0).any() else 1.0
  inverse = np.where(labels, floor / np.maximum(counts, 1), 0).max(axis=1)
  inverse[~labels.any(axis=1)] = floor / len(ids)
  return dict(zip(ids, inverse.astype(np.float32)))


class Backup(keras.callbacks.Callback):
  """Backs up the weights (optimizer state included) so that a run killed at any instant
  resumes from its last backup.

  Every `every_steps` steps, or at the end of every epoch, the weights and then a small
  JSON (the epoch to resume at and the finished epochs' logs) are each written under a
  temporary name and renamed. A kill between the two renames leaves newer weights with
  the previous epoch, so at worst part of an epoch is redone. The backup stays until the
  result is written (Keras' BackupAndRestore deletes it when fit() ends, so a kill between
  fit() and the result restarted at epoch 1), and it records absolute epochs, so repeated
  kills resume where the last one stopped. It records the recipe it was started with
  (`recipe`), and a resume with another one is refused before any weight is loaded.
  """

  WEIGHTS, STATE = "backup.weights.h5", "backup.json"

  def __init__(self, backup_dir: str, every_steps: int = 0, recipe: Optional[dict] = None):
    super().__init__()
    self.dir, self.every_steps, self.recipe = backup_dir, every_steps, recipe or {}
    self.epoch, self.steps, self.history = 0, 0, []

  def restore(self, model: keras.Model) -> int:
    """Loads the last backup into a compiled model; returns the epoch to resume at."""
    state_path = os.path.join(self.dir, self.STATE)
    if not files.exists(state_path):
      return 0
    state = files.read_json(state_path)
    model.optimizer.build(model.trainable_variables)
    model.load_weights(os.path.join(self.dir, self.WEIGHTS))
    self.history = state["history"]
    logging.info("resuming %s at epoch %d", self.dir, state["epoch"] + 1)
    return state["epoch"]

  def _save(self, resume_epoch: int) -> None:
    files.makedirs(self.dir)
    weights = os.path.join(self.dir, self.WEIGHTS)
    tmp = weights.replace(".weights.h5", ".tmp.weights.h5")  # Keras wants this ending
    self.model.save_weights(tmp)
    files.rename(tmp, weights)
    files.write_json(os.path.join(self.dir, self.STATE),
                     dict(epoch=resume_epoch, history=self.history, recipe=self.recipe))

  def check_recipe(self) -> None:
    """Refuses to resume a backup made with another recipe, naming the first setting that
    differs (a backup without a recorded recipe predates the check and is trusted). Called
    before the run builds anything."""
    state_path = os.path.join(self.dir, self.STATE)
    started = files.read_json(state_path).get("recipe") if files.exists(state_path) else None
    if started is None:
      return
    for key in sorted(started):  # a setting newer than the backup is not in it: trusted
      was, now = started.get(key), self.recipe.get(key)
      if was != now:
        setting = f"--{key}" if key in _FLAG_SETTINGS else f"its {key.replace('_', ' ')}"
        raise ResumeMismatch(
            f"{os.path.dirname(self.dir)}: its backup was started with {setting} = "
            f"{was!r}, and this run asks for {now!r}: run again with the same settings to "
            f"resume, or remove {self.dir} to start over")

  def on_epoch_begin(self, epoch, logs=None):
    self.epoch = epoch

  def on_train_batch_end(self, batch, logs=None):
    self.steps += 1
    if self.every_steps and self.steps % self.every_steps == 0:
      self._save(self.epoch)

  def on_epoch_end(self, epoch, logs=None):
    self.history.append({k: float(v) for k, v in (logs or {}).items()})
    self._save(epoch + 1)

  def history_by_metric(self) -> dict:
    keys = sorted({k for logs in self.history for k in logs})
    return {k: [logs.get(k, float("nan")) for logs in self.history] for k in keys}


# TrainConfig fields that do not change what is trained, so a resume may change them.
_RESUMABLE = ("eval_every_epochs", "backup_every_steps", "pooling")
_FLAG_SETTINGS = {f.name for f in dataclasses.fields(TrainConfig)} | {"discard_percent",
                                                                      "treatment", "ontology"}


class ResumeMismatch(errors.BadValue):
  """A killed run was started again with another recipe than its backup's."""


def backup_recipe(cfg: TrainConfig, info: examples.ExamplesInfo, told: Targets) -> dict:
  """What a backup must agree with to be resumed: the recipe but for _RESUMABLE, the
  examples' class map and clip set, and what the student is told (the treatment, which
  flags, how many entries)."""
  recipe = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in _RESUMABLE}
  record = told.record()
  recipe.update(class_map=info.extra.get("class_map_id"), clip_set=info.extra.get("clips_id"),
                flags_teacher=(record["flags"] or {}).get("model_id"),
                **{k: v for k, v in record.items() if k != "flags"})
  return recipe


class NonFiniteLoss(errors.UserError, RuntimeError):
  """The training loss became NaN or infinite: the model is useless and nothing is saved."""


class StopOnNonFiniteLoss(keras.callbacks.Callback):
  """Raises NonFiniteLoss at the first batch whose loss is not finite (Keras' own
  TerminateOnNaN ends fit() quietly, and the run would then be saved as if complete)."""

  def __init__(self, model_dir: str):
    super().__init__()
    self.model_dir, self.epoch = model_dir, 0

  def on_epoch_begin(self, epoch, logs=None):
    self.epoch = epoch

  def on_train_batch_end(self, batch, logs=None):
    loss = float((logs or {}).get("loss", 0.0))
    if not math.isfinite(loss):
      raise NonFiniteLoss(f"{self.model_dir}: the training loss became {loss} in epoch "
                          f"{self.epoch + 1}, batch {batch + 1}; no model or result is written. "
                          "Check the examples for non-finite features, or lower the learning "
                          "rate.")


def make_strategy(name: str) -> tf.distribute.Strategy:
  """The tf.distribute strategy called `name`. multi_worker: MultiWorkerMirroredStrategy,
  its cluster and this process's place in it read from TF_CONFIG (docs/multi_worker.md); it
  must be made before any other TensorFlow op runs in the process."""
  if name == "default":
    return tf.distribute.get_strategy()
  if name == "mirrored":
    return tf.distribute.MirroredStrategy()
  if name == "multi_worker":
    return tf.distribute.MultiWorkerMirroredStrategy()
  raise errors.BadValue(f"strategy must be one of {STRATEGIES}, got {name!r}")


def is_chief(strategy: tf.distribute.Strategy) -> bool:
  """Whether this process writes the run's outputs: always, except on the workers of a
  multi-worker cluster other than the chief (task `chief`, or else worker 0)."""
  resolver = getattr(strategy, "cluster_resolver", None)
  if resolver is None or not resolver.task_type:
    return True
  if resolver.task_type == "chief":
    return True
  return (resolver.task_type == "worker" and resolver.task_id == 0
          and "chief" not in resolver.cluster_spec().as_dict())


def _learning_rate(cfg: TrainConfig, total_steps: int):
  if cfg.schedule == "constant":
    return cfg.learning_rate
  if cfg.schedule == "cosine":
    # At least one step: a zero-epoch run (an untrained model, e.g. a baseline for the
    # teacher check) builds its optimizer too.
    return keras.optimizers.schedules.CosineDecay(cfg.learning_rate, max(1, total_steps),
                                                  alpha=0.05)
  raise errors.BadValue(f"schedule must be 'cosine' or 'constant', got {cfg.schedule!r}")


def compile_model(info: examples.ExamplesInfo, cfg: TrainConfig, total_steps: int):
  """A new model for info's examples (teacher or student alike: only the mask differs),
  compiled with the masked loss and cfg's optimizer; it records info's features. Call it in
  the strategy's scope. With several replicas, BatchNorm takes its statistics over the
  global batch, so that N replicas take the step one machine would."""
  backbone = models.build_model(cfg.model, info.features.input_shape, info.num_classes,
                                cfg.width, cfg.bn_momentum)
  start = None
  if cfg.init_from:
    if pretrained.is_weights_file(cfg.init_from) and (
        tuple(info.features.input_shape) != (96, 64) or cfg.model != "mobilenet_v1"):
      raise errors.BadValue(f"{cfg.init_from}: YAMNet's weights take MobileNetV1 on 96 x 64 "
                            "log-mel patches (YAMNet's frontend), not "
                            f"{cfg.model} on {tuple(info.features.input_shape)}")
    start = pretrained.start_from(backbone, cfg.init_from, info.class_map.mids,
                                  cfg.init_class_map or None)
  if tf.distribute.get_strategy().num_replicas_in_sync > 1:
    for layer in backbone.layers:
      if isinstance(layer, keras.layers.BatchNormalization):
        layer.synchronized = True
  model = MaskedBCEModel.wrap(backbone, features=info.features.to_dict(), made_from={
      k: info.extra.get(k) for k in ("clips_id", "class_map_id")})
  if cfg.freeze_batchnorm:
    for layer in model.layers:
      if isinstance(layer, keras.layers.BatchNormalization):
        layer.trainable = False  # inference mode, statistics and offsets kept
  model.scaled_backbone = bool(cfg.backbone_frozen_epochs or cfg.backbone_update_scale != 1)
  model.compile(optimizer=keras.optimizers.Adam(_learning_rate(cfg, total_steps)),
                jit_compile=False)
  model.start = start  # pretrained.Start, or None: recorded in result.json
  return model


def is_trained(model_dir: str) -> bool:
  return files.exists(os.path.join(model_dir, RESULT))


def train(train_dir: str, model_dir: str, cfg: TrainConfig = TrainConfig(), *,
          targets: Targets = Targets(), eval_dir: Optional[str] = None, verbose: int = 1,
          overwrite: bool = False) -> dict:
  """Trains (or resumes) a model on train_dir as `targets` tell it (targets.py: the labels
  as given by default; a student's flags and treatment, an experiment's added positives,
  the ontology); returns and writes result.json.

  A finished model directory (result.json present) is left as it is and its result
  returned, unless overwrite: scores and flags made with that model depend on it.
  """
  strategy = make_strategy(cfg.strategy)  # first: multi-worker needs it before any op
  if not is_chief(strategy):
    # Another worker of a multi-worker run trains in step with the chief; its copy of the
    # outputs goes to a scratch directory, so that only the chief writes model_dir.
    with tempfile.TemporaryDirectory(prefix="tfsk_worker_") as scratch:
      return _train(train_dir, scratch, cfg, targets, eval_dir, verbose, strategy)
  output_paths.check_directory(model_dir, OUTPUT, "--model_dir")
  if is_trained(model_dir) and not overwrite:
    logging.info("%s is already trained; its result is kept (overwrite to train it again)",
                 model_dir)
    return files.read_json(os.path.join(model_dir, RESULT))
  examples.read_info(train_dir)  # bad or truncated examples refused before anything is made
  with files.output_lock(model_dir):
    if overwrite:
      files.remove(model_dir)
    return _train(train_dir, model_dir, cfg, targets, eval_dir, verbose, strategy)


def _train(train_dir, model_dir, cfg, targets, eval_dir, verbose, strategy) -> dict:
  start = time.perf_counter()
  files.makedirs(model_dir)
  keras.utils.set_random_seed(cfg.seed)
  if cfg.mixed_precision:
    keras.mixed_precision.set_global_policy("mixed_float16")
  info = examples.read_info(train_dir)
  backup = Backup(os.path.join(model_dir, BACKUP), cfg.backup_every_steps,
                  backup_recipe(cfg, info, targets))
  backup.check_recipe()
  targets.check_examples(info)
  if eval_dir:
    info.features.check_same(f"train examples {train_dir}",
                             examples.read_info(eval_dir).features, f"eval examples {eval_dir}")
  kept = 1 - 1 / cfg.holdout_folds if cfg.holdout_folds else 1.0  # expected share of clips
  steps = cfg.steps_per_epoch or math.ceil(
      kept * info.num_clips * info.patches_per_clip(cfg.train_hop_frames) / cfg.batch_size)
  weights = balanced_clip_weights(train_dir) if cfg.balanced else None
  dataset = input_pipeline.training_dataset(
      train_dir, cfg.batch_size, targets=targets, hop_frames=cfg.train_hop_frames,
      seed=cfg.seed, clip_weights=weights, with_implicit=cfg.reject_per_epoch > 0,
      exclude_fold=cfg.excluded_fold, deterministic=cfg.deterministic_input)
  with strategy.scope():
    model = compile_model(info, cfg, steps * cfg.epochs)

  initial_epoch = backup.restore(model)
  # The non-finite check first, so that it stops the run before a backup of its weights;
  # the backup after the callbacks that add to an epoch's logs.
  clock = EpochClock()
  callbacks = [clock, StopOnNonFiniteLoss(model_dir)]
  if model.scaled_backbone:
    callbacks.append(BackboneSchedule(cfg.backbone_frozen_epochs, cfg.backbone_update_scale))
  if cfg.reject_per_epoch > 0:
    callbacks.append(RejectionSchedule(cfg.reject_per_epoch, cfg.reject_max))
  clip_eval = (ClipEvaluation(eval_dir, cfg.pooling, cfg.eval_every_epochs, cfg.epochs - 1)
               if eval_dir else None)
  if clip_eval:
    callbacks.append(clip_eval)
  callbacks += [backup, keras.callbacks.TensorBoard(os.path.join(model_dir, LOGS),
                                                    update_freq="epoch")]
  fit_start = time.perf_counter()
  model.fit(dataset, epochs=cfg.epochs, initial_epoch=initial_epoch, steps_per_epoch=steps,
            callbacks=callbacks, verbose=verbose, shuffle=False)  # tf.data already shuffles
  fit_end = time.perf_counter()

  tmp = os.path.join(model_dir, "model.tmp.keras")
  model.save(tmp)
  files.rename(tmp, os.path.join(model_dir, inference.MODEL_FILE))
  result = dict(config=dataclasses.asdict(cfg), train_dir=files.absolute(train_dir),
                steps_per_epoch=steps, **targets.record(),
                init_from=dataclasses.asdict(model.start) if model.start else None,
                history=backup.history_by_metric())
  if clip_eval:  # the model as saved; its clip scores kept for comparing runs
    ids, labels, scores = clip_eval.final(model)
    result["eval"] = metrics.evaluate(labels, scores).summary()
    evaluation.write_eval_scores(model_dir, ids, labels, scores, cfg.pooling)
  # Where this run's time went (a resumed run: this process's part).
  trained = sum(clock.seconds)
  result["seconds"] = dict(
      total=time.perf_counter() - start, setup=fit_start - start, train_steps=trained,
      first_epoch_steps=clock.seconds[0] if clock.seconds else 0.0,
      evaluation=clip_eval.seconds if clip_eval else 0.0,
      other_in_fit=fit_end - fit_start - trained - (clip_eval.seconds if clip_eval else 0.0),
      patches_per_second=len(clock.seconds) * steps * cfg.batch_size / max(trained, 1e-9))
  files.write_json(os.path.join(model_dir, RESULT), result)
  files.remove(backup.dir)  # the result now stands for the run
  if "eval" in result:
    logging.info("trained %s: d' %.3f, lwlrap %.3f", model_dir, result["eval"]["d_prime"],
                 result["eval"]["lwlrap"])
  return result
