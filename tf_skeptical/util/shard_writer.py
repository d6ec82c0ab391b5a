"""TFRecord shards from a Beam PCollection in bounded memory: no GroupByKey.

Beam's WriteToTFRecord with a fixed shard count groups every record by shard key first,
and the local runner holds a GroupByKey's whole input in memory: the whole dataset (at
AudioSet's size, hundreds of GB of examples or 4 GB of scores). Here each bundle writes its
records straight to files of at most `records_per_shard`, under temporary names, and emits
a file's name (and record count) only once it is closed. After the pipeline, `publish`
renames the emitted files `<prefix>-00000-of-000NN.tfrecord`, deletes any other temporary
file (a retried bundle's partial output is never emitted, so it is never published) and
returns each shard's record count and size, which the manifest records: examples.check_layout
then refuses a shard that was truncated or changed since (a partial copy), naming it.
"""

import os
import uuid
from typing import Dict

import apache_beam as beam
import tensorflow as tf
from apache_beam.transforms import window
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue

from tf_skeptical.util import files

_TMP = ".part-"
NAMES = "shard_names"


class _WriteShards(beam.DoFn):

  def __init__(self, directory: str, records_per_shard: int):
    self.directory, self.records_per_shard = directory, records_per_shard

  def start_bundle(self):
    self._writer, self._path, self._count = None, None, 0

  def _close(self):
    self._writer.close()
    path, self._writer = self._path, None
    return f"{path}\t{self._count}"

  def process(self, record: bytes):
    if self._writer is None:
      self._path = os.path.join(self.directory, f"{_TMP}{uuid.uuid4().hex}.tfrecord")
      self._writer, self._count = tf.io.TFRecordWriter(self._path), 0
    self._writer.write(record)
    self._count += 1
    if self._count >= self.records_per_shard:
      yield self._close()

  def finish_bundle(self):
    if self._writer is not None:
      yield WindowedValue(self._close(), MIN_TIMESTAMP, [window.GlobalWindow()])


class WriteShards(beam.PTransform):
  """records (bytes) -> shard files in `directory`; their names go to a small text output
  that `publish` reads after the pipeline has run."""

  def __init__(self, directory: str, records_per_shard: int = 10_000):
    super().__init__()
    self.directory, self.records_per_shard = directory, records_per_shard

  def expand(self, records):
    return (records
            | "WriteShardFiles" >> beam.ParDo(_WriteShards(self.directory,
                                                           self.records_per_shard))
            | "ShardNames" >> beam.io.WriteToText(os.path.join(self.directory, NAMES),
                                                  shard_name_template=""))


def publish(directory: str, prefix: str) -> Dict[str, dict]:
  """Renames the shards the pipeline emitted to `<prefix>-NNNNN-of-NNNNN.tfrecord` and
  removes every unpublished temporary file; returns {shard name: {"records", "bytes"}}, in
  order (the layout a manifest records)."""
  names_file = os.path.join(directory, NAMES)
  with files.open(names_file) as f:
    written = sorted(line.strip().split("\t") for line in f if line.strip())
  files.remove(names_file)
  out = {}
  for i, (path, records) in enumerate(written):
    name = f"{prefix}-{i:05d}-of-{len(written):05d}.tfrecord"
    target = os.path.join(directory, name)
    files.rename(path, target)
    out[name] = dict(records=int(records), bytes=files.size(target))
  for leftover in files.glob(os.path.join(directory, _TMP + "*")):
    files.remove(leftover)
  return out

