"""Every file the package reads or writes outside Beam's own sources and sinks goes through
here, on tf.io.gfile: a path may be local or a URL (gs://, s3:// through tensorflow-io,
hdfs://, TensorFlow's in-memory ram:// in tests), so a job can run on Dataflow with all its
data in a bucket. Beam reads and writes shards through its own FileSystems, which know the
same cloud schemes.

Outputs appear whole: `atomic_write` writes a temporary name and renames it. On object stores
a rename is a copy, so what marks a directory complete is its manifest, always written last.
"""

import contextlib
import json
import os
import re
import shutil
import tempfile

import tensorflow as tf
import tensorflow_io  # noqa: F401  (registers s3://, az:// and http:// with tf.io.gfile)

_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


def is_url(path: str) -> bool:
  return bool(_URL.match(path))


def absolute(path: str) -> str:
  """An absolute local path, or the URL unchanged (os.path.abspath would mangle it)."""
  return path if is_url(path) else os.path.abspath(path)


def exists(path: str) -> bool:
  return tf.io.gfile.exists(path)


def isdir(path: str) -> bool:
  return tf.io.gfile.isdir(path)


def makedirs(path: str) -> None:
  tf.io.gfile.makedirs(path)


def glob(pattern: str) -> list:
  """Sorted matches (tf.io.gfile.glob's order is unspecified)."""
  return sorted(tf.io.gfile.glob(pattern))


def size(path: str) -> int:
  return tf.io.gfile.stat(path).length


def names(pattern: str) -> list:
  """Sorted base names of the files matching a glob pattern, from one listing."""
  return [os.path.basename(p) for p in glob(pattern)]


def listdir(path: str) -> list:
  return sorted(name.rstrip("/") for name in tf.io.gfile.listdir(path))


def remove(path: str) -> None:
  """Removes a file or a directory tree, if it exists."""
  if tf.io.gfile.isdir(path):
    tf.io.gfile.rmtree(path)
  elif tf.io.gfile.exists(path):
    tf.io.gfile.remove(path)


def rename(src: str, dst: str) -> None:
  tf.io.gfile.rename(src, dst, overwrite=True)


def open(path: str, mode: str = "r"):  # noqa: A001  (the module's namesake of builtins.open)
  """A file object for path; text modes read and write UTF-8 without newline translation."""
  return tf.io.gfile.GFile(path, mode)


@contextlib.contextmanager
def atomic_write(path: str, mode: str = "w"):
  """Yields a file object; on success the written file replaces `path` in one rename."""
  tmp = path + ".tmp"
  try:
    with open(tmp, mode) as f:
      yield f
  except BaseException:
    remove(tmp)
    raise
  rename(tmp, path)


def write_bytes(path: str, data: bytes) -> None:
  with atomic_write(path, "wb") as f:
    f.write(data)


@contextlib.contextmanager
def local_output(path: str):
  """Yields a local file name for writers that need one (numpy's savez, matplotlib); on
  success its content becomes `path`, whole: renamed when path is local, copied to a URL."""
  suffix = os.path.splitext(path)[1]  # some writers append an extension they do not see
  if is_url(path):
    fd, tmp = tempfile.mkstemp(suffix=suffix)
    os.close(fd)
  else:
    tmp = path + ".tmp" + suffix
  try:
    yield tmp
    if is_url(path):
      copy(tmp, path)
    else:
      os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def save_figure(fig, path: str, **kwargs) -> None:
  """matplotlib's savefig to any path, whole or not at all."""
  with local_output(path) as tmp:
    fig.savefig(tmp, **kwargs)


def write_json(path: str, obj, **kwargs) -> None:
  with atomic_write(path) as f:
    json.dump(obj, f, indent=2, **kwargs)


def read_json(path: str):
  with open(path) as f:
    return json.load(f)


def copy(src: str, dst: str) -> None:
  tf.io.gfile.copy(src, dst, overwrite=True)


def staging_directory(out_dir: str) -> str:
  """Where to build a directory output before `publish_directory`: beside it when local (so
  publishing is one rename), else a local temporary directory."""
  if is_url(out_dir):
    return tempfile.mkdtemp(prefix="tf_skeptical_")
  staging = out_dir.rstrip("/") + ".tmp"
  remove(staging)
  makedirs(staging)
  return staging


def publish_directory(staging: str, out_dir: str, last: str) -> None:
  """Replaces out_dir with the complete staging directory. Locally that is one rename; to a
  URL the files are copied with `last` (the directory's manifest) copied last."""
  remove(out_dir)
  if not is_url(out_dir):
    os.replace(staging, out_dir)
    return
  paths = [os.path.join(root, name) for root, _, names in os.walk(staging) for name in names]
  for path in sorted(paths, key=lambda p: os.path.relpath(p, staging) == last):
    target = out_dir.rstrip("/") + "/" + os.path.relpath(path, staging).replace(os.sep, "/")
    makedirs(os.path.dirname(target))
    copy(path, target)
  shutil.rmtree(staging, ignore_errors=True)
