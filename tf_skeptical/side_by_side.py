"""Independent training runs side by side, in worker processes of a few threads each.

A small model on a CPU is bound by per-op overhead, not by FLOPs: on 2 cores, two
processes with one intra-op thread each train about 1.7x the patches per second of one
process with both threads (bench/training_speed.py measures it). A sweep's runs are
independent once their teacher's flags exist, so `Runner(jobs)` with jobs >= 2 trains them
in that many spawned processes (spawn, not fork: TensorFlow's runtime does not survive a
fork); jobs = 1 runs each one in this process when it is submitted.

A failure in a worker comes back as one exception: a known one (bad input, mismatched
artifacts, a lock: errors.known_error) as errors.RunFailed with its one-line message, anything
else with the worker's traceback in its message.
"""

import concurrent.futures
import multiprocessing
import os
import signal
import traceback
from typing import Callable, List

from absl import flags, logging

from tf_skeptical import errors

MAX_AUTO_JOBS = 4  # beyond this a run's input pipeline and memory matter more than threads


def cores() -> int:
  """The cores this process may run on (a container's share, not the host's)."""
  try:
    return len(os.sched_getaffinity(0))
  except AttributeError:  # not on Linux
    return os.cpu_count() or 1


def auto_jobs(strategy: str = "default") -> int:
  """Runs side by side when jobs = 0: one per core (at most MAX_AUTO_JOBS) on a CPU; one
  on an accelerator or with a distribution strategy, which want the devices to
  themselves."""
  if strategy != "default":
    return 1
  import tensorflow as tf  # only here: importing this module starts no TensorFlow
  if tf.config.list_physical_devices("GPU") or tf.config.list_physical_devices("TPU"):
    return 1
  return max(1, min(cores(), MAX_AUTO_JOBS))


def _start_worker(threads: int, verbosity: int) -> None:
  """A worker's first act: its signals (a terminal's Ctrl-C is the parent's to handle, which
  ends its workers: util/stopping.py; SIGTERM as usual, unblocked), its thread budget,
  before TensorFlow makes its thread pools, and the parent's log level (a spawned process
  parses no flags)."""
  signal.signal(signal.SIGINT, signal.SIG_IGN)
  signal.pthread_sigmask(signal.SIG_SETMASK, set())
  import tensorflow as tf
  tf.config.threading.set_intra_op_parallelism_threads(threads)
  tf.config.threading.set_inter_op_parallelism_threads(threads)
  flags.FLAGS.mark_as_parsed()
  logging.use_absl_handler()  # the parent's log format (a spawned process runs no app.run)
  logging.set_verbosity(verbosity)


def _call(fn: Callable, args: tuple):
  """fn(*args) in a worker, its failure made picklable and still telling known from not."""
  try:
    return fn(*args)
  except Exception as error:  # noqa: BLE001  (sorted into known and unexpected below)
    message = errors.known_error(error)
    if message is not None:
      raise errors.RunFailed(message) from None
    raise RuntimeError(f"a training run failed in its worker process:\n"
                       f"{traceback.format_exc()}") from None


class Runner:
  """Submits independent calls (training runs) and returns their futures.

  jobs >= 2: a pool of that many spawned worker processes, each with cores // jobs threads;
  calls start in the order submitted. jobs = 1: each call runs in this process when
  submitted, and its future is already done. Use as a context manager: leaving it waits
  for every call and stops the workers (cancelling what has not started, on an error).
  """

  def __init__(self, jobs: int = 1):
    self.jobs = max(1, jobs)
    self.threads = max(1, cores() // self.jobs)
    self._pool = None
    self.submitted: List[concurrent.futures.Future] = []

  @property
  def parallel(self) -> bool:
    return self.jobs > 1

  def __enter__(self):
    if self.parallel:
      self._pool = concurrent.futures.ProcessPoolExecutor(
          self.jobs, mp_context=multiprocessing.get_context("spawn"),
          initializer=_start_worker, initargs=(self.threads, logging.get_verbosity()))
      logging.info("training runs side by side: %d worker processes of %d thread(s)",
                   self.jobs, self.threads)
    return self

  def __exit__(self, kind, value, tb):
    if self._pool is not None:
      self._pool.shutdown(wait=True, cancel_futures=kind is not None)
      self._pool = None
    return False

  def submit(self, fn: Callable, *args, name: str = "") -> concurrent.futures.Future:
    """fn(*args), now (jobs = 1) or on the next free worker; side by side, the run named
    `name` logs when it is done, with how many of those submitted are."""
    if self._pool is None:
      future = concurrent.futures.Future()
      future.set_result(fn(*args))
      self.submitted.append(future)
      return future
    future = self._pool.submit(_call, fn, args)
    self.submitted.append(future)
    future.add_done_callback(lambda f: self._done(f, name))
    return future

  def _done(self, future: concurrent.futures.Future, name: str) -> None:
    if future.cancelled() or future.exception() is not None:
      return
    done = sum(f.done() for f in self.submitted)
    logging.info("done: %s (%d of %d runs submitted)", name or "a run", done,
                 len(self.submitted))
