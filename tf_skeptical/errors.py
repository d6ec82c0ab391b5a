"""Which failures are the user's to fix, and their one-line messages.

A known failure (bad data, mismatched artifacts, a lock, a flag out of range, a full disk,
a truncated file, or one of these in a worker process) has a message that says what,
which file and what to do; anything else is a bug and keeps its traceback. The binaries
print the message as `<binary>: error: <message>` (bin/cli.py).
"""

import errno
import re
from typing import Optional


class UserError(Exception):
  """A failure the user can act on, raised on purpose: its message says what, which file
  and what to do. Every error type of the package that a user can cause derives from it,
  and only these (and the file-system failures below) are reported as one line."""


class BadValue(UserError, ValueError):
  """A setting, argument or combination of them that cannot work."""


class Failed(UserError, RuntimeError):
  """A stage that ran and did not produce what it must (lost clips, a failed export
  check): its message names the output and what was kept."""


class RunFailed(UserError, RuntimeError):
  """A call in a worker process (side_by_side.py) failed with a known error; the message
  is that error's one line."""


def tf_error_text(error) -> str:
  """The first line of a TensorFlow error, without its {{function_node ...}} prefix."""
  text = getattr(error, "message", str(error)).strip().splitlines()[0]
  text = re.sub(r"\s*\[Condition [^\]]*\]", "", text)  # an assertion's internal condition
  return re.sub(r"\{\{[^}]*\}\}\s*", "", text)


def _full_disk(error: BaseException) -> Optional[str]:
  """The message for a write that found the disk full, however it was wrapped (an OSError,
  TensorFlow's ResourceExhaustedError, or either inside a Beam worker's RuntimeError)."""
  if isinstance(error, OSError) and error.errno == errno.ENOSPC:
    where = error.filename or "an output"
  else:
    found = re.search(r"(\S+); No space left on device", str(error))
    if not found and "No space left on device" not in str(error):
      return None
    where = found.group(1) if found else "an output"
  where = re.sub(r"(^|/)\.tmp\.([^/]+)(/.*)?$", r"\1\2", where)  # the output, not its staging
  return (f"no space left on the device writing {where}: free some space and run again "
          "(the run's partial output was removed; any previous output is as it was)")


# What a user does about each file-system failure.
_FILE_ERRORS = {
    errno.ENOENT: "no such file or directory: check the path",
    errno.EACCES: "permission denied: choose a location you can read and write, or change "
                  "its permissions",
    errno.EPERM: "operation not permitted: choose a location you can write",
    errno.EROFS: "read-only file system: choose a writable location",
    errno.ENOTDIR: "a part of the path is a file, not a directory: check the path",
    errno.EISDIR: "is a directory where a file was expected: check the path",
    errno.EEXIST: "already exists: remove it or choose another path",
}
# TensorFlow's file errors, by the words their messages carry.
_TF_FILE_WORDS = (("Read-only file system", errno.EROFS), ("Permission denied", errno.EACCES),
                  ("Not a directory", errno.ENOTDIR), ("Is a directory", errno.EISDIR),
                  ("No such file or directory", errno.ENOENT), ("not found", errno.ENOENT))


def _file_error(error: BaseException) -> Optional[str]:
  """One line for a file-system failure, named by its path: an OSError, one of
  TensorFlow's file errors (NotFound, PermissionDenied, FailedPrecondition, AlreadyExists),
  or either as text inside a Beam worker's error."""
  import tensorflow as tf
  if isinstance(error, OSError) and error.errno in _FILE_ERRORS:
    where = error.filename or "a file"
    return f"{where}: {_FILE_ERRORS[error.errno]}"
  text = None
  if isinstance(error, (tf.errors.NotFoundError, tf.errors.PermissionDeniedError,
                        tf.errors.FailedPreconditionError, tf.errors.AlreadyExistsError)):
    text = tf_error_text(error)
  else:
    found = re.search(r"(?:OSError|PermissionError|FileNotFoundError|NotADirectoryError|"
                      r"IsADirectoryError): \[Errno (\d+)\] [^:\n]*: '([^'\n]+)'", str(error))
    if found and int(found.group(1)) in _FILE_ERRORS:
      return f"{found.group(2)}: {_FILE_ERRORS[int(found.group(1))]}"
    return None
  for words, code in _TF_FILE_WORDS:
    if words.lower() in text.lower():
      return f"{text.rstrip('.')}: {_FILE_ERRORS[code].split(': ', 1)[1]}"
  return f"{text}: check the path and its permissions"


def known_error(error: BaseException) -> Optional[str]:
  """The one-line message for a failure the user can act on, or None (a bug: keep the
  traceback)."""
  import tensorflow as tf
  from absl import flags
  if isinstance(error, (UserError, flags.Error)):
    return str(error)
  full = _full_disk(error)
  if full:
    return full
  file_error = _file_error(error)
  if file_error:
    return file_error
  if isinstance(error, tf.errors.OpError):
    text = tf_error_text(error)
    if isinstance(error, tf.errors.DataLossError):
      return (f"a TFRecord file is truncated or corrupt ({text}): copy it again, or write "
              "it again with the stage that made it")
    if isinstance(error, tf.errors.InvalidArgumentError) and "teacher score" in text:
      return text
  return None
