"""Runs side by side: worker processes with their thread budget, results in order, and
failures that keep telling a known error (one line) from a bug (its traceback)."""

import os

import pytest

from tf_skeptical import errors, side_by_side
from tf_skeptical.util.bad_input import DataError


def where_and_threads(tag):
  """(tag, this process's id, its TensorFlow intra-op threads): what a worker reports."""
  import tensorflow as tf
  return tag, os.getpid(), tf.config.threading.get_intra_op_parallelism_threads()


def bad_data():
  raise DataError("clips.csv", "no such audio file 'a.wav'", 3)  # its pickle would not load


def bug():
  return {}["missing"]


def test_workers_are_other_processes_with_their_share_of_the_cores():
  with side_by_side.Runner(2) as runner:
    futures = [runner.submit(where_and_threads, i, name=f"call {i}") for i in range(4)]
    results = [f.result() for f in futures]
  assert [r[0] for r in results] == [0, 1, 2, 3]  # in the order submitted
  pids = {r[1] for r in results}
  assert os.getpid() not in pids and 1 <= len(pids) <= 2
  assert {r[2] for r in results} == {max(1, side_by_side.cores() // 2)}


def test_one_job_runs_each_call_here_when_submitted():
  with side_by_side.Runner(1) as runner:
    future = runner.submit(where_and_threads, "x")
    assert future.done()  # before the context ends
  assert future.result()[:2] == ("x", os.getpid())


def test_a_known_error_in_a_worker_stays_one_line():
  with side_by_side.Runner(2) as runner:
    future = runner.submit(bad_data)
    with pytest.raises(errors.RunFailed) as raised:
      future.result()
  assert str(raised.value) == "clips.csv, row 3: no such audio file 'a.wav'"
  assert errors.known_error(raised.value) == str(raised.value)


def test_a_bug_in_a_worker_keeps_its_traceback():
  with side_by_side.Runner(2) as runner:
    future = runner.submit(bug)
    with pytest.raises(RuntimeError) as raised:
      future.result()
  text = str(raised.value)
  assert "KeyError: 'missing'" in text and "in bug" in text  # the worker's own frames
  assert errors.known_error(raised.value) is None


def test_auto_jobs_leaves_distribution_strategies_alone():
  assert side_by_side.auto_jobs("mirrored") == side_by_side.auto_jobs("multi_worker") == 1
  assert 1 <= side_by_side.auto_jobs() <= min(side_by_side.cores(), side_by_side.MAX_AUTO_JOBS)
