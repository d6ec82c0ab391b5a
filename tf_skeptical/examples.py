"""The package's example records: one tf.train.Example per clip, in sharded TFRecords.

Each record holds the clip id, positive label indices, explicit-negative indices and the
precomputed model input (log-mel frames [T, 64], or AudioSet embeddings [10, 128]) as raw
float32 bytes plus its shape. An examples directory also holds `class_map.csv` and
`manifest.json`; the manifest is written last, so its presence means the shards are complete.
"""

import dataclasses
import os
from typing import Optional

import numpy as np
import tensorflow as tf

from tf_skeptical import files
from tf_skeptical.bad_input import DataError
from tf_skeptical.class_map import ClassMap, read_class_map

MANIFEST = "manifest.json"
CLASS_MAP = "class_map.csv"
SHARD_PREFIX = "examples"
LOG_MEL = "log_mel"
EMBEDDING = "embedding"

_FEATURES = {
    "clip_id": tf.io.FixedLenFeature([], tf.string),
    "positives": tf.io.VarLenFeature(tf.int64),
    "explicit_negatives": tf.io.VarLenFeature(tf.int64),
    "features": tf.io.FixedLenFeature([], tf.string),
    "feature_shape": tf.io.FixedLenFeature([2], tf.int64),
}


def _int64s(values):
  return tf.train.Feature(int64_list=tf.train.Int64List(value=list(values)))


def _bytes(value: bytes):
  return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def serialize(clip_id: str, positives, explicit_negatives, features: np.ndarray) -> bytes:
  features = np.ascontiguousarray(features, dtype="<f4")
  if features.ndim != 2:
    raise ValueError(f"clip {clip_id}: features must be [frames, dims], got {features.shape}")
  return tf.train.Example(features=tf.train.Features(feature={
      "clip_id": _bytes(clip_id.encode("utf-8")),
      "positives": _int64s(positives),
      "explicit_negatives": _int64s(explicit_negatives),
      "features": _bytes(features.tobytes()),
      "feature_shape": _int64s(features.shape),
  })).SerializeToString()


def parse(record, num_classes: int):
  """Serialized record -> dict(clip_id, features [T, D], positives, explicit_negatives).

  Positives and explicit negatives come back as multi-hot float32 vectors of num_classes.
  """
  parsed = tf.io.parse_single_example(record, _FEATURES)
  features = tf.reshape(tf.io.decode_raw(parsed["features"], tf.float32),
                        parsed["feature_shape"])

  def multi_hot(sparse):
    hits = tf.scatter_nd(sparse.values[:, None], tf.ones_like(sparse.values, tf.float32),
                         [num_classes])
    return tf.minimum(hits, 1.0)  # a repeated index still means 1

  return {
      "clip_id": parsed["clip_id"],
      "features": features,
      "positives": multi_hot(parsed["positives"]),
      "explicit_negatives": multi_hot(parsed["explicit_negatives"]),
  }


@dataclasses.dataclass(frozen=True)
class ExamplesInfo:
  """What manifest.json says about an examples directory."""

  directory: str
  num_clips: int
  num_classes: int
  feature_kind: str
  feature_dims: int
  frames_per_clip: Optional[int]
  shards: tuple
  extra: dict

  @property
  def class_map(self) -> ClassMap:
    return read_class_map(os.path.join(self.directory, CLASS_MAP))


def write_manifest(directory: str, num_clips: int, num_classes: int, feature_kind: str,
                   feature_dims: int, frames_per_clip: Optional[int], **extra) -> None:
  shards = files.names(os.path.join(directory, SHARD_PREFIX + "-*"))
  manifest = dict(num_clips=num_clips, num_classes=num_classes, feature_kind=feature_kind,
                  feature_dims=feature_dims, frames_per_clip=frames_per_clip, shards=shards,
                  **extra)
  files.write_json(os.path.join(directory, MANIFEST), manifest, sort_keys=True)


def read_info(directory: str) -> ExamplesInfo:
  """Reads an examples directory's manifest; an incomplete directory is an error."""
  path = os.path.join(directory, MANIFEST)
  if not files.exists(path):
    raise DataError(directory, f"no {MANIFEST}: not an examples directory, or `prepare` "
                    "did not finish writing it")
  m = files.read_json(path)
  shards = tuple(os.path.join(directory, s) for s in m.pop("shards"))
  present = set(files.names(os.path.join(directory, SHARD_PREFIX + "-*")))  # one listing
  missing = [s for s in shards if os.path.basename(s) not in present]
  if missing:
    raise DataError(directory, f"{len(missing)} shard(s) listed in {MANIFEST} are missing, "
                    f"first {missing[0]}")
  keys = ("num_clips", "num_classes", "feature_kind", "feature_dims", "frames_per_clip")
  return ExamplesInfo(directory, *(m.pop(k) for k in keys), shards=shards, extra=m)


def iterate(directory: str, num_classes: Optional[int] = None):
  """Yields parsed clips as numpy dicts, in shard order (for scoring, flagging, tests)."""
  info = read_info(directory)
  ds = tf.data.TFRecordDataset(list(info.shards)).map(
      lambda r: parse(r, num_classes or info.num_classes))
  for item in ds.as_numpy_iterator():
    item["clip_id"] = item["clip_id"].decode("utf-8")
    yield item
