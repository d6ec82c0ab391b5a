"""Training past one machine: 2 local worker processes under MultiWorkerMirroredStrategy
(TF_CONFIG) take the same step as one process on the same global batch."""

import json
import os
import socket
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def _free_ports(n):
  sockets = [socket.socket() for _ in range(n)]
  for s in sockets:
    s.bind(("localhost", 0))
  ports = [s.getsockname()[1] for s in sockets]
  for s in sockets:
    s.close()
  return ports


def _run_workers(args, count, cwd, timeout=300, extra_env=None):
  """Starts `count` processes of `args`, each a worker of one local cluster."""
  cluster = {"worker": [f"localhost:{p}" for p in _free_ports(count)]}
  procs = []
  for i in range(count):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", **(extra_env or {}), TF_CONFIG=json.dumps(
        {"cluster": cluster, "task": {"type": "worker", "index": i}}))
    procs.append(subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True))
  outputs = []
  for p in procs:
    try:
      outputs.append(p.communicate(timeout=timeout)[0])
    except subprocess.TimeoutExpired:
      for q in procs:
        q.kill()
      raise
  for p, out in zip(procs, outputs):
    assert p.returncode == 0, out[-3000:]
  return outputs


def test_two_workers_take_the_single_worker_step(tmp_path):
  step = [sys.executable, os.path.join(HERE, "multi_worker_step.py")]
  alone, together = str(tmp_path / "alone.npz"), str(tmp_path / "together.npz")
  subprocess.run(step + [alone], check=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
                 capture_output=True)
  _run_workers(step + [together], 2, str(tmp_path))
  a, b = np.load(alone), np.load(together)
  assert int(a["replicas"]) == 1 and int(b["replicas"]) == 2
  names = sorted(k[len("after:"):] for k in a.files if k.startswith("after:"))
  assert set(names) == {k[len("after:"):] for k in b.files if k.startswith("after:")}
  # A bias right before BatchNorm has an analytically zero gradient (BatchNorm subtracts
  # the mean), which Adam's first step turns into a step of float noise: left out.
  compared = [n for n in names if not (n.endswith("/bias") and n.startswith("dense"))]
  assert any("kernel" in n for n in compared) and any("moving_mean" in n for n in compared)
  moved = 0
  for n in compared:
    before = a["before:" + n]
    np.testing.assert_array_equal(before, b["before:" + n])  # the same start
    # Summation order differs between one batch and two all-reduced halves; Adam's first
    # step moves every weight by about the learning rate (0.05), so 2e-5 is 0.04% of it.
    np.testing.assert_allclose(b["after:" + n], a["after:" + n], rtol=1e-4, atol=2e-5,
                               err_msg=n)
    moved += int(not np.allclose(a["after:" + n], before))
  assert moved >= len(compared) // 2  # the step changed the model: not a vacuous match


def test_tfsk_train_runs_on_two_workers_and_only_the_chief_writes(tmp_path):
  """The binary under TF_CONFIG: both workers train (file-sharded input), the chief writes
  --model_dir, the other worker's copy goes to scratch and is removed."""
  from tf_skeptical.datasets import audioset_simulation as sim
  from tf_skeptical import prepare, training
  p = sim.SimulationParams(train_clips=200, eval_clips=10, num_classes=9, clips_per_shard=50,
                           chunk=100, smallest_class=0.05, seed=2)
  sim.generate(str(tmp_path / "sim"), p)
  prepare.prepare_embeddings(str(tmp_path / "sim" / "train" / "*.tfrecord"),
                             str(tmp_path / "sim" / sim.CLASS_MAP), str(tmp_path / "ex"),
                             clips_per_shard=25)
  scratch = tmp_path / "tmp"
  scratch.mkdir()
  outputs = _run_workers(
      [sys.executable, "-m", "tf_skeptical_bin.tfsk_train", "--train=ex", "--model_dir=run",
       "--model=embedding_mlp", "--width=0.1", "--batch_size=16", "--epochs=2",
       "--steps_per_epoch=3", "--strategy=multi_worker"],
      2, str(tmp_path), extra_env={"TMPDIR": str(scratch)})
  result = json.loads((tmp_path / "run" / training.RESULT).read_text())
  assert result["config"]["strategy"] == "multi_worker"
  assert len(result["history"]["loss"]) == 2
  assert (tmp_path / "run" / "model.keras").exists()
  assert not list(scratch.iterdir())  # the worker's scratch copy is gone
  assert all("Traceback" not in out for out in outputs)
