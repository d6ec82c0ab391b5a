"""A weights file in YAMNet's released layout, written with h5py as Keras 2's save_weights
wrote yamnet.h5 (layer and weight names as in the release, random values), and its class
map: the tests' stand-in for the user's download (tests never fetch it)."""

import csv

import h5py
import numpy as np

YAMNET_CLASSES = 521
# YAMNet's layers (name, stride, filters) after layer1's conv: separable blocks 2..14.
BLOCKS = [(2, 1, 64), (3, 2, 128), (4, 1, 128), (5, 2, 256), (6, 1, 256), (7, 2, 512),
          (8, 1, 512), (9, 1, 512), (10, 1, 512), (11, 1, 512), (12, 1, 512), (13, 2, 1024),
          (14, 1, 1024)]


def yamnet_arrays(rng, classes=YAMNET_CLASSES):
  """{Keras 2 layer name: [(weight name, array)]} in YAMNet's order, random values."""
  def bn(name, c):
    return [(f"{name}/beta:0", rng.normal(0, 0.1, c)),
            (f"{name}/moving_mean:0", rng.normal(0, 0.1, c)),
            (f"{name}/moving_variance:0", rng.uniform(0.5, 1.5, c))]

  layers = {"layer1/conv": [("layer1/conv/kernel:0", rng.normal(0, 0.3, (3, 3, 1, 32)))],
            "layer1/conv/bn": bn("layer1/conv/bn", 32)}
  channels = 32
  for i, _, filters in BLOCKS:
    d, p = f"layer{i}/depthwise_conv", f"layer{i}/pointwise_conv"
    layers[d] = [(f"{d}/depthwise_kernel:0", rng.normal(0, 0.3, (3, 3, channels, 1)))]
    layers[d + "/bn"] = bn(d + "/bn", channels)
    layers[p] = [(f"{p}/kernel:0",
                  rng.normal(0, 1 / np.sqrt(channels), (1, 1, channels, filters)))]
    layers[p + "/bn"] = bn(p + "/bn", filters)
    channels = filters
  layers["logits"] = [("logits/kernel:0", rng.normal(0, 0.05, (1024, classes))),
                      ("logits/bias:0", rng.normal(0, 0.1, classes))]
  return {k: [(n, np.asarray(a, np.float32)) for n, a in v] for k, v in layers.items()}


def write_yamnet(path, layers):
  """A weights file as Keras 2's save_weights wrote yamnet.h5: the layer names (weighted or
  not) on the root, a group per layer (nested where the name has "/"), its weight names as
  an attribute and each array at the group's path plus its full weight name."""
  names = ["waveform_binary", "reshape"] + [n for n in layers if n != "logits"] + [
      "global_average_pooling2d", "logits", "activation"]
  with h5py.File(path, "w") as f:
    f.attrs["layer_names"] = [n.encode() for n in names]
    f.attrs["backend"], f.attrs["keras_version"] = b"tensorflow", b"2.2.4-tf"
    for name in names:
      group = f.require_group(name)
      weights = layers.get(name, [])
      group.attrs["weight_names"] = [w.encode() for w, _ in weights]
      for weight_name, array in weights:
        group.create_dataset(weight_name, data=array)


def write_class_map(path, mids):
  with open(path, "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["index", "mid", "display_name"])
    w.writerows([i, mid, f"class {mid}"] for i, mid in enumerate(mids))


YAMNET_MIDS = [f"/m/y{i:03d}" for i in range(YAMNET_CLASSES)]
