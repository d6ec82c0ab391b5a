"""The compute ceiling: MobileNetV1's achieved GFLOP/s against this CPU's matmul peak.

In one run: the float32 matmul peak (a 2048 x 2048 tf.matmul, best of several), then the
MobileNetV1 (w1.0, 527 classes) train step and inference on 96x64 patches. Model FLOPs are
counted from the layers' shapes (2 per multiply-add; a train step taken as 3x the forward
pass). The ratios say how much of the machine each uses.
"""

import time

import numpy as np

import harness as common
from bench import timing


def forward_flops(model) -> float:
  """Multiply-adds x 2 of one forward pass of one patch, from the layers' output shapes."""
  from keras import layers
  macs = 0
  for layer in model.layers:
    if isinstance(layer, layers.DepthwiseConv2D):
      _, h, w, c = layer.output.shape
      macs += h * w * c * np.prod(layer.kernel_size)
    elif isinstance(layer, layers.Conv2D):
      _, h, w, c_out = layer.output.shape
      c_in = layer.input.shape[-1]
      macs += h * w * c_out * c_in * np.prod(layer.kernel_size)
    elif isinstance(layer, layers.Dense):
      macs += layer.input.shape[-1] * layer.units
  return 2.0 * macs


def main():
  args = common.parse_args(__doc__)
  import keras
  import tensorflow as tf
  from tf_skeptical import models
  from tf_skeptical.masked_loss import MaskedBCEModel

  n = 2048
  a = tf.random.normal([n, n])
  b = tf.random.normal([n, n])
  matmul = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)))
  matmul()
  best = float("inf")
  for _ in range(3 if args.quick else 10):
    t0 = time.perf_counter()
    matmul().numpy()
    best = min(best, time.perf_counter() - t0)
  peak = 2 * n ** 3 / best / 1e9

  backbone = models.build_model("mobilenet_v1", (96, 64), 527, 1.0)
  flops = forward_flops(backbone)
  model = MaskedBCEModel.wrap(backbone)
  model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=False)
  batch, steps = 64, (3 if args.quick else 10)
  rng = np.random.default_rng(0)
  x = rng.normal(size=(batch * steps, 96, 64)).astype(np.float32)
  y = {"labels": (rng.random((batch * steps, 527)) < 0.01).astype(np.float32),
       "mask": np.ones((batch * steps, 527), np.float32)}
  model.fit(x[:batch], {k: v[:batch] for k, v in y.items()}, batch_size=batch, verbose=0)
  train_rate = timing.rate(
      lambda: model.fit(x, y, batch_size=batch, verbose=0, shuffle=False), len(x), 2)
  model.predict_on_batch(x[:256])
  infer_rate = timing.rate(lambda: [model.predict_on_batch(x[i:i + 256])
                                    for i in range(0, len(x), 256)], len(x), 3)
  train_gflops = 3 * flops * train_rate / 1e9
  infer_gflops = flops * infer_rate / 1e9
  common.report("ceiling", [
      common.row("matmul peak, float32 2048^2 (GFLOP/s)", peak),
      common.row("MobileNetV1 w1.0 forward GFLOP per patch", flops / 1e9),
      common.row("train step achieved GFLOP/s / matmul peak", train_gflops / peak),
      common.row("inference achieved GFLOP/s / matmul peak", infer_gflops / peak),
      common.row("  train patches/s", train_rate),
      common.row("  inference patches/s", infer_rate),
  ])


if __name__ == "__main__":
  main()
