"""`score`: the teacher scores every train clip, as an Apache Beam batch job.

Each worker loads the model once (DoFn.setup) and runs fixed-size patch batches, padding
the last, so one compiled shape serves the whole job. Patch sigmoid scores are pooled per
clip (mean, or max) by inference.pool_patches, as evaluation and export pool them. A score record holds the clip id, C scores and, since the job reads
every example anyway, the clip's positive and explicit-negative indices, so flagging never
re-reads the feature shards. Counters check that every input clip was scored exactly once;
`scores.json` is written last, so its presence means the scores are complete. The job
writes beside the output and replaces it only when complete, and `scores.json` records the
ids of the examples' clip set and class map and of the model (provenance.py).
"""

import dataclasses
import os
from typing import Optional, Sequence

import apache_beam as beam
import numpy as np
import tensorflow as tf
from absl import logging

from tf_skeptical import errors
from tf_skeptical.util import example_wire, files, output_paths, shard_writer
from tf_skeptical.data import examples
from tf_skeptical import folds, inference, input_pipeline, teachers
from tf_skeptical.util.bad_input import DataError, worker_errors_as_data_errors
from tf_skeptical.util.beam_options import counter, pipeline as beam_pipeline
from tf_skeptical.util.progress import ProgressLog

SCORES_PREFIX = "scores"
MANIFEST = "scores.json"
OUTPUT = output_paths.OutputKind("scores directory", (MANIFEST,))


class _ScoreFn(beam.DoFn):
  """A batch of serialized examples -> serialized score records."""

  def __init__(self, model_path: str, num_classes: int, features: examples.Features,
               hop_frames: int, pooling: str, patch_batch: int, total: int,
               fold: Optional[folds.Fold] = None, examples_dir: str = "",
               teacher_class_map: Optional[str] = None):
    self.model_path, self.num_classes, self.features = model_path, num_classes, features
    self.hop_frames, self.pooling, self.patch_batch, self.total = (
        hop_frames, pooling, patch_batch, total)
    self.fold = fold
    self.examples_dir, self.teacher_class_map = examples_dir, teacher_class_map

  def setup(self):
    teacher = teachers.load(self.model_path, examples.read_info(self.examples_dir),
                            self.teacher_class_map)
    self._forward, self._unknown = teacher.probabilities, teacher.unknown
    num_classes, spec, hop = self.num_classes, self.features, self.hop_frames
    self._parse = tf.function(lambda r: _parsed_patches(r, num_classes, spec, hop))
    self._parse_batch = tf.function(lambda r: examples.parse_batch(r, num_classes))
    self._read = beam.metrics.Metrics.counter("score", "clips_read")
    self._scored = beam.metrics.Metrics.counter("score", "clips_scored")
    self._other_folds = beam.metrics.Metrics.counter("score", "clips_in_other_folds")
    self._progress = ProgressLog("score: clips", self.total)

  def _clips(self, records: Sequence[bytes]):
    """(clip ids [B] bytes, patches [P, ...], patch -> clip index [P], positives [B, C],
    explicit negatives [B, C]). Embedding records (one patch a clip, one shape) are parsed
    as one batch; log-mel clips of any length one by one."""
    if self.features.kind == examples.EMBEDDING:
      clip = self._parse_batch(tf.constant(records))
      ids = clip["clip_id"].numpy()
      return (ids, clip["features"].numpy(), np.arange(len(ids)), clip["positives"].numpy(),
              clip["explicit_negatives"].numpy())
    clips = [self._parse(tf.constant(r)) for r in records]
    patches = [c[1].numpy() for c in clips]
    return (np.array([c[0].numpy() for c in clips], object), np.concatenate(patches),
            np.concatenate([np.full(len(p), i) for i, p in enumerate(patches)]),
            np.stack([c[2].numpy() for c in clips]), np.stack([c[3].numpy() for c in clips]))

  def process(self, records: Sequence[bytes]):
    self._read.inc(len(records))
    ids, patches, index, positives, negatives = self._clips(records)
    if self.fold is not None:
      inside = self.fold.contains(tf.constant(ids)).numpy()
      self._other_folds.inc(int((~inside).sum()))
      if not inside.any():
        return
      keep = inside[index]
      new_index = np.cumsum(inside) - 1
      ids, positives, negatives = ids[inside], positives[inside], negatives[inside]
      patches, index = patches[keep], new_index[index[keep]]
    out = []
    for a in range(0, len(patches), self.patch_batch):
      chunk = patches[a:a + self.patch_batch]
      pad = self.patch_batch - len(chunk)
      if pad:
        chunk = np.concatenate([chunk, np.zeros((pad,) + chunk.shape[1:], chunk.dtype)])
      out.append(self._forward(chunk)[:self.patch_batch - pad])
    scores = inference.pool_patches(np.concatenate(out), index, len(ids), self.pooling)
    scores[:, self._unknown] = np.nan  # classes the teacher does not know: never flagged
    self._scored.inc(len(ids))
    self._progress.add(len(ids))
    for clip_id, s, p, n in zip(ids, scores, positives, negatives):
      yield serialize_scores(clip_id.decode("utf-8"), s, np.flatnonzero(p), np.flatnonzero(n))


