"""Training: a tiny model learns, logs to TensorBoard, and survives a SIGKILL."""

import dataclasses
import glob
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tf_skeptical import inference, metrics, training
from tf_skeptical.entries import Entries
from tf_skeptical.targets import Targets

from conftest import TINY_TRAIN

# End-to-end: trains, exports or runs the binaries (.ci/run runs these on one Python only).
pytestmark = pytest.mark.end_to_end


def test_tiny_model_improves_eval_d_prime(tiny_teacher, tiny_examples):
  model_dir, result = tiny_teacher
  history = result["history"]["val_d_prime"]
  assert len(history) == TINY_TRAIN["epochs"]
  # An untrained model of the same shape ranks at chance; the trained one well above it.
  from tf_skeptical.data import examples
  info = examples.read_info(tiny_examples[0])
  untrained = training.compile_model(info, training.TrainConfig(**TINY_TRAIN), 10)
  _, labels, scores = inference.predict_clip_scores(untrained, tiny_examples[1])
  before = metrics.evaluate(labels, scores).d_prime
  assert result["eval"]["d_prime"] > before + 0.5
  assert os.path.exists(os.path.join(model_dir, "model.keras"))
  events = glob.glob(os.path.join(model_dir, "logs", "*", "events.out.tfevents*"))
  assert {os.path.basename(os.path.dirname(e)) for e in events} >= {"train", "validation"}


def test_tensorboard_has_clip_metrics_and_masked_fraction(tiny_teacher):
  from tensorboard.backend.event_processing import event_accumulator
  model_dir, _ = tiny_teacher
  tags = set()
  for run in ("train", "validation"):
    acc = event_accumulator.EventAccumulator(os.path.join(model_dir, "logs", run))
    acc.Reload()
    tags |= set(acc.Tags()["tensors"]) | set(acc.Tags()["scalars"])
  for tag in ("epoch_loss", "epoch_masked_fraction", "epoch_d_prime", "epoch_lwlrap",
              "epoch_mAP", "epoch_learning_rate"):
    assert tag in tags, tags


def test_sigkill_resumes_and_finishes(tiny_examples, tmp_path):
  """Killed three times mid-training, backing up after every step so that kills land
  mid-write too, then once after its last epoch, before result.json."""
  train_dir, eval_dir = tiny_examples
  model_dir = str(tmp_path / "run")
  epochs = 6  # kills at epochs 1, 3 and 4 leave 2 to train
  cmd = [sys.executable, "-m", "tf_skeptical_bin.tfsk_train", f"--train={train_dir}",
         f"--model_dir={model_dir}", "--width=0.25", f"--epochs={epochs}", "--batch_size=8",
         "--backup_every_steps=1", f"--eval={eval_dir}"]
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  meta = os.path.join(model_dir, "backup", training.Backup.STATE)

  def epoch_reached():
    try:
      with open(meta) as f:
        return json.load(f).get("epoch", 0)
    except (OSError, ValueError):
      return 0

  for kill_at in (1, 3, 4):
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None and epoch_reached() < kill_at:
      time.sleep(0.05)
    assert proc.poll() is None, f"training ended before it could be killed: {proc.stderr.read()[-2000:]}"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not os.path.exists(os.path.join(model_dir, training.RESULT))
  # After fit: the last epoch's backup is written, then model.keras (about 0.1 s to save)
  # and result.json a few milliseconds after it.
  proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True)
  deadline = time.time() + 600
  while time.time() < deadline and proc.poll() is None and epoch_reached() < epochs:
    time.sleep(0.002)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  assert not training.is_trained(model_dir)
  done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
  assert done.returncode == 0, done.stderr[-2000:]
  with open(os.path.join(model_dir, training.RESULT)) as f:
    result = json.load(f)
  # Every epoch is in the history once, though five processes shared them, and the last
  # one trained nothing.
  assert len(result["history"]["loss"]) == epochs and "eval" in result
  assert "Epoch " not in done.stdout
  assert not os.path.exists(os.path.join(model_dir, "backup"))


def killed_before_the_result(train_dir, model_dir, cfg, monkeypatch):
  """Trains cfg into model_dir and dies where result.json would be written: every epoch
  trained and backed up, no result."""
  real_write_json = training.files.write_json

  def die_at_result(path, obj, **kwargs):
    if path.endswith(training.RESULT):
      raise KeyboardInterrupt("killed before the result")
    real_write_json(path, obj, **kwargs)

  monkeypatch.setattr(training.files, "write_json", die_at_result)
  with pytest.raises(KeyboardInterrupt):
    training.train(train_dir, model_dir, cfg, verbose=0)
  monkeypatch.setattr(training.files, "write_json", real_write_json)


def test_killed_after_fit_resumes_without_training_and_keeps_the_history(tiny_examples,
                                                                          tmp_path, monkeypatch):
  """A run that dies after its last epoch but before result.json is written finishes on the
  next start without training again, and a finished run is not trained again."""
  train_dir, _ = tiny_examples
  model_dir = str(tmp_path / "run")
  cfg = training.TrainConfig(**dict(TINY_TRAIN, epochs=2))
  killed_before_the_result(train_dir, model_dir, cfg, monkeypatch)
  assert not training.is_trained(model_dir)
  epochs_run = []
  monkeypatch.setattr(training.Backup, "on_epoch_begin",
                      lambda self, epoch, logs=None: epochs_run.append(epoch))
  result = training.train(train_dir, model_dir, cfg, verbose=0)
  assert epochs_run == [] and len(result["history"]["loss"]) == 2

  # Finished: a second call keeps it (no training), overwrite trains it again.
  assert training.train(train_dir, model_dir, cfg, verbose=0) == result
  assert epochs_run == []
  training.train(train_dir, model_dir, cfg, verbose=0, overwrite=True)
  assert epochs_run == [0, 1]


def test_a_resume_with_another_recipe_is_refused_naming_the_setting(tiny_examples, tmp_path,
                                                                   monkeypatch):
  """A killed run's backup records its recipe: another width, model, batch size, seed, set
  of examples or set of targets is refused before any weight is loaded; the same recipe
  resumes."""
  train_dir, eval_dir = tiny_examples
  model_dir = str(tmp_path / "run")
  cfg = training.TrainConfig(**dict(TINY_TRAIN, epochs=1))
  killed_before_the_result(train_dir, model_dir, cfg, monkeypatch)
  backup = os.path.join(model_dir, training.BACKUP)
  for other, setting, was, now in (
      (dict(width=0.5), "--width", "0.25", "0.5"),
      (dict(model="embedding_mlp"), "--model", "'mobilenet_v1'", "'embedding_mlp'"),
      (dict(batch_size=16), "--batch_size", "8", "16"),
      (dict(seed=3), "--seed", "0", "3")):
    with pytest.raises(training.ResumeMismatch) as caught:
      training.train(train_dir, model_dir, dataclasses.replace(cfg, **other), verbose=0)
    assert str(caught.value) == (
        f"{model_dir}: its backup was started with {setting} = {was}, and this run asks for "
        f"{now}: run again with the same settings to resume, or remove {backup} to start over")
  with pytest.raises(training.ResumeMismatch, match="started with its clip set = "):
    training.train(eval_dir, model_dir, cfg, verbose=0)
  added = Entries.from_lists(["train000001"], [[2]])
  with pytest.raises(training.ResumeMismatch, match="started with its added positives = 0"):
    training.train(train_dir, model_dir, cfg, targets=Targets(added_positives=added), verbose=0)
  assert training.train(train_dir, model_dir, cfg, verbose=0)["config"]["width"] == 0.25
