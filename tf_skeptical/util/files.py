"""Every file the package reads or writes outside Beam's own sources and sinks goes through
here, on tf.io.gfile: a path may be local or a URL (gs://, s3:// through tensorflow-io,
hdfs://, TensorFlow's in-memory ram:// in tests), so a job can run on Dataflow with all its
data in a bucket. Beam reads and writes shards through its own FileSystems, which know the
same cloud schemes.

Outputs appear whole: `atomic_write` writes a temporary name and renames it. On object stores
a rename is a copy, so what marks a directory complete is its manifest, always written last.
A directory output is built beside its target (`staging_directory`) and swapped in only when
complete (`publish_directory`), so a failing run leaves the previous output as it was; one
writer at a time holds the target's lock (`output_lock`).
"""

import contextlib
import json
import os
import re
import socket
import tempfile

import tensorflow as tf
import tensorflow_io  # noqa: F401  (registers s3://, az:// and http:// with tf.io.gfile)

from tf_skeptical.errors import UserError
from tf_skeptical.util import stopping

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
  try:
    if tf.io.gfile.isdir(path):
      tf.io.gfile.rmtree(path)
    elif tf.io.gfile.exists(path):
      tf.io.gfile.remove(path)
  except tf.errors.NotFoundError:  # prefix-based stores can call a bare prefix a directory
    pass


def sibling(path: str, kind: str) -> str:
  """A name beside `path` for its staging directory, lock or old copy: `.<kind>.<name>`.
  Not `<name>.<kind>`: on stores where a directory is a name prefix (ram://, and object
  stores without a trailing slash), removing `<name>` would take `<name>.<kind>` with it."""
  head, name = os.path.split(path.rstrip("/"))
  return os.path.join(head, f".{kind}.{name}")


def rename(src: str, dst: str) -> None:
  tf.io.gfile.rename(src, dst, overwrite=True)


def open(path: str, mode: str = "r"):  # noqa: A001  (the module's namesake of builtins.open)
  """A file object for path; text modes read and write UTF-8 without newline translation."""
  return tf.io.gfile.GFile(path, mode)


def text_lines(path: str):
  """The lines of a UTF-8 text file, without the byte-order mark that spreadsheet programs
  put first (it would otherwise stick to the first header or clip id)."""
  with open(path) as f:
    for i, line in enumerate(f):
      yield line.lstrip("\ufeff") if i == 0 else line


@contextlib.contextmanager
def atomic_write(path: str, mode: str = "w"):
  """Yields a file object; on success the written file replaces `path` in one rename."""
  tmp = path + ".tmp"
  with stopping.removed_on_stop(tmp, remove):
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


def read_bytes(path: str) -> bytes:
  with open(path, "rb") as f:
    return f.read()


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
    with stopping.removed_on_stop(tmp, _remove_local):
      yield tmp
    if is_url(path):
      copy(tmp, path)
    else:
      os.replace(tmp, path)
  finally:
    _remove_local(tmp)


def _remove_local(path: str) -> None:
  if os.path.exists(path):
    os.remove(path)


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


def staging_directory(out_dir: str, local: bool = True) -> str:
  """Where to build a directory output before `publish_directory`: beside it (so that
  publishing a local output is one rename), or, for a URL target with local=True, a local
  temporary directory (for writers that need local files). A Beam job's workers write to
  the staging directory themselves, so it asks local=False and gets `.tmp.<name>` beside
  the output, even on a bucket."""
  if is_url(out_dir) and local:
    return tempfile.mkdtemp(prefix="tf_skeptical_")
  staging = sibling(out_dir, "tmp")
  remove(staging)
  makedirs(staging)
  return staging


@contextlib.contextmanager
def staged(out_dir: str, local: bool = True):
  """Yields a staging directory (staging_directory) for out_dir, and removes it if the block
  fails, so that a failed run leaves nothing behind (a full disk stays no fuller) and the
  previous output untouched. Publish it with publish_directory inside the block."""
  staging = staging_directory(out_dir, local)
  with stopping.removed_on_stop(staging, remove):
    try:
      yield staging
    except BaseException:
      remove(staging)
      raise


def publish_directory(staging: str, out_dir: str, last: str) -> None:
  """Replaces out_dir with the complete staging directory. Locally the old output is moved
  aside, the new one renamed into place, and then the old one removed; to a URL the files
  are moved (or copied from a local staging directory) with `last`, the directory's
  manifest, last. A stop (stopping.py) waits for it to finish."""
  with stopping.critical():
    _publish_directory(staging, out_dir, last)


def _publish_directory(staging: str, out_dir: str, last: str) -> None:
  if not is_url(out_dir):
    old = sibling(out_dir, "old")
    remove(old)
    if os.path.exists(out_dir):
      os.replace(out_dir, old)
    os.replace(staging, out_dir)
    remove(old)
    return
  remove(out_dir)
  if is_url(staging):
    paths = [f"{root.rstrip('/')}/{name}" for root, _, names in tf.io.gfile.walk(staging)
             for name in names]
    relative = lambda p: p[len(staging.rstrip("/")) + 1:]
    move = rename
  else:
    paths = [os.path.join(root, name) for root, _, names in os.walk(staging) for name in names]
    relative = lambda p: os.path.relpath(p, staging).replace(os.sep, "/")
    move = copy
  for path in sorted(paths, key=lambda p: relative(p) == last):
    target = out_dir.rstrip("/") + "/" + relative(path)
    makedirs(os.path.dirname(target))
    move(path, target)
  remove(staging)


class OutputLocked(UserError, RuntimeError):
  """Another run is writing the same output."""


def _process_alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True
  return True


@contextlib.contextmanager
def output_lock(out: str):
  """Holds `<out>.lock` while a run writes `out`: a second writer gets OutputLocked instead
  of a race. A lock left by a process that died on this host is taken over. On a URL the
  check and the write are two requests, so the lock there is best effort."""
  path = sibling(out, "lock")
  owner = f"{os.getpid()}@{socket.gethostname()}"
  for _ in range(2):
    if is_url(path):
      held = exists(path)
      if not held:
        with open(path, "w") as f:
          f.write(owner)
    else:
      makedirs(os.path.dirname(os.path.abspath(path)))
      try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        with open(path, "w") as f:
          f.write(owner)
        held = False
      except FileExistsError:
        held = True
    if not held:
      break
    with open(path) as f:
      other = f.read().strip()
    pid, _, host = other.partition("@")
    if host == socket.gethostname() and pid.isdigit() and not _process_alive(int(pid)):
      remove(path)  # its writer died: take over
      continue
    raise OutputLocked(f"{out} is being written by process {other or '?'} (lock file {path}); "
                       "wait for that run to end, or remove the lock file if it is gone")
  try:
    with stopping.removed_on_stop(path, remove):  # ours now: a stop removes it
      yield
  finally:
    remove(path)
