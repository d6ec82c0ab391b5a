"""The AudioSet-sized simulation: its records parse as AudioSet's, its long tail and truth
are what the parameters say, and the same seed gives the same files."""

import csv
import glob
import hashlib
import os

import numpy as np
import pytest
import tensorflow as tf

from tf_skeptical.data import audioset_embeddings
from tf_skeptical.datasets import audioset_simulation as sim
from tf_skeptical.data.class_map import read_class_map

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


def test_ontology_parents_are_present_with_their_children_and_often_missing(tmp_path):
  """With child_share, a present child makes its parents present (the eval set is
  complete), and a parent present only through a child loses its train label about
  parent_missing_rate of the time, more often than the classes' own rates (<= 0.4)."""
  p = sim.SimulationParams(train_clips=1500, eval_clips=300, num_classes=30, smallest_class=0.01,
                           child_share=0.5, parent_missing_rate=0.7, seed=4)
  out = str(tmp_path / "onto")
  summary = sim.generate(out, p)
  parents = {int(c): q for c, q in summary["parents"].items()}
  assert 5 <= len(parents) <= 25 and all(q < c for c, q in parents.items())

  def ancestors(c):
    while c in parents:
      c = parents[c]
      yield c
  evaluation, cmap = _records(os.path.join(out, sim.EVAL))
  for clip in evaluation.values():
    for c in clip.labels:
      assert set(ancestors(c)) <= set(clip.labels), (clip.clip_id, c)
  # Labels: a parent present only through a child is dropped at parent_missing_rate,
  # every other entry at its class's rate (at most 0.4); drawn here, many clips at once.
  draw = sim._Draw(p)
  rng = np.random.default_rng(0)
  present, implied, _ = draw.clips(rng, 20000)
  assert implied.sum() > 1000 and not (implied & ~present).any()
  children = {}
  for c, q in parents.items():
    children.setdefault(q, []).append(c)

  def descendants(q):
    out, stack = [], list(children.get(q, []))
    while stack:
      out.append(stack.pop())
      stack += children.get(out[-1], [])
    return out
  for q in children:  # an implied parent has a present descendant
    assert not (implied[:, q] & ~present[:, descendants(q)].any(1)).any()
  assert not implied[:, [c for c in range(30) if c not in children]].any()
  given = draw.drop_labels(rng, present, implied)
  dropped = present & ~given
  rate = dropped[implied].mean()
  assert abs(rate - 0.7) < 4 * np.sqrt(0.7 * 0.3 / implied.sum()) + 0.01
  assert dropped[present & ~implied].mean() < 0.4
