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

from tf_skeptical import (examples, files, folds, inference, input_pipeline, provenance,
                          shard_writer)
from tf_skeptical.bad_input import DataError, worker_errors_as_data_errors
from tf_skeptical.beam_options import counter, pipeline_options
from tf_skeptical.progress import ProgressLog

SCORES_PREFIX = "scores"
MANIFEST = "scores.json"


class _ScoreFn(beam.DoFn):
  """A batch of serialized examples -> serialized score records."""

  def __init__(self, model_path: str, num_classes: int, features: examples.Features,
               hop_frames: int, pooling: str, patch_batch: int, total: int,
               fold: Optional[folds.Fold] = None):
    self.model_path, self.num_classes, self.features = model_path, num_classes, features
    self.hop_frames, self.pooling, self.patch_batch, self.total = (
        hop_frames, pooling, patch_batch, total)
    self.fold = fold

  def setup(self):
    model = inference.load_model(self.model_path)
    self._forward = lambda x: inference.patch_probabilities(model, x)
    num_classes, spec, hop = self.num_classes, self.features, self.hop_frames
    self._parse = tf.function(lambda r: _parsed_patches(r, num_classes, spec, hop))
    self._read = beam.metrics.Metrics.counter("score", "clips_read")
    self._scored = beam.metrics.Metrics.counter("score", "clips_scored")
    self._other_folds = beam.metrics.Metrics.counter("score", "clips_in_other_folds")
    self._progress = ProgressLog("score: clips", self.total)

  def process(self, records: Sequence[bytes]):
    self._read.inc(len(records))
    clips = [self._parse(tf.constant(r)) for r in records]
    if self.fold is not None:
      inside = self.fold.contains(tf.stack([c[0] for c in clips])).numpy()
      self._other_folds.inc(int((~inside).sum()))
      clips = [c for c, keep in zip(clips, inside) if keep]
      if not clips:
        return
    patches = np.concatenate([c[1].numpy() for c in clips])
    index = np.concatenate([np.full(c[1].shape[0], i) for i, c in enumerate(clips)])
    out = []
    for a in range(0, len(patches), self.patch_batch):
      chunk = patches[a:a + self.patch_batch]
      pad = self.patch_batch - len(chunk)
      if pad:
        chunk = np.concatenate([chunk, np.zeros((pad,) + chunk.shape[1:], chunk.dtype)])
      out.append(self._forward(chunk)[:self.patch_batch - pad])
    scores = inference.pool_patches(np.concatenate(out), index, len(clips), self.pooling)
    for (clip_id, _, positives, negatives), s in zip(clips, scores):
      self._scored.inc()
      self._progress.add()
      yield serialize_scores(clip_id.numpy().decode("utf-8"), s,
                             np.flatnonzero(positives.numpy()),
                             np.flatnonzero(negatives.numpy()))


def _parsed_patches(record, num_classes, spec, hop):
  """A serialized example -> (clip id, patches, positives, explicit negatives)."""
  clip = examples.parse(record, num_classes)
  return (clip["clip_id"], input_pipeline.clip_patches(clip["features"], spec, hop),
          clip["positives"], clip["explicit_negatives"])


def serialize_scores(clip_id: str, scores, positives, explicit_negatives) -> bytes:
  feature = {
      "clip_id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[clip_id.encode()])),
      "scores": tf.train.Feature(float_list=tf.train.FloatList(value=list(map(float, scores)))),
      "positives": tf.train.Feature(int64_list=tf.train.Int64List(value=list(positives))),
      "explicit_negatives": tf.train.Feature(
          int64_list=tf.train.Int64List(value=list(explicit_negatives))),
  }
  return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


@dataclasses.dataclass(frozen=True)
class Scores:
  """Clip scores sorted by clip id, with each clip's label indices (CSR layout)."""

  clip_ids: np.ndarray  # [N] str
  scores: np.ndarray  # [N, C] float32, column-major so a class's scores are contiguous
  positives: tuple  # (indptr [N+1], indices)
  explicit_negatives: tuple  # (indptr [N+1], indices)
  manifest: dict


