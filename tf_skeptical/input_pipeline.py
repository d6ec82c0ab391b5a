"""tf.data input: example shards + what a student is told -> (patches, {"labels", "mask"}).

Every patch inherits its clip's labels and mask. The mask is 1 where an entry counts in
the loss and 0 where it is ignored. What the run is told (targets.Targets) enters here: the
teacher's flags (entries.Entries) are a clip id -> classes table looked up inside the
graph, and the student's treatment of them (treatments.py) makes the targets ("labels",
soft where the teacher's scores enter) and the mask.
"""

from typing import Optional

import numpy as np
import tensorflow as tf

from tf_skeptical import errors
from tf_skeptical.data import examples, frontend
from tf_skeptical import treatments
from tf_skeptical.entries import Entries
from tf_skeptical.folds import Fold
from tf_skeptical.targets import Targets

AUTOTUNE = tf.data.AUTOTUNE


def entry_lookup(entries: Optional[Entries], num_classes: int):
  """Returns clip ids (tf.string, any shape [...]) -> (listed [..., C], values [..., C])
  float32: 1 where the entries list the entry (0 for clips not listed), and there its value
  from entries.scores (0 without them). The entries stay arrays (CSR: a clip's classes are
  classes[indptr[row]:indptr[row + 1]]), so the table costs 4 bytes an entry (8 with
  scores), not a Python object: 0.8 GB at AudioSet's p = 20%."""
  def shape_of(clip_ids):
    return tf.concat([tf.shape(clip_ids), [num_classes]], 0)

  if entries is None or entries.count == 0:
    return lambda clip_ids: (tf.zeros(shape_of(clip_ids)), tf.zeros(shape_of(clip_ids)))
  table = tf.lookup.StaticHashTable(
      tf.lookup.KeyValueTensorInitializer(
          tf.constant(entries.clip_ids.astype(object), tf.string),
          tf.range(len(entries.clip_ids), dtype=tf.int64)), default_value=-1)
  flat = tf.constant(entries.classes, tf.int32)
  splits = tf.constant(entries.indptr, tf.int64)
  values = None if entries.scores is None else tf.constant(entries.scores, tf.float32)

  def lookup(clip_ids):
    ids = tf.reshape(clip_ids, [-1])
    row = table.lookup(ids)
    listed = row >= 0
    start = tf.where(listed, tf.gather(splits, tf.maximum(row, 0)), 0)
    stop = tf.where(listed, tf.gather(splits, tf.maximum(row, 0) + 1), 0)
    entries = tf.ragged.range(start, stop)  # [B, (classes of the clip)] positions in flat
    where = tf.stack([entries.value_rowids(),
                      tf.cast(tf.gather(flat, entries.flat_values), tf.int64)], 1)
    dense = tf.stack([tf.size(ids, tf.int64), num_classes])
    hits = tf.minimum(tf.scatter_nd(where, tf.ones_like(where[:, 0], tf.float32), dense), 1.0)
    scores = (tf.zeros_like(hits) if values is None else
              tf.scatter_nd(where, tf.gather(values, entries.flat_values), dense))
    return (tf.reshape(hits, shape_of(clip_ids)), tf.reshape(scores, shape_of(clip_ids)))

  return lookup


def teacher_score_lookup(scores, num_classes: int):
  """Returns clip ids (tf.string, any shape [...]) -> the teacher's scores [..., C] float32,
  from the score records of the Beam job (scoring.Scores, sorted by clip id). They are
  held as float16 (2 bytes an entry: 2.1 GB at AudioSet's 2.04M clips x 527 classes; a
  score's relative error is at most 2^-11). A clip without scores fails the step, naming
  the scores: a student is trained only on clips its teacher scored."""
  if scores.scores.shape[1] != num_classes:
    raise errors.BadValue(f"the teacher's scores have {scores.scores.shape[1]} classes, the "
                     f"examples {num_classes}")
  table = tf.lookup.StaticHashTable(
      tf.lookup.KeyValueTensorInitializer(
          tf.constant(scores.clip_ids.astype(object), tf.string),
          tf.range(len(scores.clip_ids), dtype=tf.int64)), default_value=-1)
  matrix = tf.constant(np.ascontiguousarray(scores.scores, np.float16))
  where = scores.manifest.get("model", "the teacher's scores")

  def lookup(clip_ids):
    ids = tf.reshape(clip_ids, [-1])
    row = table.lookup(ids)
    check = tf.debugging.assert_non_negative(
        row, message=f"a train clip has no teacher score in the scores of {where}")
    with tf.control_dependencies([check]):
      out = tf.cast(tf.gather(matrix, row), tf.float32)
    return tf.reshape(out, tf.concat([tf.shape(clip_ids), [num_classes]], 0))

  return lookup


