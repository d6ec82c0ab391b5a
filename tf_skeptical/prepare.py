"""`prepare`: AudioSet-style inputs -> the package's example shards, as a Beam pipeline.

Two sources: a segments CSV + audio folder + class map (audio is decoded and turned into
log-mel frames once, here, so training never decodes audio again), or AudioSet's released
embedding TFRecords. Rows and files are checked in the launcher where row numbers are
known; decoding problems surface in the workers. Either stops with an error naming file
and row, or, with skip_bad_clips, becomes a counted skip listed in `skipped.csv`.
Shards are written by Beam's file sink into a directory beside the output, `manifest.json`
last, and the directory replaces the output only when complete (a failing run keeps the
previous output). The manifest records the clip set's and the class map's ids
(provenance.py), which scores, flags and students are checked against.
"""

import dataclasses
import json
import os
import random
from typing import Optional, Sequence

import apache_beam as beam
import tensorflow as tf

from tf_skeptical import errors
from tf_skeptical.data import audio_io, audioset_embeddings, examples, frontend
from tf_skeptical.util import files, output_paths, provenance, shard_writer
from tf_skeptical.data.audio_io import AUDIO_EXTENSIONS
from tf_skeptical.errors import tf_error_text
from tf_skeptical.util.bad_input import (DataError, Skip,
                                         worker_errors_as_data_errors, write_skip_report)
from tf_skeptical.util.beam_options import counter, pipeline as beam_pipeline
from tf_skeptical.data.class_map import read_class_map, write_class_map
from tf_skeptical.data.params import DEFAULT_FRONTEND, FrontendParams
from tf_skeptical.util.progress import ProgressLog
from tf_skeptical.data.segments import read_segments

CLIPS_PER_SHARD = 1000
SKIPPED = "skipped"
SKIP_REPORT = "skipped.csv"
HASHES = "clip_hashes"  # the written clips' combined hash, read into the manifest


@dataclasses.dataclass(frozen=True)
class PrepareResult:
  output_dir: str
  num_clips: int
  skips: tuple

  @property
  def report(self) -> Optional[str]:
    return os.path.join(self.output_dir, SKIP_REPORT) if self.skips else None


def audio_files(audio_dir: str) -> dict:
  """Clip id -> audio file in audio_dir, from one listing (a bucket of 2M clips would
  otherwise take a request per clip and extension). Where one id has several files, the
  first extension in AUDIO_EXTENSIONS wins."""
  if not files.isdir(audio_dir):
    raise DataError(audio_dir, "audio folder does not exist")
  found = {}
  for name in files.listdir(audio_dir):
    stem, ext = os.path.splitext(name)
    if ext in AUDIO_EXTENSIONS and (
        stem not in found or AUDIO_EXTENSIONS.index(ext) < AUDIO_EXTENSIONS.index(found[stem])):
      found[stem] = ext
  return {stem: os.path.join(audio_dir, stem + ext) for stem, ext in found.items()}


class _ExampleFn(beam.DoFn):
  """Counters of written and skipped clips, and a progress line every 10 s in the worker's
  log (a Beam worker cannot draw a bar)."""
  total = 0  # clips, where known beforehand

  def setup(self):
    self._written = beam.metrics.Metrics.counter("prepare", "clips_written")
    self._skipped = beam.metrics.Metrics.counter("prepare", "clips_skipped")
    self._progress = ProgressLog("prepare: clips", self.total)

  def teardown(self):
    if hasattr(self, "_progress"):
      self._progress.log()


