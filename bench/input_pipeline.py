"""Input pipeline throughput against the MobileNetV1 (width 1.0) train step, in one run.

Prints patches/s of (a) the training pipeline over prepared shards and (b) a pipeline that
decodes raw audio and computes log-mel on the fly, each as a ratio of the train step's
patches/s. Target: prepared shards >= 3x the train step, so training is never input-bound.
"""

import os

import numpy as np

import harness as common
from bench import timing


def main():
  args = common.parse_args(__doc__)
  import keras
  import tensorflow as tf
  from tf_skeptical.data import audio_io, frontend
  from tf_skeptical import input_pipeline, models
  from tf_skeptical.masked_loss import MaskedBCEModel

  clips = 40 if args.quick else 200
  data, shards = common.builtin_examples(args.work_dir, clips)
  batch = 64
  patches_per_clip = 1 + (998 - 96) // 48  # 10 s clips, hop 48: 19 patches

  def from_shards():
    ds = input_pipeline.training_dataset(shards, batch, hop_frames=48, repeat=False,
                                         shuffle_buffer=1024)
    for _ in ds:
      pass

  wavs = [os.path.join(data, "audio", f) for f in sorted(os.listdir(os.path.join(data, "audio")))
          if f.startswith("train")]

  def from_audio():
    ds = tf.data.Dataset.from_tensor_slices(wavs).map(
        lambda p: frontend.patches(frontend.log_mel(audio_io.load_clip(p, 160000)),
                                   hop_frames=48),
        num_parallel_calls=tf.data.AUTOTUNE).unbatch().batch(batch).prefetch(tf.data.AUTOTUNE)
    for _ in ds:
      pass

  n_patches = clips * patches_per_clip
  model = MaskedBCEModel.wrap(models.build_model("mobilenet_v1", (96, 64), 527, 1.0))
  model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=False)
  rng = np.random.default_rng(0)
  steps = 4 if args.quick else 12
  x = rng.normal(size=(batch * steps, 96, 64)).astype(np.float32)
  y = {"labels": (rng.random((batch * steps, 527)) < 0.01).astype(np.float32),
       "mask": np.ones((batch * steps, 527), np.float32)}
  model.fit(x[:batch], {k: v[:batch] for k, v in y.items()}, batch_size=batch, verbose=0)

  def train():
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False)

  rounds = 1 if args.quick else 3
  shard_rate = timing.rate(from_shards, n_patches // batch * batch, rounds)
  audio_rate = timing.rate(from_audio, n_patches, rounds)
  train_rate = timing.rate(train, batch * steps, rounds)
  common.report("input_pipeline", [
      common.row("train step, MobileNetV1 w1.0 (patches/s)", train_rate),
      common.row("prepared shards (patches/s)", shard_rate),
      common.row("raw audio decode + log-mel (patches/s)", audio_rate),
      common.row("prepared shards / train step", shard_rate / train_rate, ">= 3",
                 shard_rate / train_rate >= 3),
      common.row("raw audio / train step", audio_rate / train_rate),
  ])


if __name__ == "__main__":
  main()
