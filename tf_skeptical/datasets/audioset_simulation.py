"""An AudioSet-sized dataset with known missing labels, at embedding level, in AudioSet's
released-feature format: for measuring the pipeline at scale on one machine.

AudioSet's train set has 2,041,789 clips and 527 classes with a long tail (Music on about
half the clips, the rarest classes on about a hundred), several labels per clip, and
missing labels. This generator writes the same shapes:

- class frequencies falling as a power of the class's rank, from `largest_class` of the
  clips down to `smallest_class` (AudioSet: 0.5 down to 5e-5), scaled so that a clip has
  `labels_per_clip` present events on average (at least one);
- per class a prototype embedding; a clip's 10 one-second frames are the sum of its present
  events' prototypes (each event on for a random run of seconds, at a random level) plus
  noise, quantized to uint8 as AudioSet's embeddings are;
- train labels drop each present event with a class-dependent probability (uniform between
  the `missing_rate` bounds; at least one label stays); the eval set is complete; the
  dropped (clip, class) entries go to `train_missing_labels.csv`;
- optionally an ontology (`child_share` > 0): that share of the classes each get a parent
  among the more frequent classes, and a present child makes its parents present (a guitar
  is music); AudioSet's annotators often gave the child and not the parent, so a parent
  present only through a child loses its label with `parent_missing_rate`. This is the
  harder set: more of the missing labels sit on the head classes, and a parent's clips
  sound like any of its children.

It streams: clips are drawn, serialized and written chunk by chunk to TFRecord shards of
`clips_per_shard` records (tf.train.SequenceExample, audioset_embeddings.py's layout), so
memory does not grow with the clip count; a progress bar shows the clips written.

  out_dir/class_labels_indices.csv, train/*.tfrecord, eval/*.tfrecord,
  train_missing_labels.csv (clip_id, mid), generation.json, and with an ontology
  ontology.json (AudioSet's layout: each class's child_ids)
"""

import csv
import dataclasses
import math
import os

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from tf_skeptical.data import audioset_embeddings, ontology
from tf_skeptical.util import files
from tf_skeptical.data.class_map import HEADER
from tf_skeptical.datasets import layout
from tf_skeptical.datasets.layout import CLASS_MAP, EVAL, ONTOLOGY, SUMMARY, TRAIN, TRUTH

AUDIOSET_TRAIN_CLIPS, AUDIOSET_EVAL_CLIPS, AUDIOSET_CLASSES = 2_041_789, 20_371, 527


@dataclasses.dataclass(frozen=True)
class SimulationParams:
  train_clips: int = 20_000
  eval_clips: int = 2_000
  num_classes: int = AUDIOSET_CLASSES
  labels_per_clip: float = 2.7
  largest_class: float = 0.5
  smallest_class: float = 5e-5
  missing_rate: tuple = (0.05, 0.4)  # a class's chance to lose a present event's label
  noise: float = 0.6  # frame noise, relative to one event's level
  child_share: float = 0.0  # classes with a parent (the ontology; 0: none)
  parent_missing_rate: float = 0.6  # a parent implied by a child loses its label
  clips_per_shard: int = 10_000
  chunk: int = 2_000  # clips drawn at once
  seed: int = 0


def class_frequencies(p: SimulationParams) -> np.ndarray:
  """Power-law frequencies by rank, from largest_class to smallest_class, then scaled so
  that they add up to labels_per_clip (none above largest_class)."""
  exponent = math.log(p.largest_class / p.smallest_class) / math.log(p.num_classes)
  f = p.largest_class * np.arange(1, p.num_classes + 1, dtype=np.float64) ** -exponent
  for _ in range(50):  # scale the body, keeping the head at largest_class
    f = np.minimum(f * p.labels_per_clip / f.sum(), p.largest_class)
  return f


