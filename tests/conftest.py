"""Shared fixtures: a tiny built-in dataset, prepared once per test session (one copy for all
of the session's xdist workers); a hand-made ontology tree."""

import fcntl
import json
import os
import shutil
import struct

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

from tf_skeptical.datasets import builtin_data
from tf_skeptical import prepare
from tf_skeptical.data import ontology

TINY = builtin_data.BuiltinDataParams(num_classes=6, train_clips=48, eval_clips=24,
                                      clip_seconds=1.5, missing_rate=0.05, seed=3)


def built_once(tmp_path_factory, name: str, build) -> str:
  """A directory that build(path) fills once for the whole test session: the first xdist
  worker to ask builds it under a lock, the others wait and read it (a tiny model trained
  once, not once per worker). A build that fails leaves nothing behind for the next one."""
  root = tmp_path_factory.getbasetemp()
  if os.environ.get("PYTEST_XDIST_WORKER"):
    root = root.parent  # the session's directory, shared by its workers
  path, done = root / name, root / (name + ".done")
  with open(root / (name + ".lock"), "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    if not done.exists():
      shutil.rmtree(path, ignore_errors=True)
      path.mkdir()
      build(str(path))
      done.touch()
  return str(path)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
  out = built_once(tmp_path_factory, "builtin", lambda path: builtin_data.generate(path, TINY))
  with open(os.path.join(out, builtin_data.SUMMARY)) as f:
    return out, json.load(f)


@pytest.fixture(scope="session")
def tiny_examples(tiny_data, tmp_path_factory):
  """(train_dir, eval_dir) prepared from the tiny built-in dataset."""
  data, _ = tiny_data
  splits = (("train", builtin_data.TRAIN_SEGMENTS), ("eval", builtin_data.EVAL_SEGMENTS))

  def build(root):
    for split, csv_name in splits:
      prepare.prepare_audio(os.path.join(data, csv_name),
                            os.path.join(data, builtin_data.AUDIO_DIR),
                            os.path.join(data, builtin_data.CLASS_MAP),
                            os.path.join(root, split), clip_seconds=TINY.clip_seconds)

  root = built_once(tmp_path_factory, "examples", build)
  return tuple(os.path.join(root, split) for split, _ in splits)


# 12 epochs: at 8 the tiny model's eval d' still jumps between epochs (seed 0 ended at 0.44
# in one run and above 0.5 in others); at 12, six seeds ended at 0.78-2.09.
TINY_TRAIN = dict(model="mobilenet_v1", width=0.25, epochs=12, batch_size=8,
                  train_hop_frames=48)


@pytest.fixture(scope="session")
def tiny_teacher(tiny_examples, tmp_path_factory):
  """A tiny MobileNet trained a few epochs on the tiny data: (model_dir, result)."""
  from tf_skeptical import training
  train_dir, eval_dir = tiny_examples
  model_dir = built_once(tmp_path_factory, "teacher", lambda path: training.train(
      train_dir, path, training.TrainConfig(**TINY_TRAIN), eval_dir=eval_dir, verbose=0))
  with open(os.path.join(model_dir, training.RESULT)) as f:
    return model_dir, json.load(f)


@pytest.fixture(scope="session")
def tiny_tagger(tiny_examples, tmp_path_factory):
  """A tiny model trained to convergence (an 8-epoch one quantizes far worse than anything
  a user would ship), exported: (export_dir, the Keras model)."""
  from tf_skeptical import exporting, inference, training
  train_dir, _ = tiny_examples

  def build(root):
    model_dir = os.path.join(root, "model")
    training.train(train_dir, model_dir, training.TrainConfig(**dict(TINY_TRAIN, epochs=40)),
                   verbose=0)
    exporting.export(model_dir, os.path.join(train_dir, "class_map.csv"),
                     os.path.join(root, "tagger"),
                     calibration_files=prepare.source_audio(train_dir),
                     cfg=exporting.ExportConfig(calibration_windows=150))

  root = built_once(tmp_path_factory, "export", build)
  return os.path.join(root, "tagger"), inference.load_model(os.path.join(root, "model"))


@pytest.fixture(scope="session")
def fine_tuned_tagger(tiny_examples, tmp_path_factory):
  """A student fine-tuned from a weights file in YAMNet's released layout (random values;
  three of the tiny set's six mids in its class map), exported: (export_dir, Keras model)."""
  from tf_skeptical import exporting, inference, pretrained, training
  from tf_skeptical.data import examples
  from yamnet_layout import YAMNET_MIDS, write_class_map, write_yamnet, yamnet_arrays
  train_dir, _ = tiny_examples

  def build(root):
    weights = os.path.join(root, "yamnet.h5")
    write_yamnet(weights, yamnet_arrays(np.random.default_rng(3)))
    mids = list(YAMNET_MIDS)
    for tiny, index in {0: 5, 2: 70, 4: 300}.items():
      mids[index] = examples.read_info(train_dir).class_map.mids[tiny]
    write_class_map(os.path.join(root, pretrained.YAMNET_CLASS_MAP), mids)
    model_dir = os.path.join(root, "model")
    training.train(train_dir, model_dir, training.TrainConfig(**dict(
        TINY_TRAIN, width=1.0, epochs=2, steps_per_epoch=4, init_from=weights)), verbose=0)
    exporting.export(model_dir, os.path.join(train_dir, "class_map.csv"),
                     os.path.join(root, "tagger"),
                     calibration_files=prepare.source_audio(train_dir),
                     cfg=exporting.ExportConfig(calibration_windows=150))

  root = built_once(tmp_path_factory, "fine_tuned", build)
  return os.path.join(root, "tagger"), inference.load_model(os.path.join(root, "model"))


@pytest.fixture(scope="session")
def teacher_flags(tiny_teacher, tiny_examples, tmp_path_factory):
  """The tiny teacher's scores of the tiny train set, and its flags: (scores_dir, Flags)."""
  from tf_skeptical import flagging, scoring
  model_dir, _ = tiny_teacher
  train_dir, _ = tiny_examples
  out = built_once(tmp_path_factory, "teacher_scores", lambda path: scoring.score(
      train_dir, model_dir, path, patch_batch=16, local_workers=1))
  return out, flagging.flag_scores(scoring.read_scores(out), max_percent=20)


def snapshot_tree(directory) -> dict:
  """{relative path: bytes} of every file under directory: to check that an output is
  byte-identical after a failed or stopped re-run."""
  out = {}
  for root, _, names in os.walk(directory):
    for name in names:
      path = os.path.join(root, name)
      with open(path, "rb") as f:
        out[os.path.relpath(path, directory)] = f.read()
  return out


def write_float_wav(path, samples, rate=16000, dtype="<f4", extensible=False):
  """A mono IEEE-float wav (format tag 3, or WAVE_FORMAT_EXTENSIBLE with the float
  sub-format), written byte by byte: Python's wave module writes PCM only."""
  data = np.asarray(samples, dtype).tobytes()
  width = np.dtype(dtype).itemsize
  fmt = struct.pack("<HHIIHH", 0xFFFE if extensible else 3, 1, rate, rate * width, width,
                    8 * width)
  if extensible:  # cbSize, valid bits, channel mask, sub-format GUID (KSDATAFORMAT_..._FLOAT)
    fmt += struct.pack("<HHI", 22, 8 * width, 4) + struct.pack("<H", 3) + bytes.fromhex(
        "000000001000800000aa00389b71")
  body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
  body += b"LIST" + struct.pack("<I", 4) + b"INFO"  # a chunk a reader must skip
  body += b"data" + struct.pack("<I", len(data)) + data
  with open(path, "wb") as f:
    f.write(b"RIFF" + struct.pack("<I", len(body)) + body)


# A hand-made ontology: /m/root (not a class) -> Music (0) -> Guitar (1) -> Electric guitar
# (2); Music -> Drum (3); Speech (4) alone; Animal (5) -> Dog (6), and Dog also under Pets
# (7): two parents.
MIDS = ["/m/music", "/m/guitar", "/m/eguitar", "/m/drum", "/m/speech", "/m/animal", "/m/dog",
        "/m/pets"]
NODES = [
    {"id": "/m/root", "name": "Root", "child_ids": ["/m/music", "/m/animal"]},
    {"id": "/m/music", "name": "Music", "child_ids": ["/m/guitar", "/m/drum"]},
    {"id": "/m/guitar", "name": "Guitar", "child_ids": ["/m/eguitar"]},
    {"id": "/m/eguitar", "name": "Electric guitar", "child_ids": []},
    {"id": "/m/drum", "name": "Drum", "child_ids": []},
    {"id": "/m/speech", "name": "Speech", "child_ids": []},
    {"id": "/m/animal", "name": "Animal", "child_ids": ["/m/dog"]},
    {"id": "/m/pets", "name": "Pets", "child_ids": ["/m/dog"]},
    {"id": "/m/dog", "name": "Dog", "child_ids": []},
]


@pytest.fixture
def tree(tmp_path):
  path = tmp_path / "ontology.json"
  path.write_text(json.dumps(NODES))
  return ontology.read_ontology(str(path), MIDS)
