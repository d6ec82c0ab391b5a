"""Stopping a binary with SIGTERM or SIGINT (Ctrl-C, `docker stop`, a cluster scheduler):
within seconds, its worker processes with it, nothing half-written left behind.

Python's own answer to SIGINT, KeyboardInterrupt, reaches only the main thread, and only
when it next runs Python code: a local Beam job's main thread waits in its worker threads'
joins and never gets there, and every worker process in the terminal's process group
raises one too and prints its traceback. SIGTERM's default ends the process at once and
leaves its staging directory, its lock and its worker processes behind.

So a binary calls `install()` first. The signal's only effect on the process is a byte on a
wakeup pipe; a watcher thread reads it and, whatever the main thread is doing:
1. kills every descendant process (Beam's SDK workers, the sweep's training workers),
2. waits for a publish in progress (`critical()`: the few renames that swap a complete
   output in) to finish, so the previous output or the new one is in place, never neither,
3. removes what was registered with `removed_on_stop` (staging directories, locks,
   temporary files),
4. says so in one line, `<binary>: stopped by SIGTERM ...`, and exits with 128 + the signal.
The main thread blocks both signals before it starts any worker, so processes it starts
inherit them blocked: a Ctrl-C reaches only this process, and its workers end by SIGKILL.

Library callers that never call install() get Python's usual behaviour; registering paths
costs them a set insertion.
"""

import contextlib
import os
import signal
import sys
import threading
import time
from typing import Callable, Optional

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_CRITICAL_WAIT_SECONDS = 30.0

_registered = {}  # path -> remover
_registry_lock = threading.Lock()
_critical = threading.RLock()
_installed = False


def install(binary: str) -> None:
  """Makes SIGTERM and SIGINT stop this process cleanly (the module's docstring). Call it
  from the main thread before any worker process starts."""
  global _installed
  if _installed or threading.current_thread() is not threading.main_thread():
    return
  read_end, write_end = os.pipe()
  os.set_blocking(write_end, False)
  for sig in STOP_SIGNALS:
    signal.signal(sig, lambda *_: None)  # the wakeup byte does the work
  signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
  watcher = threading.Thread(target=_watch, args=(read_end, binary), name="stop-watcher",
                             daemon=True)
  watcher.start()  # before the block below: this thread keeps the signals deliverable
  signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
  _installed = True


def _watch(read_end: int, binary: str) -> None:
  while True:
    data = os.read(read_end, 1)
    if data and data[0] in [int(s) for s in STOP_SIGNALS]:
      stop(data[0], binary)


def stop(signum: int, binary: str) -> None:
  """Kills the descendants, removes what is registered, says so and exits 128 + signum."""
  for stream in (sys.stdout, sys.stderr):
    try:
      stream.flush()
    except Exception:  # noqa: BLE001  (a best-effort cleanup must not keep the process up)
      pass
  # From here on the threads whose workers die would print their tracebacks: only this
  # function's line reaches the terminal.
  terminal = os.dup(2)
  silent = os.open(os.devnull, os.O_WRONLY)
  os.dup2(silent, 1)
  os.dup2(silent, 2)
  kill_descendants()
  got = _critical.acquire(timeout=_CRITICAL_WAIT_SECONDS)
  with _registry_lock:
    removers = list(_registered.items())
  for path, remover in removers:
    try:
      remover(path)
    except Exception:  # noqa: BLE001
      pass
  kill_descendants()  # any started while the first round was going
  what = ("partial outputs removed, earlier outputs as they were; the same command starts "
          "again (a training run from its last backup)" if got else
          "it was publishing an output: check that output")
  name = signal.Signals(signum).name
  os.write(terminal, f"{binary}: stopped by {name}: {what}\n".encode())
  os._exit(128 + signum)


def _children() -> dict:
  """{parent pid: [child pids]} of every process, read from /proc (Linux)."""
  tree = {}
  try:
    pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
  except OSError:
    return tree
  for pid in pids:
    try:
      with open(f"/proc/{pid}/stat", "rb") as f:
        stat = f.read()
    except OSError:
      continue
    fields = stat[stat.rfind(b")") + 2:].split()  # after the command name, which may hold ")"
    tree.setdefault(int(fields[1]), []).append(pid)
  return tree


def descendants(pid: Optional[int] = None) -> list:
  """Every process descended from pid (default: this one)."""
  tree, out, todo = _children(), [], [pid or os.getpid()]
  while todo:
    for child in tree.get(todo.pop(), []):
      out.append(child)
      todo.append(child)
  return out


def kill_descendants() -> None:
  """SIGKILL to every descendant, children first found, until none is left (new ones can
  appear while a pool replaces a dead worker) or a second has passed."""
  deadline = time.monotonic() + 1.0
  while True:
    found = descendants()
    if not found or time.monotonic() > deadline:
      return
    for pid in found:
      try:
        os.kill(pid, signal.SIGKILL)
      except OSError:
        pass
    time.sleep(0.02)


@contextlib.contextmanager
def removed_on_stop(path: str, remover: Callable[[str], None]):
  """Within the block, a stop removes `path` with remover(path) (files.remove, for a path
  that may be a URL or a directory)."""
  with _registry_lock:
    _registered[path] = remover
  try:
    yield path
  finally:
    with _registry_lock:
      _registered.pop(path, None)


@contextlib.contextmanager
def critical():
  """A stop waits for this block to end (the renames that put a complete output in place)."""
  with _critical:
    yield