def _parsed_patches(record, num_classes, spec, hop):
  """A serialized example -> (clip id, patches, positives, explicit negatives)."""
  clip = examples.parse(record, num_classes)
  return (clip["clip_id"], input_pipeline.clip_patches(clip["features"], spec, hop),
          clip["positives"], clip["explicit_negatives"])


def serialize_scores(clip_id: str, scores, positives, explicit_negatives) -> bytes:
  """A score record: a tf.train.Example, written directly (example_wire.py: the protobuf
  classes take longer per record than the model)."""
  return example_wire.example({
      "clip_id": example_wire.bytes_feature([clip_id.encode("utf-8")]),
      "scores": example_wire.float_feature(scores),
      "positives": example_wire.int64_feature(positives),
      "explicit_negatives": example_wire.int64_feature(explicit_negatives),
  })


@dataclasses.dataclass(frozen=True)
class Scores:
  """Clip scores sorted by clip id, with each clip's label indices (CSR layout)."""

  clip_ids: np.ndarray  # [N] str
  scores: np.ndarray  # [N, C] float32, column-major so a class's scores are contiguous
  positives: tuple  # (indptr [N+1], indices)
  explicit_negatives: tuple  # (indptr [N+1], indices)
  manifest: dict


def score(examples_dir: str, model_path: str, output_dir: str, *, pooling: str = "mean",
          hop_frames: Optional[int] = None, patch_batch: Optional[int] = None,
          clips_per_batch: Optional[int] = None,
          records_per_shard: int = 10_000, beam_args: Sequence[str] = (),
          local_workers: int = 2, fold: Optional[folds.Fold] = None,
          teacher_class_map: Optional[str] = None) -> dict:
  """Runs the scoring job; returns the manifest written to output_dir/scores.json.

  hop_frames: frames between scored patches; default the model's frontend's (YAMNet: 48).
  fold: score only that fold's clips (an out-of-fold teacher's job; folds.py).
  model_path may also be YAMNet's released weights (yamnet.h5, with its class map beside it
  or teacher_class_map) or an exported tagger's directory (teachers.py): a pretrained
  teacher for the classes it knows by mid; the others are scored NaN, named in the manifest
  (`unknown_classes`), and never flagged.
  clips_per_batch, patch_batch: clips a worker parses at once, and patches per model call
  (a fixed shape; the last call is padded). By default 64 and 256 for log-mel (about 20
  patches a clip), 1024 and 1024 for embeddings (one patch a clip).
  """
  output_paths.check_directory(output_dir, OUTPUT)
  info = examples.read_info(examples_dir)
  # Here, so that a bad model fails before any work.
  teacher = teachers.load(model_path, info, teacher_class_map)
  unknown = teacher.unknown
  if unknown.size:
    names = [info.class_map.display_names[c] for c in unknown]
    logging.warning("the teacher %s does not know %d of the train set's %d classes (they "
                    "get no flags): %s", model_path, unknown.size, info.num_classes,
                    ", ".join(names[:20]) + (f" and {len(names) - 20} more"
                                             if len(names) > 20 else ""))
  features = teacher.features
  hop_frames = features.patch_hop(hop_frames)
  del teacher
  one_patch_a_clip = features.kind == examples.EMBEDDING
  clips_per_batch = clips_per_batch or (1024 if one_patch_a_clip else 64)
  patch_batch = patch_batch or (clips_per_batch if one_patch_a_clip else 256)
  with files.output_lock(output_dir), files.staged(output_dir, local=False) as staging:
    pipeline = beam_pipeline(beam_args, local_workers)
    _ = (pipeline
         | "Shards" >> beam.Create(list(info.shards))
         | "Read" >> beam.io.tfrecordio.ReadAllFromTFRecord()
         | "Batch" >> beam.BatchElements(min_batch_size=clips_per_batch,
                                         max_batch_size=clips_per_batch)
         | "Score" >> beam.ParDo(_ScoreFn(files.absolute(model_path), info.num_classes,
                                          features, hop_frames, pooling, patch_batch,
                                          info.num_clips, fold, files.absolute(examples_dir),
                                          teacher_class_map))
         | "Write" >> shard_writer.WriteShards(staging, records_per_shard))
    with worker_errors_as_data_errors():
      result = pipeline.run()
      result.wait_until_finish()
    read, scored = counter(result, "clips_read"), counter(result, "clips_scored")
    if not read == scored + counter(result, "clips_in_other_folds") == info.num_clips:
      raise errors.Failed(f"scoring lost clips: {info.num_clips} in {examples_dir}, {read} "
                         f"read, {scored} scored; {output_dir} is left as it was")
    for tmp in files.glob(os.path.join(staging, "beam-temp-*")):
      files.remove(tmp)
    layout = shard_writer.publish(staging, SCORES_PREFIX)
    manifest = dict(num_clips=scored, num_classes=info.num_classes, pooling=pooling,
                    hop_frames=hop_frames, model=files.absolute(model_path),
                    model_id=inference.model_id(model_path),
                    examples=files.absolute(examples_dir),
                    clips_id=info.extra.get("clips_id"),
                    class_map_id=info.extra.get("class_map_id"),
                    fold=dataclasses.asdict(fold) if fold else None,
                    unknown_classes=[info.class_map.display_names[c] for c in unknown],
                    shards=list(layout), shard_layout=layout)
    files.write_json(os.path.join(staging, MANIFEST), manifest)
    files.publish_directory(staging, output_dir, last=MANIFEST)
  return manifest


