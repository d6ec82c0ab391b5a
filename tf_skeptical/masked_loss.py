"""Where the mask enters the loss: masked BCE and the Keras model that trains with it.

Normalisation: the masked elementwise sigmoid BCE is summed and divided by the number of
entries (batch x classes), masked ones included. So an ignored entry contributes exactly
nothing, every other entry gets exactly the gradient plain BCE gives it, and an all-ones
mask is `keras.losses.BinaryCrossentropy(from_logits=True)`. (Dividing by the mask's sum
instead would inflate every gradient by 1 / (1 - masked fraction), and differ between
replicas of a distributed batch.)

The model's `train_step`/`test_step` read `(x, {"labels", "mask"})` from tf.data and keep
Keras' conventions: the optimizer scales the loss under mixed precision, the loss is divided
among replicas under tf.distribute, and results go through metric trackers.
"""

import keras
import tensorflow as tf

from tf_skeptical.large_loss_rejection import reject_large_losses


def masked_bce(labels, logits, mask):
  """Sum of mask x BCE(labels, sigmoid(logits)) over all entries, / entries."""
  logits = tf.cast(logits, tf.float32)
  per_entry = tf.nn.sigmoid_cross_entropy_with_logits(tf.cast(labels, tf.float32), logits)
  return tf.reduce_sum(per_entry * tf.cast(mask, tf.float32)) / tf.cast(
      tf.size(per_entry), tf.float32)


def _replicas() -> int:
  return tf.distribute.get_strategy().num_replicas_in_sync


def _multi_worker(strategy) -> bool:
  """Whether `strategy` spans several worker processes (MultiWorkerMirroredStrategy with a
  cluster of more than one task)."""
  resolver = getattr(strategy, "cluster_resolver", None)
  return bool(resolver and sum(len(tasks) for tasks in
                               resolver.cluster_spec().as_dict().values()) > 1)


@keras.saving.register_keras_serializable(package="tf_skeptical")
class MaskedBCEModel(keras.Model):
  """A functional model trained on (x, {"labels": [B, C], "mask": [B, C]}) with masked BCE.

  Build it like any functional model: `MaskedBCEModel(inputs=..., outputs=logits)`, or wrap
  a backbone with `MaskedBCEModel.wrap(backbone)`. `features` (a JSON-able dict, see
  examples.Features) records what the model's input is made of, and `made_from` the ids of
  the train examples' clip set and class map (provenance.py); both are saved with the model.
  """

  def __init__(self, *args, features=None, made_from=None, **kwargs):
    super().__init__(*args, **kwargs)
    self.features, self.made_from = features, made_from
    self.loss_tracker = keras.metrics.Mean(name="loss")
    self.masked_fraction = keras.metrics.Mean(name="masked_fraction")
    # Online large-loss rejection (large_loss_rejection.py): off unless the targets carry
    # "implicit" and a RejectionSchedule raises the rate.
    self.rejection_rate = tf.Variable(0.0, trainable=False, name="rejection_rate")
    # Fine-tuning (training.py sets both): with scaled_backbone, every weight but the
    # classifier head's takes this share of its optimizer update, and at 0 the backbone is
    # frozen, its BatchNorm in inference mode too.
    self.backbone_scale = tf.Variable(1.0, trainable=False, name="backbone_scale")
    self.scaled_backbone = False

  @classmethod
  def wrap(cls, backbone: keras.Model, features=None, made_from=None) -> "MaskedBCEModel":
    # The single output tensor, not the one-element list: called, the model returns logits.
    return cls(inputs=backbone.inputs, outputs=backbone.outputs[0], name=backbone.name,
               features=features, made_from=made_from)

  def get_config(self):
    return dict(super().get_config(), features=self.features, made_from=self.made_from)

  @classmethod
  def from_config(cls, config, custom_objects=None):
    config = dict(config)
    features, made_from = config.pop("features", None), config.pop("made_from", None)
    model = super().from_config(config, custom_objects)
    model.features, model.made_from = features, made_from
    return model

  @property
  def metrics(self):
    return [self.loss_tracker, self.masked_fraction]

  def _with_rejection(self, y, logits):
    """Training targets with online large-loss rejection applied (when "implicit" is given)."""
    if "implicit" not in y:
      return y
    return {"labels": y["labels"], "mask": reject_large_losses(
        y["labels"], logits, y["mask"], y["implicit"], self.rejection_rate)}

  def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
    """Masked BCE plus any layer losses, divided among replicas (as Keras does)."""
    loss = masked_bce(y["labels"], y_pred, y["mask"])
    if self.losses:
      loss += tf.add_n([tf.cast(l, tf.float32) for l in self.losses])
    return loss / _replicas()

  def _track(self, loss, y):
    batch = tf.shape(y["labels"])[0]
    self.loss_tracker.update_state(loss * _replicas(), sample_weight=batch)
    self.masked_fraction.update_state(1.0 - tf.reduce_mean(tf.cast(y["mask"], tf.float32)))
    logs = {m.name: m.result() for m in self.metrics}
    if _multi_worker(tf.distribute.get_strategy()):
      # Keras 3 (3.15) averages each replica's logs over axis 0 across workers, which a
      # scalar does not have (keras-team/keras#20585); the values agree on every replica
      # (the metrics are synchronized), so a length-1 vector averages to the same number.
      logs = {k: tf.reshape(v, [1]) for k, v in logs.items()}
    return logs

  def _maybe_symbolic_build(self, iterator=None, data_batch=None):
    """Keras 3 builds the model from the first batch, averaged over replicas with
    strategy.reduce, which MultiWorkerMirroredStrategy cannot do eagerly
    (keras-team/keras#20585). Building needs shapes only: one replica's part will do."""
    strategy = self._distribute_strategy
    if iterator is None or strategy is None or not _multi_worker(strategy):
      return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)
    for _, _, it in iterator:
      batch = next(it)
      break
    local = tf.nest.map_structure(
        lambda v: strategy.experimental_local_results(v)[0]
        if isinstance(v, tf.distribute.DistributedValues) else v, batch)
    return super()._maybe_symbolic_build(data_batch=local)

  def backbone_variables(self) -> list:
    """The trainable weights of every layer but the classifier head (models.LOGITS_LAYER)."""
    head = {id(v) for v in self.get_layer("logits").trainable_variables}
    return [v for v in self.trainable_variables if id(v) not in head]

  def train_step(self, data):
    x, y = data
    with tf.GradientTape() as tape:
      if self.scaled_backbone:
        logits = tf.cond(tf.equal(self.backbone_scale, 0.0),
                         lambda: self(x, training=False), lambda: self(x, training=True))
      else:
        logits = self(x, training=True)
      y = self._with_rejection(y, logits)
      loss = self.compute_loss(x, y, logits, training=True)
      scaled = self.optimizer.scale_loss(loss)
    gradients = tape.gradient(scaled, self.trainable_variables)
    if not self.scaled_backbone:
      self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))
      return self._track(loss, y)
    backbone = self.backbone_variables()
    before = [tf.identity(v) for v in backbone]
    self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))
    scale = tf.cast(self.backbone_scale, tf.float32)
    for variable, old in zip(backbone, before):  # the update, scaled (any optimizer)
      variable.assign(old + tf.cast(scale, old.dtype) * (tf.convert_to_tensor(variable) - old))
    return self._track(loss, y)

  def test_step(self, data):
    x, y = data
    logits = self(x, training=False)
    return self._track(self.compute_loss(x, y, logits, training=False), y)