class _LogMelFn(_ExampleFn):
  """Audio file -> serialized example with log-mel frames (or a tagged skip)."""

  def __init__(self, params: FrontendParams, clip_samples: Optional[int], skip_bad: bool,
               total: int, storage: str = examples.FLOAT32):
    self.params, self.clip_samples, self.skip_bad, self.total = (
        params, clip_samples, skip_bad, total)
    self.storage = storage

  def setup(self):
    super().setup()
    params = self.params
    self._load = tf.function(lambda path: audio_io.load_clip(path, None, params),
                             input_signature=[tf.TensorSpec([], tf.string)])
    self._fit = tf.function(lambda w: audio_io.fit_length(w, self.clip_samples))
    self._log_mel = tf.function(lambda w: frontend.log_mel(w, params))
    self._errors = (tf.errors.OpError, DataError)
    self._frames = beam.metrics.Metrics.counter("prepare", "frames_written")

  def _features(self, item):
    path = item["path"]
    try:
      waveform = self._load(path)
    except self._errors as e:
      raise DataError(path, f"cannot decode audio ({type(e).__name__}: {tf_error_text(e)})")
    non_finite = int(tf.reduce_sum(tf.cast(~tf.math.is_finite(waveform), tf.int32)))
    if non_finite:
      raise DataError(path, f"{non_finite} non-finite samples (NaN or Inf) in the audio")
    if waveform.shape[0] < self.params.min_patch_samples:
      raise DataError(path, f"clip is {waveform.shape[0] / self.params.sample_rate:.3f} s, "
                      f"shorter than one {self.params.min_patch_samples}-sample patch")
    if self.clip_samples:
      waveform = self._fit(waveform)
    return self._log_mel(waveform).numpy()

  def process(self, item):
    try:
      features = self._features(item)
    except DataError as e:
      if not self.skip_bad:
        raise DataError(e.path, f"{e.problem} (segments row {item['row']}; "
                        "--skip_bad_clips skips such clips)")
      self._skipped.inc()
      yield beam.pvalue.TaggedOutput(SKIPPED, json.dumps(
          dict(path=item["csv"], row=item["row"], clip_id=item["clip_id"],
               reason=f"{e.problem} [{e.path}]")))
      return
    self._written.inc()
    self._frames.inc(int(features.shape[0]))
    self._progress.add()
    yield beam.pvalue.TaggedOutput(HASHES, provenance.clip_hash(
        item["clip_id"], item["positives"], item["negatives"]))
    yield examples.serialize(item["clip_id"], item["positives"], item["negatives"], features,
                             self.storage)


class _EmbeddingFn(_ExampleFn):
  """(file, SequenceExample) -> serialized example with [10, 128] embeddings."""

  def __init__(self, num_classes: int, skip_bad: bool, storage: str = examples.FLOAT32):
    self.num_classes, self.skip_bad, self.storage = num_classes, skip_bad, storage

  def process(self, file_and_record):
    path, record = file_and_record
    try:
      clip = audioset_embeddings.parse_sequence_example(record, self.num_classes, path)
    except DataError as e:
      if not self.skip_bad:
        raise
      self._skipped.inc()
      yield beam.pvalue.TaggedOutput(SKIPPED, json.dumps(
          dict(path=path, row=None, clip_id="", reason=e.problem)))
      return
    self._written.inc()
    self._progress.add()
    yield beam.pvalue.TaggedOutput(HASHES, provenance.clip_hash(clip.clip_id, clip.labels))
    features = clip.codes if self.storage == examples.UINT8 else clip.embeddings
    yield examples.serialize(clip.clip_id, clip.labels, (), features, self.storage)


def _write(outputs, output_dir: str, clips_per_shard: int):
  """Example shards (shard_writer.py: no GroupByKey, so memory does not grow with the
  dataset), the skipped clips' reasons, and the written clips' combined hash."""
  _ = outputs.ok | "WriteExamples" >> shard_writer.WriteShards(output_dir, clips_per_shard)
  _ = outputs[SKIPPED] | "WriteSkips" >> beam.io.WriteToText(
      os.path.join(output_dir, SKIPPED), file_name_suffix=".jsonl")
  _ = (outputs[HASHES]
       | "CombineHashes" >> beam.CombineGlobally(provenance.combine_hashes)
       | "HashText" >> beam.Map(str)
       | "WriteHash" >> beam.io.WriteToText(os.path.join(output_dir, HASHES),
                                            shard_name_template=""))


