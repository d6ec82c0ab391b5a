"""tf.data input: example shards (+ discarded entries) -> (patches, {"labels", "mask"}).

Every patch inherits its clip's labels and mask. The mask is 1 where an entry counts in
the loss and 0 where it is ignored; the entries to ignore come from the teacher's flags
(flagging.Discards) as a clip id -> classes table, looked up inside the graph.
"""

from typing import Optional

import numpy as np
import tensorflow as tf

from tf_skeptical import examples, frontend
from tf_skeptical.flagging import Discards

AUTOTUNE = tf.data.AUTOTUNE


def mask_lookup(discards: Optional[Discards], num_classes: int):
  """Returns clip_id (tf.string) -> mask [C] float32; all ones for clips not listed."""
  if discards is None or not discards.clip_ids:
    return lambda clip_id: tf.ones([num_classes], tf.float32)
  table = tf.lookup.StaticHashTable(
      tf.lookup.KeyValueTensorInitializer(
          tf.constant(list(discards.clip_ids)),
          tf.range(len(discards.clip_ids), dtype=tf.int64)), default_value=-1)
  classes = tf.ragged.constant([list(c) for c in discards.classes], dtype=tf.int64,
                               row_splits_dtype=tf.int64)
  flat = tf.constant(classes.flat_values.numpy())
  splits = tf.constant(classes.row_splits.numpy())

  def lookup(clip_id):
    row = table.lookup(clip_id)
    start = tf.where(row >= 0, splits[tf.maximum(row, 0)], 0)
    stop = tf.where(row >= 0, splits[tf.maximum(row, 0) + 1], 0)
    ignored = flat[start:stop]
    hits = tf.scatter_nd(ignored[:, None], tf.ones_like(ignored, tf.float32), [num_classes])
    return 1.0 - tf.minimum(hits, 1.0)

  return lookup


def clips(examples_dir: str, *, shuffle_files: bool = False, seed: Optional[int] = None,
          num_classes: Optional[int] = None):
  """Parsed clips, shards read in parallel (interleaved)."""
  info = examples.read_info(examples_dir)
  files = tf.data.Dataset.from_tensor_slices(list(info.shards))
  if shuffle_files:
    files = files.shuffle(len(info.shards), seed=seed)
  records = files.interleave(tf.data.TFRecordDataset, cycle_length=min(4, len(info.shards)),
                             num_parallel_calls=AUTOTUNE, deterministic=not shuffle_files)
  return records.map(lambda r: examples.parse(r, num_classes or info.num_classes),
                     num_parallel_calls=AUTOTUNE, deterministic=not shuffle_files), info


def clip_patches(features, spec: examples.Features, hop_frames: int):
  """A clip's model inputs: log-mel -> [N, 96, 64] patches (the frontend's patch length);
  embeddings -> [1, 10, 128]."""
  if spec.kind == examples.EMBEDDING:
    return features[None]
  return frontend.patches(features, spec.frontend, hop_frames=hop_frames)


def training_dataset(examples_dir: str, batch_size: int, *, hop_frames: int,
                     discards: Optional[Discards] = None, shuffle_buffer: int = 4096,
                     seed: Optional[int] = None, repeat: bool = True,
                     clip_weights: Optional[dict] = None, with_implicit: bool = False):
  """Shuffled, batched (patch, {"labels": [C], "mask": [C]}) for fit().

  clip_weights (clip id -> acceptance probability in (0, 1]) resamples clips, e.g. for
  class-balanced sampling. with_implicit adds "implicit": 1 where a class is neither a
  positive nor an explicit negative (what online large-loss rejection may reject).
  """
  ds, info = clips(examples_dir, shuffle_files=True, seed=seed)
  if repeat:
    ds = ds.repeat()
  if clip_weights:
    weight = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
        tf.constant(list(clip_weights)), tf.constant(list(clip_weights.values()), tf.float32)),
        default_value=1.0)
    rng = tf.random.Generator.from_seed(seed or 0)
    ds = ds.filter(lambda c: rng.uniform([]) < weight.lookup(c["clip_id"]))
  mask_of = mask_lookup(discards, info.num_classes)

  def to_patches(clip):
    x = clip_patches(clip["features"], info.features, hop_frames)
    n = tf.shape(x)[0]
    targets = {"labels": clip["positives"], "mask": mask_of(clip["clip_id"])}
    if with_implicit:
      targets["implicit"] = 1.0 - clip["positives"] - clip["explicit_negatives"]
    targets = {k: tf.tile(v[None], [n, 1]) for k, v in targets.items()}
    return tf.data.Dataset.from_tensor_slices((x, targets))

  ds = ds.interleave(to_patches, cycle_length=8, num_parallel_calls=AUTOTUNE,
                     deterministic=False)
  return ds.shuffle(shuffle_buffer, seed=seed).batch(batch_size, drop_remainder=True).prefetch(
      AUTOTUNE)


def eval_dataset(examples_dir: str, batch_size: int, hop_frames: int,
                 spec: Optional[examples.Features] = None):
  """Patches in clip order with their clip's index, and the clips' ids and labels.

  Returns (dataset of (patch, clip_index), clip_ids list, labels [N, C] array) so that patch
  scores can be pooled per clip. spec: how to cut patches (default: the examples' own).
  """
  ds, info = clips(examples_dir)
  spec = spec or info.features
  ids, labels = [], []
  for clip_id, positives in ds.map(lambda c: (c["clip_id"], c["positives"])).as_numpy_iterator():
    ids.append(clip_id.decode("utf-8"))
    labels.append(positives)

  def with_index(i, clip):
    x = clip_patches(clip["features"], spec, hop_frames)
    return tf.data.Dataset.from_tensor_slices((x, tf.fill([tf.shape(x)[0]], i)))

  ds = ds.enumerate().flat_map(with_index)
  return ds.batch(batch_size).prefetch(AUTOTUNE), ids, np.asarray(labels, np.float32)
