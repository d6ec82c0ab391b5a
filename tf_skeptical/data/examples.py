"""The package's example records: one tf.train.Example per clip, in sharded TFRecords.

Each record holds the clip id, positive label indices, explicit-negative indices and the
precomputed model input (log-mel frames [T, mel bands], or AudioSet embeddings [10, 128]) as
raw bytes plus its shape, stored as the record says (`feature_storage`, see STORAGES):
float32; float16 (half the size; log-mel values in [-7, 9] come back within 0.004); or, for
AudioSet's embeddings, their released uint8 codes (a quarter of the size, lossless). An examples directory also holds `class_map.csv` and
`manifest.json`; the manifest is written last, so its presence means the shards are complete.

The manifest also says how the features were made (`Features`: their kind and, for log-mel,
the frontend settings). Training records the same description in the model, and every
later stage compares the two, so a model never meets features made another way unnoticed.
"""

import dataclasses
import os
from typing import Dict, Optional

import numpy as np
import tensorflow as tf

from tf_skeptical import errors
from tf_skeptical.util import example_wire, files, output_paths
from tf_skeptical.util.bad_input import DataError
from tf_skeptical.data.class_map import CLASS_MAP_FILE, ClassMap, read_class_map
from tf_skeptical.data.params import FrontendParams

MANIFEST = "manifest.json"
OUTPUT = output_paths.OutputKind("examples directory", (MANIFEST,))
CLASS_MAP = CLASS_MAP_FILE
SHARD_PREFIX = "examples"
LOG_MEL = "log_mel"
EMBEDDING = "embedding"
FLOAT32, FLOAT16, UINT8 = "float32", "float16", "uint8"
STORAGES = (FLOAT32, FLOAT16, UINT8)

_FEATURES = {
    "clip_id": tf.io.FixedLenFeature([], tf.string),
    "positives": tf.io.VarLenFeature(tf.int64),
    "explicit_negatives": tf.io.VarLenFeature(tf.int64),
    "features": tf.io.FixedLenFeature([], tf.string),
    "feature_shape": tf.io.FixedLenFeature([2], tf.int64),
    # Records written before storage options existed are float32.
    "feature_storage": tf.io.FixedLenFeature([], tf.string, default_value=FLOAT32),
}


def encode_features(features: np.ndarray, storage: str = FLOAT32) -> bytes:
  """[frames, dims] float features -> raw bytes in `storage`. uint8 holds AudioSet's
  embedding codes q as (q - 128) / 128 and refuses anything else; a uint8 array is taken
  as the codes themselves."""
  if storage == UINT8 and np.asarray(features).dtype == np.uint8:
    return np.ascontiguousarray(features).tobytes()
  if storage == FLOAT32:
    return np.ascontiguousarray(features, "<f4").tobytes()
  if storage == FLOAT16:
    return np.ascontiguousarray(features, "<f2").tobytes()
  if storage == UINT8:
    codes = np.asarray(features, np.float64) * 128.0 + 128.0
    if not (np.all(codes == np.round(codes)) and codes.min() >= 0 and codes.max() <= 255):
      raise errors.BadValue("uint8 storage holds AudioSet's embedding codes ((q - 128) / 128) "
                       "only; these features are not such codes: use float16")
    return codes.astype(np.uint8).tobytes()
  raise errors.BadValue(f"feature storage must be one of {STORAGES}, got {storage!r}")


def serialize(clip_id: str, positives, explicit_negatives, features: np.ndarray,
              storage: str = FLOAT32) -> bytes:
  features = np.asarray(features)
  if features.ndim != 2:
    raise errors.BadValue(f"clip {clip_id}: features must be [frames, dims], got {features.shape}")
  return example_wire.example({  # wire format: the protobuf classes are slower per clip
      "clip_id": example_wire.bytes_feature([clip_id.encode("utf-8")]),
      "positives": example_wire.int64_feature(positives),
      "explicit_negatives": example_wire.int64_feature(explicit_negatives),
      "features": example_wire.bytes_feature([encode_features(features, storage)]),
      "feature_shape": example_wire.int64_feature(features.shape),
      "feature_storage": example_wire.bytes_feature([storage.encode()]),
  })


