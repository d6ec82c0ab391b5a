"""Online large-loss rejection (LL-R, Kim et al., CVPR 2022): the online peer of the teacher.

Each training batch, among the implicit negatives still in the loss, the entries with the
largest loss (the model is most confident they are present) are masked out too. The rate
grows each epoch: rate(epoch) = min(max_percent, per_epoch_percent * epoch) percent of the
batch's implicit negatives, 0 in the first epoch. Explicit negatives are never rejected.
"""

import keras
import tensorflow as tf


def reject_large_losses(labels, logits, mask, implicit, rate):
  """The mask with the top `rate` fraction (by BCE) of the unmasked implicit entries zeroed."""
  labels = tf.cast(labels, tf.float32)
  per_entry = tf.stop_gradient(
      tf.nn.sigmoid_cross_entropy_with_logits(labels, tf.cast(logits, tf.float32)))
  candidates = tf.cast(implicit, tf.float32) * tf.cast(mask, tf.float32) > 0
  flat = tf.reshape(tf.where(candidates, per_entry, -float("inf")), [-1])
  k = tf.cast(tf.floor(rate * tf.reduce_sum(tf.cast(candidates, tf.float32))), tf.int32)
  # Exactly k entries, even where losses tie (top_k takes the lower index first).
  top = tf.math.top_k(flat, k=tf.maximum(k, 1)).indices[:k]
  reject = tf.scatter_nd(top[:, None], tf.ones_like(top, tf.float32), tf.shape(flat))
  return tf.cast(mask, tf.float32) * (1.0 - tf.reshape(reject, tf.shape(per_entry)))


class RejectionSchedule(keras.callbacks.Callback):
  """Sets the model's rejection rate at the start of every epoch."""

  def __init__(self, per_epoch_percent: float, max_percent: float):
    super().__init__()
    self.per_epoch, self.max = per_epoch_percent / 100.0, max_percent / 100.0

  def on_epoch_begin(self, epoch, logs=None):
    self.model.rejection_rate.assign(min(self.max, self.per_epoch * epoch))

  def on_epoch_end(self, epoch, logs=None):
    if logs is not None:
      logs["rejection_rate"] = float(self.model.rejection_rate.numpy())
