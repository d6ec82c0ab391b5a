"""The AudioSet-sized simulation: its records parse as AudioSet's, its long tail and truth
are what the parameters say, and the same seed gives the same files."""

import csv
import glob
import hashlib
import os

import numpy as np
import pytest
import tensorflow as tf

from tf_skeptical import audioset_embeddings, audioset_simulation as sim
from tf_skeptical.class_map import read_class_map

P = sim.SimulationParams(train_clips=900, eval_clips=100, num_classes=40, clips_per_shard=256,
                         chunk=300, smallest_class=0.005, seed=3)


def test_frequencies_fall_from_the_largest_to_the_smallest_and_sum_to_labels_per_clip():
  f = sim.class_frequencies(sim.SimulationParams())
  assert len(f) == 527 and np.all(np.diff(f) <= 0)
  assert f[0] == pytest.approx(0.5) and f.sum() == pytest.approx(2.7, rel=1e-3)
  # At AudioSet's size the rarest class has on the order of a hundred clips.
  assert 50 <= f[-1] * sim.AUDIOSET_TRAIN_CLIPS <= 1000


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
  out = str(tmp_path_factory.mktemp("sim"))
  return out, sim.generate(out, P)


def _records(folder):
  cmap = read_class_map(os.path.join(os.path.dirname(folder), sim.CLASS_MAP))
  out = {}
  for path in sorted(glob.glob(os.path.join(folder, "*.tfrecord"))):
    for r in tf.data.TFRecordDataset(path).as_numpy_iterator():
      clip = audioset_embeddings.parse_sequence_example(r, len(cmap), path)
      out[clip.clip_id] = clip
  return out, cmap


def test_records_truth_and_summary_agree(simulated):
  out, summary = simulated
  train, cmap = _records(os.path.join(out, sim.TRAIN))
  evaluation, _ = _records(os.path.join(out, sim.EVAL))
  assert len(train) == 900 and len(evaluation) == 100
  assert len(glob.glob(os.path.join(out, sim.TRAIN, "*.tfrecord"))) == 4  # 900 / 256
  assert all(c.embeddings.shape == (10, 128) and c.labels for c in train.values())
  with open(os.path.join(out, sim.TRUTH)) as f:
    truth = [(r["clip_id"], cmap.index_of[r["mid"]]) for r in csv.DictReader(f)]
  assert truth and len(truth) == summary["train"]["missing_labels"]
  assert all(c not in train[k].labels for k, c in truth)  # missing means not given
  assert sum(len(c.labels) for c in train.values()) == summary["train"]["labels"]
  implicit = 900 * 40 - summary["train"]["labels"]
  assert summary["base_rate"] == pytest.approx(len(truth) / implicit)
  # The eval set is complete: about labels_per_clip labels a clip; train lost some.
  eval_labels = np.mean([len(c.labels) for c in evaluation.values()])
  train_labels = np.mean([len(c.labels) for c in train.values()])
  assert 2.0 < eval_labels < 3.5 and train_labels < eval_labels
  # The head class is on about half the eval clips, the tail far fewer.
  head = np.mean([0 in c.labels for c in evaluation.values()])
  assert 0.35 < head < 0.65


def test_a_class_is_recognisable_from_its_frames(simulated):
  """The embeddings carry the labels: a clip's frames correlate with its classes'
  prototypes more than with the others'."""
  out, _ = simulated
  train, _ = _records(os.path.join(out, sim.TRAIN))
  proto = sim._Draw(P).prototypes
  hits = []
  for clip in list(train.values())[:200]:
    sims = clip.embeddings.mean(0) @ proto.T
    hits.append(np.argmax(sims) in clip.labels)
  assert np.mean(hits) > 0.5  # a single best match among 40 classes, chance ~ 0.07


def test_same_seed_same_files(simulated, tmp_path):
  out, _ = simulated
  again = str(tmp_path / "again")
  sim.generate(again, P)
  for name in [sim.TRUTH, sim.CLASS_MAP, "train/train-00000-of-00004.tfrecord"]:
    with open(os.path.join(out, name), "rb") as a, open(os.path.join(again, name), "rb") as b:
      assert hashlib.sha1(a.read()).digest() == hashlib.sha1(b.read()).digest(), name