def csr_from_lists(lists, dtype=np.int32):
  """Per-clip index lists -> CSR (indptr [N+1] int64, indices); for small cases and tests."""
  indptr = np.zeros(len(lists) + 1, np.int64)
  indptr[1:] = np.cumsum([len(x) for x in lists])
  indices = np.concatenate(lists).astype(dtype) if lists else np.zeros(0, dtype)
  return indptr, indices


def _csr_rows(indptr: np.ndarray, indices: np.ndarray, order: np.ndarray):
  """The CSR rows `order` of (indptr, indices), as a new CSR, without per-row objects."""
  lengths = np.diff(indptr)[order]
  new_indptr = np.zeros(len(order) + 1, np.int64)
  np.cumsum(lengths, out=new_indptr[1:])
  source = np.repeat(indptr[:-1][order] - new_indptr[:-1], lengths) + np.arange(
      new_indptr[-1])
  return new_indptr, indices[source]


def _csr_concat(parts):
  """CSR blocks (indptr, indices) stacked row-wise."""
  lengths = np.concatenate([np.diff(indptr) for indptr, _ in parts] or [np.zeros(0, np.int64)])
  indptr = np.zeros(len(lengths) + 1, np.int64)
  np.cumsum(lengths, out=indptr[1:])
  return indptr, np.concatenate([i for _, i in parts] or [np.zeros(0, np.int32)]).astype(
      np.int32)


def _sorted_by_id(ids: np.ndarray, where: str):
  """The order that sorts clip ids; a DataError naming `where` if one repeats."""
  order = np.argsort(ids, kind="stable")
  ids = ids[order]
  duplicate = np.flatnonzero(ids[1:] == ids[:-1])
  if duplicate.size:
    raise DataError(*where(ids[duplicate[0]]))
  return order


