"""Holding back what native code prints. The TFLite converter and LiteRT's interpreter write
progress lines straight to the process's stdout and stderr from C++ ("fully_quantize: 0,
inference_type: 6, ...", "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."), where
TF_CPP_MIN_LOG_LEVEL does not reach them. `held_native_output` sends file descriptors 1
and 2 to a temporary file for the duration of a block, and shows what was held only when
the block fails, so that the error comes with the converter's own account of it.

It holds output only when TensorFlow's C++ logging is turned down (TF_CPP_MIN_LOG_LEVEL set
and not 0, which the binaries do unless -v is given): a library user who has not asked for
quiet sees what TensorFlow would show them.
"""

import contextlib
import os
import sys
import tempfile

_STREAMS = (1, 2)


def holding() -> bool:
  """Whether native output is held: TensorFlow's C++ log level says quiet."""
  return os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0").strip() not in ("", "0")


def _flush() -> None:
  for stream in (sys.stdout, sys.stderr):
    try:
      stream.flush()
    except (AttributeError, ValueError):  # replaced or closed by a caller: nothing buffered
      pass


@contextlib.contextmanager
def held_native_output():
  """Within the block, fds 1 and 2 write to a temporary file; on an exception, what was held
  is written to stderr before the exception goes on. Python's own writes in the block are
  held too (they go to the same descriptors), so call it around native work only."""
  if not holding():
    yield
    return
  _flush()
  saved = {fd: os.dup(fd) for fd in _STREAMS}
  with tempfile.TemporaryFile() as held:
    try:
      for fd in _STREAMS:
        os.dup2(held.fileno(), fd)
      try:
        yield
      finally:
        _flush()
        for fd, copy in saved.items():
          os.dup2(copy, fd)
    except BaseException:
      held.seek(0)
      text = held.read().decode("utf-8", errors="replace")
      if text:
        sys.stderr.write(text if text.endswith("\n") else text + "\n")
        _flush()
      raise
    finally:
      for copy in saved.values():
        os.close(copy)