def records(examples_dir: str, *, shuffle_files: bool = False, seed: Optional[int] = None,
            deterministic: bool = False):
  """Serialized records, shards read in parallel (interleaved); with shuffle_files the shard
  order is drawn again on every pass, and records come in the order they are read unless
  deterministic."""
  info = examples.read_info(examples_dir)
  files = tf.data.Dataset.from_tensor_slices(list(info.shards))
  if shuffle_files:
    files = files.shuffle(len(info.shards), seed=seed, reshuffle_each_iteration=True)
  return files.interleave(tf.data.TFRecordDataset, cycle_length=min(4, len(info.shards)),
                          num_parallel_calls=AUTOTUNE,
                          deterministic=deterministic or not shuffle_files), info


def clips(examples_dir: str, *, shuffle_files: bool = False, seed: Optional[int] = None,
          num_classes: Optional[int] = None):
  """Parsed clips, one at a time."""
  ds, info = records(examples_dir, shuffle_files=shuffle_files, seed=seed)
  return ds.map(lambda r: examples.parse(r, num_classes or info.num_classes),
                num_parallel_calls=AUTOTUNE, deterministic=not shuffle_files), info


def clip_patches(features, spec: examples.Features, hop_frames: int):
  """A clip's model inputs: log-mel -> [N, 96, 64] patches (the frontend's patch length);
  embeddings -> [1, 10, 128]."""
  if spec.kind == examples.EMBEDDING:
    return features[None]
  return frontend.patches(features, spec.frontend, hop_frames=hop_frames)


