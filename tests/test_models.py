"""Models by name, training under MirroredStrategy, and balanced sampling."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tf_skeptical import models, training


@pytest.mark.parametrize("name, shape, width", [
    ("mobilenet_v1", (96, 64), 0.25), ("resnet50", (96, 64), 1.0),
    ("embedding_mlp", (10, 128), 0.25)])
def test_every_model_gives_logits_and_an_embedding_layer(name, shape, width):
  model = models.build_model(name, shape, 7, width)
  out = model(np.zeros((2,) + shape, np.float32))
  assert out.shape == (2, 7)
  assert model.get_layer(models.EMBEDDING_LAYER) is not None


def test_mobilenet_v1_width_1_has_yamnet_size():
  # YAMNet's MobileNetV1 has 3.7M weights with 521 classes (docs/design.md).
  n = models.build_model("mobilenet_v1", (96, 64), 521, 1.0).count_params()
  assert 3.6e6 < n < 3.8e6


def test_unknown_model_name():
  with pytest.raises(ValueError, match="unknown model 'vgg'"):
    models.build_model("vgg", (96, 64), 3)


MIRRORED = textwrap.dedent("""
    import os
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    import numpy as np, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from tf_skeptical.masked_loss import MaskedBCEModel

    def build():
      keras.utils.set_random_seed(0)
      inputs = keras.Input((6,))
      m = MaskedBCEModel(inputs=inputs, outputs=keras.layers.Dense(4)(inputs))
      m.compile(optimizer=keras.optimizers.SGD(0.5))
      return m

    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 6)).astype(np.float32)
    y = {"labels": (rng.random((16, 4)) < 0.4).astype(np.float32),
         "mask": (rng.random((16, 4)) < 0.7).astype(np.float32)}
    single = build()
    single.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert strategy.num_replicas_in_sync == 2
    with strategy.scope():
      mirrored = build()
    mirrored.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False)
    for a, b in zip(single.get_weights(), mirrored.get_weights()):
      np.testing.assert_allclose(a, b, atol=1e-5)
    print("SAME_WEIGHTS")
""")


def test_mirrored_strategy_step_equals_single_device_step():
  done = subprocess.run([sys.executable, "-c", MIRRORED], capture_output=True, text=True,
                        timeout=300)
  assert done.returncode == 0, done.stderr[-3000:]
  assert "SAME_WEIGHTS" in done.stdout


def test_balanced_weights_favour_rare_classes(tiny_examples):
  from tf_skeptical.data import examples
  train_dir, _ = tiny_examples
  weights = training.balanced_clip_weights(train_dir)
  clips = list(examples.iterate(train_dir))
  labels = np.stack([c["positives"] for c in clips]) > 0
  counts = labels.sum(axis=0)
  rarest = int(np.argmin(np.where(counts > 0, counts, np.inf)))
  w = np.array([weights[c["clip_id"]] for c in clips])
  assert np.all((w > 0) & (w <= 1))
  assert np.all(w[labels[:, rarest]] == 1.0)  # every clip of the rarest class is kept
  # Expected kept positives per class are far more even than the raw counts.
  kept = (labels * w[:, None]).sum(axis=0)
  assert kept.max() / kept.min() < counts.max() / counts.min()