def score(examples_dir: str, model_path: str, output_dir: str, *, pooling: str = "mean",
          hop_frames: Optional[int] = None, patch_batch: int = 256, clips_per_batch: int = 64,
          records_per_shard: int = 10_000, beam_args: Sequence[str] = (),
          local_workers: int = 2,
          fold: Optional[folds.Fold] = None) -> dict:
  """Runs the scoring job; returns the manifest written to output_dir/scores.json.

  hop_frames: frames between scored patches; default the model's frontend's (YAMNet: 48).
  fold: score only that fold's clips (an out-of-fold teacher's job; folds.py).
  """
  info = examples.read_info(examples_dir)
  model = inference.load_model(model_path)  # here, so that a bad model fails before any work
  inference.check_examples(model, model_path, info)
  features = inference.features_of(model)
  hop_frames = features.patch_hop(hop_frames)
  del model
  with files.output_lock(output_dir):
    staging = files.staging_directory(output_dir, local=False)
    pipeline = beam.Pipeline(options=pipeline_options(beam_args, local_workers))
    _ = (pipeline
         | "Shards" >> beam.Create(list(info.shards))
         | "Read" >> beam.io.tfrecordio.ReadAllFromTFRecord()
         | "Batch" >> beam.BatchElements(min_batch_size=clips_per_batch,
                                         max_batch_size=clips_per_batch)
         | "Score" >> beam.ParDo(_ScoreFn(files.absolute(model_path), info.num_classes,
                                          features, hop_frames, pooling, patch_batch,
                                          info.num_clips, fold))
         | "Write" >> shard_writer.WriteShards(staging, records_per_shard))
    with worker_errors_as_data_errors():
      result = pipeline.run()
      result.wait_until_finish()
    read, scored = counter(result, "clips_read"), counter(result, "clips_scored")
    if not read == scored + counter(result, "clips_in_other_folds") == info.num_clips:
      raise RuntimeError(f"scoring lost clips: {info.num_clips} in {examples_dir}, {read} "
                         f"read, {scored} scored; {output_dir} is left as it was")
    for tmp in files.glob(os.path.join(staging, "beam-temp-*")):
      files.remove(tmp)
    shards = shard_writer.publish(staging, SCORES_PREFIX)
    manifest = dict(num_clips=scored, num_classes=info.num_classes, pooling=pooling,
                    hop_frames=hop_frames, model=files.absolute(model_path),
                    model_id=provenance.file_id(inference.model_path(model_path)),
                    examples=files.absolute(examples_dir),
                    clips_id=info.extra.get("clips_id"),
                    class_map_id=info.extra.get("class_map_id"),
                    fold=dataclasses.asdict(fold) if fold else None,
                    shards=shards)
    files.write_json(os.path.join(staging, MANIFEST), manifest)
    files.publish_directory(staging, output_dir, last=MANIFEST)
  return manifest


def _csr(lists, dtype=np.int32):
  indptr = np.zeros(len(lists) + 1, np.int64)
  indptr[1:] = np.cumsum([len(x) for x in lists])
  indices = np.concatenate(lists).astype(dtype) if lists else np.zeros(0, dtype)
  return indptr, indices


def read_scores(scores_dir: str, batch_size: int = 4096) -> Scores:
  """Reads a complete scores directory into memory, sorted by clip id."""
  path = os.path.join(scores_dir, MANIFEST)
  if not files.exists(path):
    raise DataError(scores_dir, f"no {MANIFEST}: not a scores directory, or scoring did not "
                    "finish")
  manifest = files.read_json(path)
  n, c = manifest["num_clips"], manifest["num_classes"]
  spec = {"clip_id": tf.io.FixedLenFeature([], tf.string),
          "scores": tf.io.FixedLenFeature([c], tf.float32),
          "positives": tf.io.RaggedFeature(tf.int64),
          "explicit_negatives": tf.io.RaggedFeature(tf.int64)}
  shards = [os.path.join(scores_dir, s) for s in manifest["shards"]]
  ds = tf.data.TFRecordDataset(shards).batch(batch_size).map(
      lambda r: tf.io.parse_example(r, spec))
  ids, pos, neg = [], [], []
  scores = np.empty((n, c), np.float32, order="F")
  row = 0
  for batch in ds:
    b = int(batch["clip_id"].shape[0])
    if row + b > n:
      raise DataError(scores_dir, f"more score records than the {n} in {MANIFEST}")
    scores[row:row + b] = batch["scores"].numpy()
    ids += [x.decode("utf-8") for x in batch["clip_id"].numpy()]
    for key, out in (("positives", pos), ("explicit_negatives", neg)):
      ragged = batch[key]
      out += np.split(ragged.values.numpy(), ragged.row_splits.numpy()[1:-1])
    row += b
  if row != n:
    raise DataError(scores_dir, f"{row} score records, but {MANIFEST} says {n}")
  ids = np.asarray(ids)
  order = np.argsort(ids, kind="stable")
  ids = ids[order]
  duplicate = np.flatnonzero(ids[1:] == ids[:-1])
  if duplicate.size:
    raise DataError(scores_dir, f"clip {ids[duplicate[0]]} is scored more than once")
  for c in range(scores.shape[1]):  # column by column: memory stays near the scores' size
    scores[:, c] = scores[order, c]
  return Scores(ids, scores, _csr([pos[i] for i in order]),
                _csr([neg[i] for i in order]), manifest)


def merge_scores(parts: Sequence[Scores]) -> Scores:
  """Scores of disjoint clip sets (out-of-fold teachers' folds) as one, sorted by clip id.
  The manifest names every part's model; its model_id is their combined id."""
  if not parts:
    raise ValueError("no scores to merge")
  ids = np.concatenate([p.clip_ids for p in parts])
  order = np.argsort(ids, kind="stable")
  ids = ids[order]
  duplicate = np.flatnonzero(ids[1:] == ids[:-1])
  if duplicate.size:
    raise DataError("scores", f"clip {ids[duplicate[0]]} is in more than one fold's scores")
  num_classes = {p.scores.shape[1] for p in parts}
  if len(num_classes) != 1:
    raise DataError("scores", f"the parts have different class counts: {sorted(num_classes)}")
  scores = np.asfortranarray(np.concatenate([p.scores for p in parts])[order])

  def lists(key):
    out = []
    for p in parts:
      indptr, indices = getattr(p, key)
      out += np.split(indices, indptr[1:-1])
    return _csr([out[i] for i in order])

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
  return Scores(ids, scores, lists("positives"), lists("explicit_negatives"), manifest)
