"""The masked train step against plain fit() with Keras' built-in BCE, same model and data.

Both train the same MobileNetV1 on the same in-memory batches, alternating epoch by epoch;
the ratio is the median of time(masked) / time(plain). Target: <= 1.03.
"""

import numpy as np

import harness as common
from bench import timing


def main():
  args = common.parse_args(__doc__)
  import keras
  from tf_skeptical import models
  from tf_skeptical.masked_loss import MaskedBCEModel

  width = 0.5 if args.quick else 1.0
  batch, steps, classes = 64, (4 if args.quick else 10), 527
  rng = np.random.default_rng(0)
  x = rng.normal(size=(batch * steps, 96, 64)).astype(np.float32)
  labels = (rng.random((batch * steps, classes)) < 0.01).astype(np.float32)
  mask = (rng.random(labels.shape) > 0.01).astype(np.float32)

  keras.utils.set_random_seed(0)
  masked = MaskedBCEModel.wrap(models.build_model("mobilenet_v1", (96, 64), classes, width))
  masked.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=False)
  keras.utils.set_random_seed(0)
  plain = models.build_model("mobilenet_v1", (96, 64), classes, width)
  plain.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=False,
                loss=keras.losses.BinaryCrossentropy(from_logits=True))
  targets = {"labels": labels, "mask": mask}

  def run_masked():
    masked.fit(x, targets, batch_size=batch, epochs=1, verbose=0, shuffle=False)

  def run_plain():
    plain.fit(x, labels, batch_size=batch, epochs=1, verbose=0, shuffle=False)

  run_masked(), run_plain()  # trace and warm up both
  ratio, ratios = timing.alternate(run_masked, run_plain, 3 if args.quick else 7)
  common.report("masked_step", [
      common.row(f"masked step / plain fit, MobileNetV1 w{width:g} (median of "
                 f"{len(ratios)})", ratio, "<= 1.03", ratio <= 1.03),
      common.row("  spread: lowest round", min(ratios)),
      common.row("  spread: highest round", max(ratios)),
  ])


if __name__ == "__main__":
  main()
