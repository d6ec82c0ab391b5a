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
from tf_skeptical.folds import Fold

AUTOTUNE = tf.data.AUTOTUNE


def mask_lookup(discards: Optional[Discards], num_classes: int):
  """Returns clip_id (tf.string) -> mask [C] float32; all ones for clips not listed."""
  if discards is None or discards.count == 0:
    return lambda clip_id: tf.ones([num_classes], tf.float32)
  table = tf.lookup.StaticHashTable(
      tf.lookup.KeyValueTensorInitializer(
          tf.constant(discards.clip_ids.astype(object), tf.string),
          tf.range(len(discards.clip_ids), dtype=tf.int64)), default_value=-1)
  flat = tf.constant(discards.classes, tf.int32)  # 4 bytes an entry: 0.8 GB at AudioSet p=20%
  splits = tf.constant(discards.indptr, tf.int64)

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


def training_clips(examples_dir: str, *, seed: Optional[int] = None,
                   exclude_fold: Optional[Fold] = None):
  """The parsed clips a model trains on, shards in shuffled order: all of them, or those
  outside exclude_fold (an out-of-fold teacher; folds.py)."""
  ds, info = clips(examples_dir, shuffle_files=True, seed=seed)
  if exclude_fold is not None:
    ds = ds.filter(lambda c: tf.logical_not(exclude_fold.contains(c["clip_id"])))
  return ds, info


def training_dataset(examples_dir: str, batch_size: int, *, hop_frames: int,
                     discards: Optional[Discards] = None, shuffle_buffer: int = 4096,
                     seed: Optional[int] = None, repeat: bool = True,
                     clip_weights: Optional[dict] = None, with_implicit: bool = False,
                     exclude_fold: Optional[Fold] = None,
                     add_positives: Optional[Discards] = None):
  """Shuffled, batched (patch, {"labels": [C], "mask": [C]}) for fit().

  clip_weights (clip id -> acceptance probability in (0, 1]) resamples clips, e.g. for
  class-balanced sampling. with_implicit adds "implicit": 1 where a class is neither a
  positive nor an explicit negative (what online large-loss rejection may reject).
  exclude_fold leaves that fold's clips out (an out-of-fold teacher; folds.py).
  add_positives: entries made positive (the known missing labels, for the complete-label
  reference run of an experiment whose truth is known).
  """
  ds, info = training_clips(examples_dir, seed=seed, exclude_fold=exclude_fold)
  if repeat:
    ds = ds.repeat()
  if clip_weights:
    weight = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
        tf.constant(list(clip_weights)), tf.constant(list(clip_weights.values()), tf.float32)),
        default_value=1.0)
    rng = tf.random.Generator.from_seed(seed or 0)
    ds = ds.filter(lambda c: rng.uniform([]) < weight.lookup(c["clip_id"]))
  mask_of = mask_lookup(discards, info.num_classes)
  not_added = mask_lookup(add_positives, info.num_classes)

  def to_patches(clip):
    x = clip_patches(clip["features"], info.features, hop_frames)
    n = tf.shape(x)[0]
    labels = tf.maximum(clip["positives"], 1.0 - not_added(clip["clip_id"]))
    targets = {"labels": labels, "mask": mask_of(clip["clip_id"])}
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