def _collect_skips(output_dir: str, launcher_skips: Sequence[Skip]):
  skips = list(launcher_skips)
  for part in files.glob(os.path.join(output_dir, SKIPPED + "-*")):
    with files.open(part) as f:
      skips += [Skip(**json.loads(line)) for line in f if line.strip()]
    files.remove(part)
  if skips:
    write_skip_report(skips, os.path.join(output_dir, SKIP_REPORT))
  return tuple(skips)


def _collect_hash(output_dir: str) -> int:
  path = os.path.join(output_dir, HASHES)
  with files.open(path) as f:
    value = int(f.read().strip())
  files.remove(path)
  return value


def _run_job(build, output_dir: str, class_map, source: str, clips_per_shard: int,
             features: examples.Features, frames_per_clip, launcher_skips, beam_args,
             local_workers: int, **extra) -> PrepareResult:
  """Runs the pipeline that `build(pipeline)` lays out into a directory beside output_dir
  and swaps it in when complete: a failing run leaves the previous output as it was, and a
  second run into the same output stops with files.OutputLocked."""
  with files.output_lock(output_dir), files.staged(output_dir, local=False) as staging:
    write_class_map(class_map, os.path.join(staging, examples.CLASS_MAP))
    pipeline = beam_pipeline(beam_args, local_workers)
    _write(build(pipeline), staging, clips_per_shard)
    with worker_errors_as_data_errors():
      result = pipeline.run()
      result.wait_until_finish()
    for tmp in files.glob(os.path.join(staging, "beam-temp-*")):
      files.remove(tmp)
    layout = shard_writer.publish(staging, examples.SHARD_PREFIX)
    num_clips = counter(result, "clips_written")
    skips = _collect_skips(staging, launcher_skips)
    clips_id = provenance.clip_set_id_from(num_clips, _collect_hash(staging))
    if num_clips == 0:
      report = files.sibling(output_dir, "skipped") + ".csv"
      files.copy(os.path.join(staging, SKIP_REPORT), report)
      raise DataError(source, f"no clip could be prepared: all {len(skips)} were skipped "
                      f"(reasons in {report}); nothing was written to {output_dir}")
    examples.write_manifest(staging, num_clips, len(class_map), features, frames_per_clip,
                            num_skipped=len(skips), clips_id=clips_id,
                            frames_written=counter(result, "frames_written"),
                            class_map_id=provenance.class_map_id(class_map.mids),
                            source=source, shard_layout=layout, **extra)
    files.publish_directory(staging, output_dir, last=examples.MANIFEST)
  return PrepareResult(output_dir, num_clips, skips)


