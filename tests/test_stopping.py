"""SIGTERM and SIGINT stop a binary within seconds: its worker processes with it, no
staging directory or lock left, the previous output byte-identical, one line on stderr and
exit status 128 + the signal. Tested on the Beam jobs (score, prepare) and on training."""

import os
import signal
import subprocess
import time

import pytest

from conftest import TINY, snapshot_tree
from tf_skeptical.datasets import builtin_data
from tf_skeptical.util import stopping

pytestmark = pytest.mark.end_to_end

ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")


def wait_for(condition, timeout, what):
  deadline = time.monotonic() + timeout
  while not condition():
    if time.monotonic() > deadline:
      raise AssertionError(f"timed out waiting for {what}")
    time.sleep(0.1)


def alive(pid):
  try:
    with open(f"/proc/{pid}/stat") as f:
      return f.read().split(")")[-1].split()[0] != "Z"
  except OSError:
    return False


def stop_while_running(cmd, cwd, sig, started, group=False):
  """Starts cmd, waits until started(its pid) (its staging directory and workers exist),
  sends sig (to the whole process group with group=True, as a terminal's Ctrl-C does),
  and returns (exit status, stderr, seconds to exit, the descendants it had)."""
  proc = subprocess.Popen(cmd, cwd=cwd, env=ENV, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, start_new_session=group)
  try:
    wait_for(lambda: started(proc.pid) or proc.poll() is not None, 240, "the job to start")
    assert proc.poll() is None, proc.stderr.read()
    workers = stopping.descendants(proc.pid)
    sent = time.monotonic()
    if group:
      os.killpg(proc.pid, sig)
    else:
      proc.send_signal(sig)
    status = proc.wait(timeout=30)
    seconds = time.monotonic() - sent
    return status, proc.stderr.read(), seconds, workers
  finally:
    if proc.poll() is None:
      proc.kill()


def assert_stopped_cleanly(status, stderr, seconds, workers, sig, binary):
  assert status == 128 + sig, stderr
  lines = stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith(
      f"{binary}: stopped by {signal.Signals(sig).name}"), stderr
  assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
  assert seconds < 10
  time.sleep(0.5)
  assert not [pid for pid in workers if alive(pid)], "worker processes outlived the binary"


def job_running(staging, workers):
  """started() for a Beam job: its staging directory and its worker processes exist."""
  return lambda pid: staging.exists() and len(stopping.descendants(pid)) >= workers


def leftovers(directory):
  return sorted(n for n in os.listdir(directory) if n.startswith((".tmp.", ".lock.", ".old.")))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stopping_score_keeps_the_previous_scores(tiny_teacher, tiny_examples, tmp_path, sig):
  model_dir, _ = tiny_teacher
  train_dir, _ = tiny_examples
  cmd = ["tfsk_score", f"--examples={train_dir}", f"--model={model_dir}",
         "--output_dir=scores", "--local_workers=4"]
  subprocess.run(cmd, cwd=tmp_path, env=ENV, check=True, capture_output=True)
  before = snapshot_tree(tmp_path / "scores")
  staging = tmp_path / ".tmp.scores"
  status, stderr, seconds, workers = stop_while_running(
      cmd, tmp_path, sig, job_running(staging, 4))
  assert workers, "the job had no worker processes when it was stopped"
  assert_stopped_cleanly(status, stderr, seconds, workers, sig, "tfsk_score")
  assert leftovers(tmp_path) == []
  assert snapshot_tree(tmp_path / "scores") == before


def test_ctrl_c_in_a_terminal_prints_one_line(tiny_teacher, tiny_examples, tmp_path):
  """A terminal's Ctrl-C reaches the whole foreground group, the Beam workers too: only the
  binary's line is printed, none of the workers' KeyboardInterrupt tracebacks."""
  model_dir, _ = tiny_teacher
  train_dir, _ = tiny_examples
  cmd = ["tfsk_score", f"--examples={train_dir}", f"--model={model_dir}",
         "--output_dir=scores", "--local_workers=4"]
  staging = tmp_path / ".tmp.scores"
  status, stderr, seconds, workers = stop_while_running(
      cmd, tmp_path, signal.SIGINT, job_running(staging, 4),
      group=True)
  assert_stopped_cleanly(status, stderr, seconds, workers, signal.SIGINT, "tfsk_score")
  assert leftovers(tmp_path) == [] and not (tmp_path / "scores").exists()


def test_stopping_prepare_leaves_nothing(tiny_data, tmp_path):
  data, _ = tiny_data
  cmd = ["tfsk_prepare", f"--segments={os.path.join(data, builtin_data.TRAIN_SEGMENTS)}",
         f"--audio_dir={os.path.join(data, builtin_data.AUDIO_DIR)}",
         f"--class_map={os.path.join(data, builtin_data.CLASS_MAP)}", "--output_dir=ex",
         f"--clip_seconds={TINY.clip_seconds}", "--local_workers=2"]
  staging = tmp_path / ".tmp.ex"
  status, stderr, seconds, workers = stop_while_running(
      cmd, tmp_path, signal.SIGTERM, job_running(staging, 2))
  assert_stopped_cleanly(status, stderr, seconds, workers, signal.SIGTERM, "tfsk_prepare")
  assert leftovers(tmp_path) == [] and not (tmp_path / "ex").exists()


def test_stopping_training_keeps_its_backup(tiny_examples, tmp_path):
  train_dir, _ = tiny_examples
  cmd = ["tfsk_train", f"--train={train_dir}", "--model_dir=run", "--epochs=40",
         "--width=0.25", "--batch_size=8", "--train_hop_frames=48"]
  backup = tmp_path / "run" / "backup" / "backup.json"
  status, stderr, seconds, workers = stop_while_running(
      cmd, tmp_path, signal.SIGTERM, lambda pid: backup.exists())
  assert_stopped_cleanly(status, stderr, seconds, workers, signal.SIGTERM, "tfsk_train")
  assert leftovers(tmp_path) == [] and backup.exists()
  assert not any(".tmp" in name for name in os.listdir(backup.parent))