def _decode_features(raw, storage):
  """Raw feature bytes -> float32, by the record's storage (a graph-side switch)."""
  return tf.case([
      (tf.equal(storage, FLOAT16),
       lambda: tf.cast(tf.io.decode_raw(raw, tf.float16), tf.float32)),
      (tf.equal(storage, UINT8),
       lambda: (tf.cast(tf.io.decode_raw(raw, tf.uint8), tf.float32) - 128.0) / 128.0)],
      default=lambda: tf.io.decode_raw(raw, tf.float32), exclusive=True)


def parse_batch(records, num_classes: int):
  """Serialized records [B] -> dict(clip_id [B], features [B, T, D], positives [B, C],
  explicit_negatives [B, C]), parsed in one vectorized call.

  The records of one batch must share their features' shape and storage (one examples
  directory's embeddings do; log-mel clips of different lengths go one at a time, `parse`).
  Positives and explicit negatives come back as multi-hot float32 vectors of num_classes.
  """
  parsed = tf.io.parse_example(records, _FEATURES)
  shape, storage = parsed["feature_shape"], parsed["feature_storage"]
  checks = [tf.debugging.assert_equal(shape, tf.broadcast_to(shape[:1], tf.shape(shape)),
                                      message="records of one batch differ in feature shape"),
            tf.debugging.assert_equal(storage, storage[:1],
                                      message="records of one batch differ in storage")]
  with tf.control_dependencies(checks):
    flat = _decode_features(parsed["features"], storage[0])
  features = tf.reshape(flat, tf.concat([tf.shape(records, tf.int64), shape[0]], 0))

  def multi_hot(sparse):  # a repeated index still means 1
    return tf.cast(tf.sparse.to_indicator(sparse, num_classes), tf.float32)

  return {
      "clip_id": parsed["clip_id"],
      "features": features,
      "positives": multi_hot(parsed["positives"]),
      "explicit_negatives": multi_hot(parsed["explicit_negatives"]),
  }


def parse(record, num_classes: int):
  """One serialized record -> dict(clip_id, features [T, D], positives [C],
  explicit_negatives [C])."""
  return {k: v[0] for k, v in parse_batch(record[None], num_classes).items()}


class FeatureMismatch(errors.BadValue):
  """Two artifacts whose features were made differently (a model and examples, or two
  examples directories)."""

  def __init__(self, a_name: str, b_name: str, differences):
    self.differences = list(differences)
    super().__init__(f"{a_name} and {b_name} have different features: "
                     + "; ".join(self.differences)
                     + ". Prepare both with the same settings, or use a model trained on "
                     "these examples.")


