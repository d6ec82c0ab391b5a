"""Training a teacher or a student: fit() with clip-level evaluation, TensorBoard and resume.

A model directory holds `logs/` (TensorBoard: loss, masked fraction, learning rate, and
clip-level d'/lwlrap/mAP on the eval set each epoch), `backup/` (Keras BackupAndRestore,
so a killed run resumes where its last backup was), `checkpoints/best.keras`,
`model.keras` (the final model) and `result.json`, written last: its presence means done.
"""

import dataclasses
import math
import os
from typing import Optional

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from tf_skeptical import examples, files, input_pipeline, metrics, models
from tf_skeptical.input_pipeline import Discards
from tf_skeptical.masked_loss import MaskedBCEModel
from tf_skeptical.params import DEFAULT_FRONTEND

RESULT = "result.json"
MODEL = "model.keras"


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  model: str = "mobilenet_v1"
  width: float = 1.0
  epochs: int = 10
  steps_per_epoch: int = 0  # 0: one pass over the train patches
  batch_size: int = 64
  learning_rate: float = 3e-3
  bn_momentum: float = 0.9  # see models.py: 0.99 lags badly in short runs
  schedule: str = "cosine"  # or "constant"
  hop_frames: int = 96  # train patch hop; eval uses YAMNet's 48
  eval_hop_frames: int = 48
  pooling: str = "mean"
  balanced: bool = False
  strategy: str = "default"  # or "mirrored"
  mixed_precision: bool = False
  backup_every_steps: int = 0  # 0: back up at the end of every epoch
  # Online large-loss rejection (the LL-R peer): % of each batch's implicit negatives
  # rejected, growing by reject_per_epoch each epoch up to reject_max. 0: off.
  reject_per_epoch: float = 0.0
  reject_max: float = 0.0
  seed: int = 0


def model_input_shape(info: examples.ExamplesInfo):
  if info.feature_kind == examples.EMBEDDING:
    return (info.frames_per_clip, info.feature_dims)
  return (DEFAULT_FRONTEND.patch_frames, info.feature_dims)


