"""Backbones, each ending in C logits, picked by name.

- `mobilenet_v1`: YAMNet's layer list (docs/design.md) with a width multiplier.
- `resnet50`: Keras' ResNet-50, randomly initialised, on 1-channel log-mel patches.
- `embedding_mlp`: a small model for AudioSet's released [10, 128] embedding clips.

BatchNorm momentum is a parameter: Keras' default of 0.99 (YAMNet's) leaves the moving
statistics far behind the weights in runs of a few hundred steps (eval d' 0.05 against
1.7 with 0.9 after 230 steps on the built-in data), so training defaults to 0.9.

Every model has a layer named `embedding` (the pooled features before the classifier),
which the export reads, and outputs logits: the sigmoid lives in the loss and the export.
"""

from typing import Tuple

import keras
from keras import layers

from tf_skeptical import errors

EMBEDDING_LAYER = "embedding"
LOGITS_LAYER = "logits"

# YAMNet: (kind, stride, filters); every kernel is 3x3.
_MOBILENET_V1_LAYERS = (
    ("conv", 2, 32), ("sep", 1, 64), ("sep", 2, 128), ("sep", 1, 128), ("sep", 2, 256),
    ("sep", 1, 256), ("sep", 2, 512), ("sep", 1, 512), ("sep", 1, 512), ("sep", 1, 512),
    ("sep", 1, 512), ("sep", 1, 512), ("sep", 2, 1024), ("sep", 1, 1024))


def _bn_relu(x, name, momentum):
  x = layers.BatchNormalization(center=True, scale=False, epsilon=1e-4, momentum=momentum,
                                name=name + "_bn")(x)
  return layers.ReLU(name=name + "_relu")(x)


def mobilenet_v1(input_shape: Tuple[int, int], num_classes: int, width: float = 1.0,
                 bn_momentum: float = 0.99):
  inputs = keras.Input(input_shape, name="patch")
  x = layers.Reshape(input_shape + (1,), name="add_channel")(inputs)
  for i, (kind, stride, filters) in enumerate(_MOBILENET_V1_LAYERS):
    name = f"layer{i + 1}"
    filters = max(8, int(filters * width))
    if kind == "conv":
      x = layers.Conv2D(filters, 3, stride, padding="same", use_bias=False, name=name)(x)
      x = _bn_relu(x, name, bn_momentum)
    else:
      x = layers.DepthwiseConv2D(3, stride, padding="same", use_bias=False,
                                 name=name + "_depthwise")(x)
      x = _bn_relu(x, name + "_depthwise", bn_momentum)
      x = layers.Conv2D(filters, 1, padding="same", use_bias=False,
                        name=name + "_pointwise")(x)
      x = _bn_relu(x, name + "_pointwise", bn_momentum)
  x = layers.GlobalAveragePooling2D(name=EMBEDDING_LAYER)(x)
  logits = layers.Dense(num_classes, name=LOGITS_LAYER, dtype="float32")(x)
  return keras.Model(inputs, logits, name=f"mobilenet_v1_w{width:g}")


def resnet50(input_shape: Tuple[int, int], num_classes: int, width: float = 1.0,
             bn_momentum: float = 0.99):
  if width != 1.0:
    raise errors.BadValue("resnet50 has no width multiplier; use --width=1")
  inputs = keras.Input(input_shape, name="patch")
  x = layers.Reshape(input_shape + (1,), name="add_channel")(inputs)
  trunk = keras.applications.ResNet50(include_top=False, weights=None,
                                      input_shape=input_shape + (1,))
  for layer in trunk.layers:
    if isinstance(layer, layers.BatchNormalization):
      layer.momentum = bn_momentum
  x = layers.GlobalAveragePooling2D(name=EMBEDDING_LAYER)(trunk(x))
  logits = layers.Dense(num_classes, name=LOGITS_LAYER, dtype="float32")(x)
  return keras.Model(inputs, logits, name="resnet50")


def embedding_mlp(input_shape: Tuple[int, int], num_classes: int, width: float = 1.0,
                  bn_momentum: float = 0.99):
  """Per-second embeddings -> shared dense layers -> mean over time -> logits."""
  inputs = keras.Input(input_shape, name="embeddings")
  units = max(16, int(512 * width))
  x = inputs
  for i in range(2):
    x = layers.Dense(units, name=f"dense{i + 1}")(x)
    x = layers.BatchNormalization(momentum=bn_momentum, name=f"dense{i + 1}_bn")(x)
    x = layers.ReLU(name=f"dense{i + 1}_relu")(x)
  x = layers.GlobalAveragePooling1D(name=EMBEDDING_LAYER)(x)
  logits = layers.Dense(num_classes, name=LOGITS_LAYER, dtype="float32")(x)
  return keras.Model(inputs, logits, name="embedding_mlp")


MODELS = {"mobilenet_v1": mobilenet_v1, "resnet50": resnet50, "embedding_mlp": embedding_mlp}


def build_model(name: str, input_shape: Tuple[int, int], num_classes: int, width: float = 1.0,
                bn_momentum: float = 0.99):
  """The backbone called `name`, as a functional Keras model producing logits."""
  if name not in MODELS:
    raise errors.BadValue(f"unknown model {name!r}; choose one of {', '.join(sorted(MODELS))}")
  return MODELS[name](tuple(input_shape), num_classes, width, bn_momentum)