class _Draw:
  """The fixed parts of a simulated dataset: class frequencies, prototypes, missing rates."""

  def __init__(self, p: SimulationParams):
    rng = np.random.default_rng(p.seed)
    self.p = p
    self.freq = class_frequencies(p)
    self.missing = rng.uniform(*p.missing_rate, p.num_classes)
    proto = rng.standard_normal((p.num_classes, audioset_embeddings.EMBEDDING_DIMS))
    self.prototypes = (proto / np.linalg.norm(proto, axis=1, keepdims=True)).astype(np.float32)
    # parent[c] < c (a more frequent class) or -1; drawn after the rest, so that
    # child_share = 0 gives the same dataset as before the ontology existed.
    self.parent = np.full(p.num_classes, -1)
    if p.child_share > 0:
      onto = np.random.default_rng([p.seed, 3])
      for c in range(1, p.num_classes):
        if onto.random() < p.child_share:
          self.parent[c] = onto.integers(0, c)

  def clips(self, rng, n: int):
    """n clips: (present [n, C] bool, implied [n, C] bool: present only as the parent of a
    present child, quantized frames [n, 10, 128] uint8)."""
    p, seconds = self.p, audioset_embeddings.SECONDS_PER_CLIP
    present = rng.random((n, p.num_classes)) < self.freq
    empty = ~present.any(axis=1)
    present[np.flatnonzero(empty), rng.choice(p.num_classes, empty.sum(),
                                              p=self.freq / self.freq.sum())] = True
    rows, cls = np.nonzero(present)
    level = rng.uniform(0.5, 1.5, rows.size).astype(np.float32)
    start = rng.integers(0, seconds, rows.size)
    length = rng.integers(1, seconds + 1, rows.size)
    t = np.arange(seconds)
    on = (t >= start[:, None]) & (t < (start + length)[:, None])  # [events, 10]
    frames = rng.standard_normal((n, seconds, self.prototypes.shape[1])).astype(np.float32)
    frames *= p.noise / math.sqrt(self.prototypes.shape[1])
    contribution = (on * level[:, None])[:, :, None] * self.prototypes[cls][:, None, :]
    np.add.at(frames, rows, contribution)
    codes = np.clip(np.round(128 + 64 * frames), 0, 255).astype(np.uint8)
    sounding = present.copy()
    for c in np.flatnonzero(self.parent >= 0)[::-1]:  # children before their parents
      present[:, self.parent[c]] |= present[:, c]
    return present, present & ~sounding, codes

  def drop_labels(self, rng, present: np.ndarray, implied: np.ndarray) -> np.ndarray:
    """Train labels: each present event kept with probability 1 - missing rate of its
    class (parent_missing_rate for a parent implied by a child); a clip left with none
    keeps one of its events."""
    missing = np.where(implied, self.p.parent_missing_rate, self.missing)
    kept = present & (rng.random(present.shape) >= missing)
    lost_all = np.flatnonzero(present.any(axis=1) & ~kept.any(axis=1))
    for i in lost_all:
      kept[i, rng.choice(np.flatnonzero(present[i]))] = True
    return kept


def _mids(num_classes: int):
  return [f"/sim/{c:03d}" for c in range(num_classes)]


def _write_split(draw: _Draw, out_dir: str, split: str, count: int, seed: int,
                 truth_writer=None) -> dict:
  p = draw.p
  rng = np.random.default_rng([p.seed, seed])
  mids = _mids(p.num_classes)
  folder = os.path.join(out_dir, split)
  files.makedirs(folder)
  shards = max(1, math.ceil(count / p.clips_per_shard))
  labels = missing = 0
  writer, shard = None, -1
  with tqdm(total=count, desc=f"simulating {split} clips", unit="clip", mininterval=2) as bar:
    for first in range(0, count, p.chunk):
      n = min(p.chunk, count - first)
      present, implied, codes = draw.clips(rng, n)
      given = draw.drop_labels(rng, present, implied) if truth_writer else present
      for i in range(n):
        index = first + i
        if index // p.clips_per_shard != shard:
          if writer:
            writer.close()
          shard = index // p.clips_per_shard
          writer = tf.io.TFRecordWriter(os.path.join(
              folder, f"{split}-{shard:05d}-of-{shards:05d}.tfrecord"))
        clip_id = f"{split}{index:07d}"
        classes = np.flatnonzero(given[i])
        writer.write(audioset_embeddings.make_sequence_example(
            clip_id, 0.0, 10.0, classes, codes[i]))
        labels += classes.size
        if truth_writer:
          for c in np.flatnonzero(present[i] & ~given[i]):
            truth_writer.writerow([clip_id, mids[c]])
            missing += 1
      bar.update(n)
  if writer:
    writer.close()
  return dict(clips=count, shards=shards, labels=labels, missing_labels=missing)


def generate(out_dir: str, p: SimulationParams = SimulationParams()) -> dict:
  """Writes the simulated dataset (see the module docstring); returns generation.json."""
  with layout.writing(out_dir) as staging:
    return _generate(staging, p)


def _generate(out_dir: str, p: SimulationParams) -> dict:
  draw = _Draw(p)
  files.makedirs(out_dir)
  names = []
  with files.atomic_write(os.path.join(out_dir, CLASS_MAP)) as f:
    w = csv.writer(f)
    w.writerow(HEADER)
    for c, mid in enumerate(_mids(p.num_classes)):
      parent = (f", child of {draw.parent[c]}" if draw.parent[c] >= 0 else "")
      names.append(f"sim class {c} ({draw.freq[c]:.2g} of clips{parent})")
      w.writerow([c, mid, names[-1]])
  if p.child_share > 0:
    ontology.write_ontology(os.path.join(out_dir, ONTOLOGY), _mids(p.num_classes), names,
                            draw.parent)
  with files.atomic_write(os.path.join(out_dir, TRUTH)) as f:
    truth = csv.writer(f)
    truth.writerow(["clip_id", "mid"])
    train = _write_split(draw, out_dir, TRAIN, p.train_clips, 1, truth)
  evaluation = _write_split(draw, out_dir, EVAL, p.eval_clips, 2)
  implicit = p.train_clips * p.num_classes - train["labels"]
  summary = dict(params=dataclasses.asdict(p), train=train, eval=evaluation,
                 base_rate=train["missing_labels"] / implicit,
                 class_clips_expected=dict(largest=float(draw.freq[0] * p.train_clips),
                                           smallest=float(draw.freq[-1] * p.train_clips)),
                 parents={int(c): int(draw.parent[c]) for c in np.flatnonzero(draw.parent >= 0)})
  files.write_json(os.path.join(out_dir, SUMMARY), summary)  # last: the dataset is complete
  return summary