def training_dataset(examples_dir: str, batch_size: int, *, hop_frames: int,
                     targets: Targets = Targets(), shuffle_buffer: int = 4096,
                     seed: Optional[int] = None, repeat: bool = True,
                     clip_weights: Optional[dict] = None, with_implicit: bool = False,
                     exclude_fold: Optional[Fold] = None, with_clip_ids: bool = False,
                     deterministic: bool = False):
  """Shuffled, batched (patch, {"labels": [C], "mask": [C]}) for fit().

  targets: what the run is told (targets.py): the flagged entries and what the targets and
  mask make of them (the treatment; the paper's mask by default), the teacher's scores,
  added positives, the ontology whose ancestors of every positive become positives.

  clip_weights (clip id -> acceptance probability in (0, 1]) resamples clips, e.g. for
  class-balanced sampling. with_implicit adds "implicit": 1 where a class is neither a
  positive nor an explicit negative (what online large-loss rejection may reject).
  exclude_fold leaves that fold's clips out (an out-of-fold teacher; folds.py).
  with_clip_ids adds "clip_id" (to see
  which clips a model trains on). deterministic: the same seed gives the same batches in the
  same order (parallel stages deliver in order, a little slower), so that two runs of one
  seed differ only by what they are given, not by their batch order; otherwise each
  parallel stage delivers what is ready first. Clip resampling draws are keyed by a record's
  position in the stream, so they follow the order too.

  Embedding examples are one patch per clip: records are shuffled, batched, and parsed,
  filtered and labelled a whole batch at a time (per-clip work in tf.data costs far more
  than the model at AudioSet's 2M clips). Log-mel clips are cut into patches one by one.
  """
  info = examples.read_info(examples_dir)
  num_classes = info.num_classes
  treatment = targets.treatment
  flags_of = entry_lookup(targets.flagged, num_classes)
  teacher_of = (teacher_score_lookup(targets.teacher_scores, num_classes)
                if treatment.needs_teacher_scores else None)
  added = entry_lookup(targets.added_positives, num_classes)
  reviewed = entry_lookup(targets.reviewed, num_classes)
  up = None if targets.ontology is None else tf.constant(targets.ontology.matrix())
  weight = None
  if clip_weights:
    weight = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
        tf.constant(list(clip_weights)), tf.constant(list(clip_weights.values()), tf.float32)),
        default_value=1.0)
  filtered = weight is not None or exclude_fold is not None

  def kept(clip, position):  # [B] bool; position: int64, where the clip(s) came in the stream
    keep = tf.ones_like(clip["clip_id"], tf.bool)
    if exclude_fold is not None:
      keep &= tf.logical_not(exclude_fold.contains(clip["clip_id"]))
    if weight is not None:
      draw = tf.random.stateless_uniform(
          tf.shape(clip["clip_id"]), seed=tf.stack([tf.constant(seed or 0, tf.int64), position]))
      keep &= draw < weight.lookup(clip["clip_id"])
    return keep

  def targets(clip):  # [B, C] each
    ids = clip["clip_id"]
    def up_the_ontology(x):
      return x if up is None else tf.minimum(x + tf.matmul(x, up), 1.0)

    answered, verdict = reviewed(ids)  # a verdict: 1 present, 0 absent
    confirmed = answered * verdict
    labels = up_the_ontology(tf.maximum(tf.maximum(clip["positives"], added(ids)[0]),
                                        confirmed))
    flagged, flag_scores = flags_of(ids)
    target, mask = treatments.targets(labels, flagged, flag_scores,
                                      teacher_of(ids) if teacher_of else None, treatment)
    is_answered = answered > 0  # the reviewer's word stands, whatever the treatment says
    target = tf.where(is_answered, verdict, target)
    mask = tf.where(is_answered, tf.ones_like(mask), mask)
    out = {"labels": target, "mask": mask}
    if with_implicit:
      out["implicit"] = tf.maximum(
          1.0 - up_the_ontology(clip["positives"]) - clip["explicit_negatives"], 0.0)
    if with_clip_ids:
      out["clip_id"] = clip["clip_id"]
    return out

  ds, _ = records(examples_dir, shuffle_files=True, seed=seed, deterministic=deterministic)
  if repeat:
    ds = ds.repeat()
  if info.features.kind == examples.EMBEDDING:
    shape = [None, *info.features.input_shape]

    def batch_of_patches(position, serialized):
      clip = examples.parse_batch(serialized, num_classes)
      if filtered:
        keep = kept(clip, position)
        clip = {k: tf.boolean_mask(v, keep) for k, v in clip.items()}
      return tf.ensure_shape(clip["features"], shape), targets(clip)

    ds = (ds.shuffle(shuffle_buffer, seed=seed)
          .batch(batch_size, drop_remainder=not filtered)
          .enumerate()
          .map(batch_of_patches, num_parallel_calls=AUTOTUNE, deterministic=deterministic))
    if filtered:
      ds = ds.rebatch(batch_size, drop_remainder=True)
    return ds.prefetch(AUTOTUNE)

  ds = ds.enumerate().map(lambda i, r: (i, examples.parse(r, num_classes)),
                          num_parallel_calls=AUTOTUNE, deterministic=deterministic)
  if filtered:
    ds = ds.filter(lambda i, clip: kept({k: v[None] for k, v in clip.items()}, i)[0])

  def to_patches(position, clip):
    del position  # the resampling draw's key (kept)
    x = clip_patches(clip["features"], info.features, hop_frames)
    n = tf.shape(x)[0]
    one = targets({k: v[None] for k, v in clip.items()})
    return tf.data.Dataset.from_tensor_slices(
        (x, {k: tf.repeat(v, n, axis=0) for k, v in one.items()}))

  ds = ds.interleave(to_patches, cycle_length=8, num_parallel_calls=AUTOTUNE,
                     deterministic=deterministic)
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