def patches_per_clip(info: examples.ExamplesInfo, hop_frames: int) -> int:
  if info.feature_kind == examples.EMBEDDING:
    return 1
  return max(1, 1 + (info.frames_per_clip - DEFAULT_FRONTEND.patch_frames) // hop_frames)


def patch_probabilities(model: keras.Model, patches) -> np.ndarray:
  """Sigmoid of the model's logits for a batch of patches (Keras' cached predict function)."""
  logits = np.asarray(model.predict_on_batch(patches), np.float64)
  return (0.5 * (1.0 + np.tanh(0.5 * logits))).astype(np.float32)  # overflow-free sigmoid


def predict_clip_scores(model: keras.Model, examples_dir: str, batch_size: int = 256,
                        hop_frames: Optional[int] = None, pooling: str = "mean"):
  """Sigmoid scores pooled per clip: returns (clip_ids, labels [N, C], scores [N, C])."""
  ds, ids, labels = input_pipeline.eval_dataset(examples_dir, batch_size, hop_frames)
  patch_scores, clip_index = [], []
  for x, index in ds:
    patch_scores.append(patch_probabilities(model, x))
    clip_index.append(index.numpy())
  scores = metrics.pool_patches(np.concatenate(patch_scores), np.concatenate(clip_index),
                                len(ids), pooling)
  return ids, labels, scores.astype(np.float32)


class ClipEvaluation(keras.callbacks.Callback):
  """Adds clip-level val_d_prime / val_lwlrap / val_mAP and learning_rate to epoch logs."""

  def __init__(self, eval_dir: str, cfg: TrainConfig):
    super().__init__()
    self.eval_dir, self.cfg = eval_dir, cfg
    self.last = None

  def on_epoch_end(self, epoch, logs=None):
    _, labels, scores = predict_clip_scores(self.model, self.eval_dir, 256,
                                            self.cfg.eval_hop_frames, self.cfg.pooling)
    self.last = metrics.evaluate(labels, scores)
    if logs is not None:
      logs.update({f"val_{k}": v for k, v in self.last.summary().items()
                   if k in ("d_prime", "lwlrap", "mAP")})
      logs["learning_rate"] = float(keras.ops.convert_to_numpy(
          self.model.optimizer.learning_rate))


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


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
  """BackupAndRestore whose backup survives a kill at any instant.

  Keras writes latest.weights.h5 in place, so a SIGKILL during the write leaves a file
  that cannot be read and the restart fails. Here the weights and then the metadata are
  each written under a temporary name and renamed; a kill between the two renames leaves
  newer weights with the previous epoch count, so at worst part of an epoch is redone.
  """

  def _save_model(self):
    files.makedirs(self.backup_dir)
    tmp_weights = self._weights_path.replace(".weights.h5", ".tmp.weights.h5")
    self.model.save_weights(filepath=tmp_weights, overwrite=True)
    files.rename(tmp_weights, self._weights_path)
    files.write_json(self._training_metadata_path,
                     {"epoch": self._current_epoch, "batch": self._last_batch_seen})


def _strategy(name: str):
  if name == "default":
    return tf.distribute.get_strategy()
  if name == "mirrored":
    return tf.distribute.MirroredStrategy()
  raise ValueError(f"strategy must be 'default' or 'mirrored', got {name!r}")


def _learning_rate(cfg: TrainConfig, total_steps: int):
  if cfg.schedule == "constant":
    return cfg.learning_rate
  if cfg.schedule == "cosine":
    return keras.optimizers.schedules.CosineDecay(cfg.learning_rate, total_steps, alpha=0.05)
  raise ValueError(f"schedule must be 'cosine' or 'constant', got {cfg.schedule!r}")


def build_student(info: examples.ExamplesInfo, cfg: TrainConfig, total_steps: int):
  backbone = models.build_model(cfg.model, model_input_shape(info), info.num_classes,
                                cfg.width, cfg.bn_momentum)
  model = MaskedBCEModel.wrap(backbone)
  model.compile(optimizer=keras.optimizers.Adam(_learning_rate(cfg, total_steps)),
                jit_compile=False)
  return model


def is_trained(model_dir: str) -> bool:
  return files.exists(os.path.join(model_dir, RESULT))


def train(train_dir: str, model_dir: str, cfg: TrainConfig = TrainConfig(), *,
          eval_dir: Optional[str] = None, discards: Optional[Discards] = None,
          verbose: int = 1, extra_result: Optional[dict] = None) -> dict:
  """Trains (or resumes) a model on train_dir; returns and writes result.json."""
  files.makedirs(model_dir)
  keras.utils.set_random_seed(cfg.seed)
  if cfg.mixed_precision:
    keras.mixed_precision.set_global_policy("mixed_float16")
  info = examples.read_info(train_dir)
  steps = cfg.steps_per_epoch or math.ceil(
      info.num_clips * patches_per_clip(info, cfg.hop_frames) / cfg.batch_size)
  weights = balanced_clip_weights(train_dir) if cfg.balanced else None
  dataset = input_pipeline.training_dataset(
      train_dir, cfg.batch_size, discards=discards, hop_frames=cfg.hop_frames,
      seed=cfg.seed, clip_weights=weights, with_implicit=cfg.reject_per_epoch > 0)
  with _strategy(cfg.strategy).scope():
    model = build_student(info, cfg, steps * cfg.epochs)

  callbacks = [AtomicBackupAndRestore(
      os.path.join(model_dir, "backup"), save_freq=cfg.backup_every_steps or "epoch")]
  if cfg.reject_per_epoch > 0:
    from tf_skeptical.large_loss_rejection import RejectionSchedule
    callbacks.append(RejectionSchedule(cfg.reject_per_epoch, cfg.reject_max))
  evaluation = None
  if eval_dir:
    evaluation = ClipEvaluation(eval_dir, cfg)
    files.makedirs(os.path.join(model_dir, "checkpoints"))
    callbacks += [evaluation, keras.callbacks.ModelCheckpoint(
        os.path.join(model_dir, "checkpoints", "best.keras"), monitor="val_d_prime",
        mode="max", save_best_only=True)]
  callbacks.append(keras.callbacks.TensorBoard(os.path.join(model_dir, "logs"),
                                               update_freq="epoch"))
  history = model.fit(dataset, epochs=cfg.epochs, steps_per_epoch=steps, callbacks=callbacks,
                      verbose=verbose, shuffle=False)  # tf.data already shuffles

  tmp = os.path.join(model_dir, "model.tmp.keras")
  model.save(tmp)
  files.rename(tmp, os.path.join(model_dir, MODEL))
  result = dict(config=dataclasses.asdict(cfg), train_dir=files.absolute(train_dir),
                steps_per_epoch=steps,
                masked_entries=discards.count if discards else 0,
                history={k: [float(v) for v in vs] for k, vs in history.history.items()},
                **(extra_result or {}))
  if evaluation is not None:  # the final (averaged) model, as saved
    _, labels, scores = predict_clip_scores(model, eval_dir, 256, cfg.eval_hop_frames,
                                            cfg.pooling)
    result["eval"] = metrics.evaluate(labels, scores).summary()
  files.write_json(os.path.join(model_dir, RESULT), result)
  logging.info("trained %s: %s", model_dir, result.get("eval", {}))
  return result


def load_model(model_dir_or_file: str) -> keras.Model:
  """Loads a trained model from its directory (model.keras) or a .keras file."""
  path = model_dir_or_file
  if files.isdir(path):
    path = os.path.join(path, MODEL)
  if not files.exists(path):
    raise FileNotFoundError(f"{path}: no trained model here (did training finish?)")
  return keras.models.load_model(path, compile=False)