def read_manifest(scores_dir: str) -> dict:
  """A complete scores directory's manifest (a DataError if it is not one)."""
  path = os.path.join(scores_dir, MANIFEST)
  if not files.exists(path):
    raise DataError(scores_dir, f"no {MANIFEST}: not a scores directory, or scoring did not "
                    "finish")
  return files.read_json(path)


def read_scores(scores_dir: str, batch_size: int = 4096) -> Scores:
  """Reads a complete scores directory into memory, sorted by clip id. Memory: the [N, C]
  float32 scores, the ids and the label indices as arrays (no per-clip objects)."""
  manifest = read_manifest(scores_dir)
  examples.check_layout(scores_dir, manifest.get("shard_layout", {}), MANIFEST,
                            "copy the scores again, or run tfsk_score again")
  n, c = manifest["num_clips"], manifest["num_classes"]
  spec = {"clip_id": tf.io.FixedLenFeature([], tf.string),
          "scores": tf.io.FixedLenFeature([c], tf.float32),
          "positives": tf.io.RaggedFeature(tf.int64),
          "explicit_negatives": tf.io.RaggedFeature(tf.int64)}
  shards = [os.path.join(scores_dir, s) for s in manifest["shards"]]
  ds = tf.data.TFRecordDataset(shards).batch(batch_size).map(
      lambda r: tf.io.parse_example(r, spec)).prefetch(2)
  ids, labels = [], {"positives": [], "explicit_negatives": []}
  scores = np.empty((n, c), np.float32, order="F")
  row = 0
  for batch in ds:
    b = int(batch["clip_id"].shape[0])
    if row + b > n:
      raise DataError(scores_dir, f"more score records than the {n} in {MANIFEST}")
    scores[row:row + b] = batch["scores"].numpy()
    ids += [x.decode("utf-8") for x in batch["clip_id"].numpy()]
    for key, out in labels.items():
      out.append((batch[key].row_splits.numpy(), batch[key].values.numpy()))
    row += b
  if row != n:
    raise DataError(scores_dir, f"{row} score records, but {MANIFEST} says {n}")
  ids = np.asarray(ids)
  order = _sorted_by_id(ids, lambda k: (scores_dir, f"clip {k} is scored more than once"))
  for c in range(scores.shape[1]):  # column by column: memory stays near the scores' size
    scores[:, c] = scores[order, c]
  return Scores(ids[order], scores, _csr_rows(*_csr_concat(labels["positives"]), order),
                _csr_rows(*_csr_concat(labels["explicit_negatives"]), order), manifest)


def merge_scores(parts: Sequence[Scores]) -> Scores:
  """Scores of disjoint clip sets (out-of-fold teachers' folds) as one, sorted by clip id.
  The manifest names every part's model; its model_id is their combined id."""
  if not parts:
    raise errors.BadValue("no scores to merge")
  ids = np.concatenate([p.clip_ids for p in parts])
  order = _sorted_by_id(ids, lambda k: ("scores", f"clip {k} is in more than one fold's "
                                                   "scores"))
  num_classes = {p.scores.shape[1] for p in parts}
  if len(num_classes) != 1:
    raise DataError("scores", f"the parts have different class counts: {sorted(num_classes)}")
  scores = np.asfortranarray(np.concatenate([p.scores for p in parts])[order])

  def lists(key):
    return _csr_rows(*_csr_concat([getattr(p, key) for p in parts]), order)

  first = parts[0].manifest
  for p in parts[1:]:
    for key in ("clips_id", "class_map_id", "examples"):
      if p.manifest.get(key) != first.get(key):
        raise DataError("scores", f"fold scores of different examples ({key}: "
                        f"{first.get(key)} vs {p.manifest.get(key)})")
  model_ids = [p.manifest.get("model_id") for p in parts]
  manifest = dict(first, num_clips=int(ids.size), model_id=folds.combined_model_id(model_ids),
                  model=[p.manifest.get("model") for p in parts], fold_model_ids=model_ids,
                  fold=None)
  return Scores(ids[order], scores, lists("positives"), lists("explicit_negatives"),
                manifest)