def prepare_audio(segments_csv: str, audio_dir: str, class_map_csv: str, output_dir: str, *,
                  clip_seconds: float = 10.0, clips_per_shard: int = CLIPS_PER_SHARD,
                  skip_bad_clips: bool = False, beam_args: Sequence[str] = (),
                  local_workers: int = 1, params: FrontendParams = DEFAULT_FRONTEND,
                  feature_storage: str = examples.FLOAT32) -> PrepareResult:
  """Segments CSV + audio folder -> log-mel example shards in output_dir. feature_storage:
  float32 or float16 (examples.py)."""
  if feature_storage not in (examples.FLOAT32, examples.FLOAT16):
    raise errors.BadValue(f"log-mel features are stored as float32 or float16, not "
                     f"{feature_storage!r}")
  output_paths.check_directory(output_dir, examples.OUTPUT)
  class_map = read_class_map(class_map_csv)
  segments, bad_rows = read_segments(segments_csv, class_map, skip_bad_rows=skip_bad_clips)
  launcher_skips = [Skip(segments_csv, row, "", problem) for row, problem in bad_rows]
  items, audio = [], audio_files(audio_dir)
  for s in segments:
    path = audio.get(s.clip_id)
    if path is None:
      problem = (f"no audio file {s.clip_id}{{{','.join(AUDIO_EXTENSIONS)}}} in {audio_dir}")
      if not skip_bad_clips:
        raise DataError(segments_csv, problem, row=s.row)
      launcher_skips.append(Skip(segments_csv, s.row, s.clip_id, "missing audio: " + problem))
      continue
    items.append(dict(path=path, csv=segments_csv, row=s.row, clip_id=s.clip_id,
                      positives=s.positives, negatives=s.explicit_negatives))
  if not items:
    raise DataError(segments_csv, "no clips left to prepare")
  clip_samples = int(round(clip_seconds * params.sample_rate)) if clip_seconds else None
  frames = params.num_frames(clip_samples) if clip_samples else None

  def build(pipeline):
    return (pipeline
            | "Clips" >> beam.Create(items, reshuffle=True)
            | "LogMel" >> beam.ParDo(_LogMelFn(params, clip_samples, skip_bad_clips, len(items),
                                               feature_storage))
            .with_outputs(SKIPPED, HASHES, main="ok"))

  return _run_job(build, output_dir, class_map, files.absolute(segments_csv),
                  clips_per_shard,
                  examples.Features(examples.LOG_MEL, params.mel_bands, params), frames,
                  launcher_skips, beam_args, local_workers, clip_seconds=clip_seconds,
                  audio_dir=files.absolute(audio_dir), feature_storage=feature_storage)


def prepare_embeddings(tfrecord_pattern: str, class_map_csv: str, output_dir: str, *,
                       clips_per_shard: int = CLIPS_PER_SHARD, skip_bad_clips: bool = False,
                       beam_args: Sequence[str] = (), local_workers: int = 1,
                       feature_storage: str = examples.UINT8) -> PrepareResult:
  """AudioSet embedding TFRecords (a glob) -> [10, 128] example shards in output_dir,
  stored by default as the released uint8 codes (lossless; examples.py)."""
  if feature_storage not in examples.STORAGES:
    raise errors.BadValue(f"feature storage must be one of {examples.STORAGES}, not "
                     f"{feature_storage!r}")
  output_paths.check_directory(output_dir, examples.OUTPUT)
  class_map = read_class_map(class_map_csv)
  inputs = files.glob(tfrecord_pattern)
  if not inputs:
    raise DataError(tfrecord_pattern, "no files match this pattern")

  def build(pipeline):
    return (pipeline
            | "Files" >> beam.Create(inputs)
            | "Read" >> beam.io.tfrecordio.ReadAllFromTFRecord(with_filename=True)
            | "Embeddings" >> beam.ParDo(_EmbeddingFn(len(class_map), skip_bad_clips,
                                                      feature_storage))
            .with_outputs(SKIPPED, HASHES, main="ok"))

  features = examples.Features(examples.EMBEDDING, audioset_embeddings.EMBEDDING_DIMS,
                               embedding_frames=audioset_embeddings.SECONDS_PER_CLIP)
  return _run_job(build, output_dir, class_map, files.absolute(tfrecord_pattern),
                  clips_per_shard, features, audioset_embeddings.SECONDS_PER_CLIP,
                  [], beam_args, local_workers, feature_storage=feature_storage)


def source_audio(train_examples: str, max_files: int = 1000, seed: int = 0) -> list:
  """Up to max_files audio files of the clips a train examples directory was prepared from
  (its manifest names the segments CSV and the audio folder), in random order; [] for
  examples prepared from embeddings. Only train clips: eval audio often shares the folder."""
  info = examples.read_info(train_examples)
  audio_dir, source = info.extra.get("audio_dir"), info.extra.get("source")
  if not audio_dir or not source:
    return []
  segments, _ = read_segments(source, info.class_map, skip_bad_rows=True)
  ids = [s.clip_id for s in segments]
  random.Random(seed).shuffle(ids)
  audio = audio_files(audio_dir)
  return [audio[i] for i in ids if i in audio][:max_files]
