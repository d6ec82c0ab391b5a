"""A Beam FileSystem over TensorFlow's in-memory ram:// scheme, so a test can run whole Beam
jobs with every path a URL, as on Dataflow with gs://, in one process (FnApiRunner, one
worker). Beam finds it by its scheme once this module is imported."""

import tensorflow as tf
from apache_beam.io.filesystem import (CompressedFile, CompressionTypes, FileMetadata,
                                       FileSystem)

_BINARY = "application/octet-stream"


class RamFileSystem(FileSystem):

  @classmethod
  def scheme(cls):
    return "ram"

  def join(self, basepath, *paths):
    return "/".join([basepath.rstrip("/")] + [p.strip("/") for p in paths])

  def split(self, path):
    head, _, tail = path.rstrip("/").rpartition("/")
    return head, tail

  def mkdirs(self, path):
    tf.io.gfile.makedirs(path)

  def has_dirs(self):
    return True

  def _list(self, dir_or_prefix):
    if not tf.io.gfile.exists(dir_or_prefix):
      return
    for root, _, names in tf.io.gfile.walk(dir_or_prefix):
      for name in names:
        yield self.metadata(self.join(root, name))

  def _open(self, path, mode, compression_type):
    kind = FileSystem._get_compression_type(path, compression_type)
    f = tf.io.gfile.GFile(path, mode)
    return f if kind == CompressionTypes.UNCOMPRESSED else CompressedFile(f, kind)

  def create(self, path, mime_type=_BINARY, compression_type=CompressionTypes.AUTO):
    tf.io.gfile.makedirs(self.split(path)[0])
    f = self._open(path, "wb", compression_type)
    f.write(b"")  # GFile creates the file at its first write; Beam expects empty shards
    return f

  def open(self, path, mime_type=_BINARY, compression_type=CompressionTypes.AUTO):
    return self._open(path, "rb", compression_type)

  def copy(self, source_file_names, destination_file_names):
    for src, dst in zip(source_file_names, destination_file_names):
      tf.io.gfile.copy(src, dst, overwrite=True)

  def rename(self, source_file_names, destination_file_names):
    for src, dst in zip(source_file_names, destination_file_names):
      tf.io.gfile.rename(src, dst, overwrite=True)

  def exists(self, path):
    return tf.io.gfile.exists(path)

  def size(self, path):
    return tf.io.gfile.stat(path).length

  def last_updated(self, path):
    return tf.io.gfile.stat(path).mtime_nsec / 1e9

  def checksum(self, path):
    return str(self.size(path))

  def metadata(self, path):
    return FileMetadata(path, self.size(path), self.last_updated(path))

  def delete(self, paths):
    for path in paths:
      if tf.io.gfile.isdir(path):
        tf.io.gfile.rmtree(path)
      else:
        tf.io.gfile.remove(path)
