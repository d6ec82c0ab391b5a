"""One training step of the package's model on a fixed global batch, in this process as a
worker of the cluster in TF_CONFIG (or alone without it); the chief saves the weights.

  python tests/multi_worker_step.py OUT.npz    (run by tests/test_multi_worker.py)
"""

import os
import sys

import numpy as np

GLOBAL_BATCH, NUM_CLASSES = 16, 7


def main(out: str):
  from tf_skeptical import training  # before any other TensorFlow op: the strategy first
  strategy = training.make_strategy("multi_worker" if os.environ.get("TF_CONFIG")
                                    else "default")
  import keras
  import tensorflow as tf
  from tf_skeptical.data import examples
  rng = np.random.default_rng(0)
  x = rng.standard_normal((GLOBAL_BATCH, 10, 128)).astype(np.float32)
  y = {"labels": (rng.random((GLOBAL_BATCH, NUM_CLASSES)) < 0.3).astype(np.float32),
       "mask": (rng.random((GLOBAL_BATCH, NUM_CLASSES)) > 0.2).astype(np.float32)}
  ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(GLOBAL_BATCH)
  options = tf.data.Options()
  options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
  ds = ds.with_options(options)
  info = examples.ExamplesInfo("unused", GLOBAL_BATCH, NUM_CLASSES, examples.EMBEDDING, 128,
                               10, (), {})
  cfg = training.TrainConfig(model="embedding_mlp", width=0.05, batch_size=GLOBAL_BATCH,
                             schedule="constant", learning_rate=0.05)
  keras.utils.set_random_seed(0)
  with strategy.scope():
    model = training.compile_model(info, cfg, total_steps=1)
  before = {w.path: w.numpy().copy() for w in model.weights}
  model.fit(ds, epochs=1, steps_per_epoch=1, verbose=0)
  if training.is_chief(strategy):
    np.savez(out, replicas=strategy.num_replicas_in_sync,
             **{"before:" + k: v for k, v in before.items()},
             **{"after:" + w.path: w.numpy() for w in model.weights})


if __name__ == "__main__":
  main(sys.argv[1])