@dataclasses.dataclass(frozen=True)
class Features:
  """How a model's input is made: the features' kind and size and, for log-mel, the
  frontend. Recorded in an examples manifest and in every model trained on them."""

  kind: str  # LOG_MEL or EMBEDDING
  dims: int  # mel bands, or the embedding size
  frontend: Optional[FrontendParams] = None  # log-mel only
  embedding_frames: Optional[int] = None  # embeddings only: frames per clip

  @property
  def input_shape(self) -> tuple:
    """The model's input: one log-mel patch, or a clip's embedding frames."""
    if self.kind == EMBEDDING:
      return (self.embedding_frames, self.dims)
    return (self.frontend.patch_frames, self.dims)

  def patch_hop(self, hop_frames: Optional[int] = None) -> int:
    """The hop between inference patches: hop_frames, or the frontend's (YAMNet: 48)."""
    if self.kind == EMBEDDING:
      return 1
    return hop_frames or self.frontend.patch_hop_frames

  def patches_per_clip(self, frames_per_clip: int, hop_frames: int) -> int:
    if self.kind == EMBEDDING:
      return 1
    return max(1, self.frontend.num_patches(frames_per_clip, hop_frames))

  def to_dict(self) -> dict:
    return dict(kind=self.kind, dims=self.dims, embedding_frames=self.embedding_frames,
                frontend=dataclasses.asdict(self.frontend) if self.frontend else None)

  @classmethod
  def from_dict(cls, d: dict) -> "Features":
    frontend = FrontendParams(**d["frontend"]) if d.get("frontend") else None
    return cls(d["kind"], int(d["dims"]), frontend, d.get("embedding_frames"))

  def differences(self, other: "Features") -> list:
    """What makes the two feature sets incompatible, as "field: this vs other". The patch
    hop is left out: it changes where inference cuts patches, not the features."""
    if self.kind != other.kind:
      return [f"kind: {self.kind} vs {other.kind}"]
    out = [] if self.dims == other.dims else [f"dims: {self.dims} vs {other.dims}"]
    if self.embedding_frames != other.embedding_frames:
      out.append(f"embedding frames: {self.embedding_frames} vs {other.embedding_frames}")
    if self.frontend and other.frontend:
      a, b = dataclasses.asdict(self.frontend), dataclasses.asdict(other.frontend)
      out += [f"frontend {k}: {a[k]} vs {b[k]}" for k in a
              if k != "patch_hop_frames" and a[k] != b[k]]
    return out

  def check_same(self, name: str, other: "Features", other_name: str) -> None:
    """Raises FeatureMismatch naming both artifacts and every difference."""
    differences = self.differences(other)
    if differences:
      raise FeatureMismatch(name, other_name, differences)


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

  @property
  def features(self) -> Features:
    frontend = self.extra.get("frontend")
    if self.feature_kind == LOG_MEL and not frontend:
      raise DataError(self.directory, f"{MANIFEST} records no frontend settings: prepare "
                      "these examples again")
    return Features(self.feature_kind, self.feature_dims,
                    FrontendParams(**frontend) if frontend else None,
                    self.frames_per_clip if self.feature_kind == EMBEDDING else None)

  @property
  def frontend(self) -> Optional[FrontendParams]:
    return self.features.frontend

  def patches_per_clip(self, hop_frames: int) -> int:
    """Patches cut from one clip at hop_frames; for clips prepared at their own lengths
    (frames_per_clip None), from their mean length."""
    frames = self.frames_per_clip
    if frames is None:
      frames = self.extra.get("frames_written", 0) // max(self.num_clips, 1)
    return self.features.patches_per_clip(frames, hop_frames)


def write_manifest(directory: str, num_clips: int, num_classes: int, features: Features,
                   frames_per_clip: Optional[int], **extra) -> None:
  """manifest.json, last: frames_per_clip is None where clips keep their own lengths."""
  shards = files.names(os.path.join(directory, SHARD_PREFIX + "-*"))
  manifest = dict(num_clips=num_clips, num_classes=num_classes, feature_kind=features.kind,
                  feature_dims=features.dims, frames_per_clip=frames_per_clip, shards=shards,
                  frontend=dataclasses.asdict(features.frontend) if features.frontend else None,
                  **extra)
  files.write_json(os.path.join(directory, MANIFEST), manifest, sort_keys=True)


def check_layout(directory: str, layout: Dict[str, dict], manifest: str, remedy: str) -> None:
  """Raises a DataError naming the first shard whose size differs from what `manifest`
  recorded at writing (a truncated or partial copy); remedy: what to do about it."""
  for name, want in layout.items():
    path = os.path.join(directory, name)
    have = files.size(path)
    if have != want["bytes"]:
      raise DataError(path, f"{have} bytes, but {manifest} recorded {want['bytes']} "
                      f"({want['records']} records): the shard is truncated or was changed "
                      f"after it was written; {remedy}")


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
  check_layout(directory, m.get("shard_layout", {}), MANIFEST,
                            "copy the examples again, or run tfsk_prepare again")
  keys = ("num_clips", "num_classes", "feature_kind", "feature_dims", "frames_per_clip")
  return ExamplesInfo(directory, *(m.pop(k) for k in keys), shards=shards, extra=m)


def iterate(directory: str, num_classes: Optional[int] = None):
  """Yields parsed clips as numpy dicts, in shard order (for inspection and tests)."""
  info = read_info(directory)
  ds = tf.data.TFRecordDataset(list(info.shards)).map(
      lambda r: parse(r, num_classes or info.num_classes))
  for item in ds.as_numpy_iterator():
    item["clip_id"] = item["clip_id"].decode("utf-8")
    yield item
