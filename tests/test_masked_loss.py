"""The masked loss: exact zeros where masked, plain BCE everywhere else."""

import types

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_skeptical.masked_loss import MaskedBCEModel, masked_bce


def batch(seed=0, b=8, c=5):
  rng = np.random.default_rng(seed)
  logits = rng.normal(0, 3, (b, c)).astype(np.float32)
  labels = (rng.random((b, c)) < 0.4).astype(np.float32)
  mask = (rng.random((b, c)) < 0.7).astype(np.float32)
  return logits, labels, mask


@pytest.mark.parametrize("seed", range(3))
def test_all_ones_mask_is_keras_bce(seed):
  logits, labels, _ = batch(seed)
  ours = masked_bce(labels, logits, np.ones_like(labels))
  ref = keras.losses.BinaryCrossentropy(from_logits=True)(labels, logits)
  assert abs(float(ours) - float(ref)) < 1e-6


@pytest.mark.parametrize("seed", range(3))
def test_gradient_zero_where_masked_and_plain_elsewhere(seed):
  logits, labels, mask = batch(seed)
  x = tf.Variable(logits)
  with tf.GradientTape() as tape:
    loss = masked_bce(labels, x, mask)
  grad = tape.gradient(loss, x).numpy()
  # d/dz of mean BCE over B*C entries is (sigmoid(z) - y) / (B*C), computed in numpy.
  plain = (1 / (1 + np.exp(-logits.astype(np.float64))) - labels) / labels.size
  assert np.all(grad[mask == 0] == 0.0)
  np.testing.assert_allclose(grad[mask == 1], plain[mask == 1], atol=1e-7)
  # The loss itself: masked entries contribute nothing.
  bce = np.maximum(logits, 0) - logits * labels + np.log1p(np.exp(-np.abs(logits)))
  assert float(loss) == pytest.approx((bce * mask).sum() / labels.size, rel=1e-5)


def tiny_model(c=4):
  inputs = keras.Input((6,))
  return MaskedBCEModel(inputs=inputs, outputs=keras.layers.Dense(c)(inputs))


def test_train_step_ignores_masked_entries():
  """A batch whose every entry is masked leaves the weights unchanged (SGD)."""
  keras.utils.set_random_seed(0)
  model = tiny_model()
  model.compile(optimizer=keras.optimizers.SGD(0.5))
  x = np.random.default_rng(0).normal(size=(16, 6)).astype(np.float32)
  y = {"labels": np.ones((16, 4), np.float32), "mask": np.zeros((16, 4), np.float32)}
  before = [w.numpy().copy() for w in model.trainable_weights]
  logs = model.fit(x, y, batch_size=16, epochs=1, verbose=0).history
  for a, b in zip(before, model.trainable_weights):
    np.testing.assert_array_equal(a, b.numpy())
  assert logs["masked_fraction"][0] == 1.0 and logs["loss"][0] == 0.0


def test_mixed_precision_scales_loss_and_still_learns():
  keras.mixed_precision.set_global_policy("mixed_float16")
  try:
    model = tiny_model()
    model.compile(optimizer=keras.optimizers.Adam(0.05))
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(64, 6)).astype(np.float32)
    labels = (x[:, :4] > 0).astype(np.float32)
    y = {"labels": labels, "mask": np.ones_like(labels)}
    h = model.fit(x, y, batch_size=16, epochs=8, verbose=0).history
    assert h["loss"][-1] < 0.7 * h["loss"][0]
  finally:
    keras.mixed_precision.set_global_policy("float32")


def test_saved_and_loaded_model_keeps_its_class(tmp_path):
  model = tiny_model()
  model.compile(optimizer="adam")
  path = str(tmp_path / "m.keras")
  model.save(path)
  loaded = keras.models.load_model(path, compile=False)
  assert isinstance(loaded, MaskedBCEModel)
  x = np.ones((2, 6), np.float32)
  np.testing.assert_allclose(loaded(x), model(x), atol=1e-6)


def test_large_loss_rejection_masks_the_largest_implicit_losses():
  from tf_skeptical.large_loss_rejection import reject_large_losses
  logits, labels, mask = batch(4, b=10, c=6)
  rng = np.random.default_rng(4)
  implicit = ((labels == 0) & (rng.random(labels.shape) < 0.8)).astype(np.float32)
  new = reject_large_losses(labels, logits, mask, implicit, 0.25).numpy()
  bce = np.maximum(logits, 0) - logits * labels + np.log1p(np.exp(-np.abs(logits)))
  candidates = (implicit * mask) > 0
  k = int(np.floor(0.25 * candidates.sum()))
  rejected = (mask == 1) & (new == 0)
  assert rejected.sum() == k and np.all(candidates[rejected])
  # Every rejected entry has a larger loss than every kept candidate.
  assert bce[rejected].min() > bce[candidates & ~rejected].max()
  np.testing.assert_array_equal(new[~rejected], mask[~rejected])
  np.testing.assert_array_equal(reject_large_losses(labels, logits, mask, implicit, 0.0), mask)


def test_large_loss_rejection_rejects_exactly_k_when_losses_tie():
  from tf_skeptical.large_loss_rejection import reject_large_losses
  labels = np.zeros((4, 5), np.float32)
  logits = np.zeros((4, 5), np.float32)  # 20 equal losses
  ones = np.ones((4, 5), np.float32)
  new = reject_large_losses(labels, logits, ones, ones, 0.25).numpy()
  assert (new == 0).sum() == 5  # floor(0.25 * 20), not all 20 tied entries


def test_large_loss_rejection_is_on_with_its_rate_alone():
  """`--reject_per_epoch` alone turns LL-R on: the cap defaults to none."""
  from tf_skeptical.large_loss_rejection import RejectionSchedule
  from tf_skeptical.training import TrainConfig
  cfg = TrainConfig(reject_per_epoch=0.5)
  schedule = RejectionSchedule(cfg.reject_per_epoch, cfg.reject_max)
  schedule.set_model(types.SimpleNamespace(rejection_rate=tf.Variable(0.0)))
  schedule.on_epoch_begin(4)
  assert schedule.model.rejection_rate.numpy() == pytest.approx(0.02)
