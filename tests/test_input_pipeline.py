"""The training input: masks and added positives on log-mel clips, and for embedding
examples, which are parsed, filtered and labelled a whole batch at a time, every batch row
against a reference computed from the source records in numpy."""

import glob

import numpy as np
import pytest
import tensorflow as tf

from tf_skeptical.data import audioset_embeddings, ontology
from tf_skeptical.datasets import audioset_simulation as sim
from tf_skeptical import folds, input_pipeline, prepare, scoring, treatments
from tf_skeptical.entries import Entries
from tf_skeptical.targets import Targets
from tf_skeptical.data import examples
from tf_skeptical.data.params import DEFAULT_FRONTEND as P

from conftest import TINY

NUM_CLASSES = 12


@pytest.fixture(scope="module")
def embedding_examples(tmp_path_factory):
  """Simulated AudioSet-format records, prepared; and the source clips by id."""
  root = tmp_path_factory.mktemp("emb")
  p = sim.SimulationParams(train_clips=240, eval_clips=10, num_classes=NUM_CLASSES,
                           clips_per_shard=50, chunk=100, smallest_class=0.05, seed=5)
  sim.generate(str(root / "sim"), p)
  prepare.prepare_embeddings(str(root / "sim" / "train" / "*.tfrecord"),
                             str(root / "sim" / sim.CLASS_MAP), str(root / "ex"),
                             clips_per_shard=64)
  source = {}
  for path in glob.glob(str(root / "sim" / "train" / "*.tfrecord")):
    for r in tf.data.TFRecordDataset(path).as_numpy_iterator():
      clip = audioset_embeddings.parse_sequence_example(r, NUM_CLASSES, path)
      source[clip.clip_id] = clip
  return str(root / "ex"), source


def _random_entries(rng, ids, share):
  chosen = [i for i in ids if rng.random() < share]
  return Entries.from_lists(
      chosen, [tuple(np.flatnonzero(rng.random(NUM_CLASSES) < 0.3)) for _ in chosen])


@pytest.mark.parametrize("fold_count", [0, 3])
def test_embedding_batches_match_the_source_records(embedding_examples, fold_count):
  ex, source = embedding_examples
  rng = np.random.default_rng(fold_count)
  ids = sorted(source)
  flagged = _random_entries(rng, ids, 0.5)
  added = _random_entries(rng, ids, 0.2)
  fold = folds.Fold(1, fold_count) if fold_count else None
  ds = input_pipeline.training_dataset(
      ex, 7, hop_frames=1, targets=Targets(flagged=flagged, added_positives=added),
      exclude_fold=fold, repeat=False, seed=0, with_implicit=True, with_clip_ids=True)

  def entries(d):
    out = {}
    for i, k in enumerate(d.clip_ids):
      out[str(k)] = d.classes_of(i)
    return out
  masked, positive = entries(flagged), entries(added)
  expected = set(ids)
  if fold:
    expected -= {k for k, inside in zip(ids, fold.contains(tf.constant(ids)).numpy())
                 if inside}
  seen = []
  for x, y in ds.as_numpy_iterator():
    assert x.shape[1:] == (10, 128) and all(v.shape[0] == 7 for v in y.values())
    for row, key in enumerate(y["clip_id"]):
      clip = source[key.decode()]
      seen.append(clip.clip_id)
      np.testing.assert_allclose(x[row], clip.embeddings, atol=0)
      want_labels = np.zeros(NUM_CLASSES, np.float32)
      want_labels[list(clip.labels)] = 1
      implicit = 1 - want_labels
      want_labels[positive.get(clip.clip_id, [])] = 1
      want_mask = np.ones(NUM_CLASSES, np.float32)
      want_mask[masked.get(clip.clip_id, [])] = 0
      np.testing.assert_array_equal(y["labels"][row], want_labels)
      np.testing.assert_array_equal(y["mask"][row], want_mask)
      np.testing.assert_array_equal(y["implicit"][row], implicit)
  assert len(seen) == len(set(seen))  # each clip once a pass
  assert set(seen) <= expected and len(expected) - len(seen) < 7  # whole batches only


def test_entry_lookup_takes_a_batch_of_ids(embedding_examples):
  _, source = embedding_examples
  ids = sorted(source)[:30]
  d = _random_entries(np.random.default_rng(9), ids, 0.6)
  lookup = input_pipeline.entry_lookup(d, NUM_CLASSES)
  want = np.zeros((len(ids), NUM_CLASSES), np.float32)
  for i, k in enumerate(d.clip_ids):
    want[ids.index(str(k)), d.classes_of(i)] = 1
  np.testing.assert_array_equal(lookup(tf.constant(ids))[0].numpy(), want)
  np.testing.assert_array_equal(lookup(tf.constant([ids[:15], ids[15:]]))[0].numpy(),
                                want.reshape(2, 15, NUM_CLASSES))


@pytest.mark.parametrize("name", ["soft", "distill", "positive"])
def test_treated_batches_match_the_source_records(embedding_examples, name):
  """Each treatment's targets and mask, batch row by batch row, against numpy: the flags'
  scores and the teacher's scores joined by clip id."""
  ex, source = embedding_examples
  rng = np.random.default_rng(11)
  ids = sorted(source)
  teacher = rng.random((len(ids), NUM_CLASSES)).astype(np.float32)
  row_of = {k: i for i, k in enumerate(ids)}
  chosen = [k for k in ids if rng.random() < 0.5]
  classes = [tuple(np.flatnonzero(rng.random(NUM_CLASSES) < 0.3)) for _ in chosen]
  flagged = Entries.from_lists(
      chosen, classes, scores=[teacher[row_of[k], list(c)] for k, c in zip(chosen, classes)])
  empty = scoring.csr_from_lists([np.zeros(0, np.int64)] * len(ids))
  scores = scoring.Scores(np.array(ids), np.asfortranarray(teacher), empty, empty, {})
  treatment = treatments.Treatment(name, 0.75)
  ds = input_pipeline.training_dataset(ex, 7, hop_frames=1, repeat=False, seed=0,
                                      with_clip_ids=True,
                                      targets=Targets(treatment, flagged, 1.0, scores))
  flagged_of = dict(zip(chosen, classes))
  rows = 0
  for _, y in ds.as_numpy_iterator():
    for row, key in enumerate(y["clip_id"]):
      k = key.decode()
      label = np.zeros(NUM_CLASSES, np.float32)
      label[list(source[k].labels)] = 1
      flagged = np.zeros(NUM_CLASSES, bool)
      flagged[list(flagged_of.get(k, ()))] = True
      t = teacher[row_of[k]]
      want = {"soft": np.where(flagged, t, label), "positive": np.where(flagged, 1.0, label),
              "distill": np.where(flagged, t, 0.25 * label + 0.75 * t)}[name]
      np.testing.assert_allclose(y["labels"][row], want, rtol=2 ** -10, atol=1e-7)
      np.testing.assert_array_equal(y["mask"][row], np.ones(NUM_CLASSES))
      rows += 1
  assert rows > len(ids) - 7


def test_labels_propagate_up_an_ontology(embedding_examples):
  """With an ontology every batch row's labels are its clip's positives and all their
  ancestors (a chain 0 <- 1 <- 2 and a class with two parents, 5 <- 7 -> 6)."""
  ex, source = embedding_examples
  mids = [f"/sim/{c:03d}" for c in range(NUM_CLASSES)]
  tree = ontology.from_children({mids[0]: [mids[1]], mids[1]: [mids[2]],
                                 mids[5]: [mids[7]], mids[6]: [mids[7]]}, mids)
  up = {1: {0}, 2: {0, 1}, 7: {5, 6}}
  ds = input_pipeline.training_dataset(ex, 7, hop_frames=1, repeat=False, seed=0,
                                      with_clip_ids=True, with_implicit=True,
                                      targets=Targets(ontology=tree))
  checked = 0
  for _, y in ds.as_numpy_iterator():
    for row, key in enumerate(y["clip_id"]):
      given = set(source[key.decode()].labels)
      want = set(given)
      for c in given:
        want |= up.get(c, set())
      assert set(np.flatnonzero(y["labels"][row])) == want
      assert set(np.flatnonzero(y["implicit"][row] == 0)) == want
      checked += len(want - given)
  assert checked > 0  # some clips gained an ancestor


def test_training_dataset_masks_only_discarded_entries(tiny_examples):
  train_dir, _ = tiny_examples
  clips = list(examples.iterate(train_dir))
  target = clips[3]["clip_id"]
  flagged = Entries.from_lists((target,), ((1, 4),))
  ds = input_pipeline.training_dataset(train_dir, 8, hop_frames=48, repeat=False, seed=0,
                                      targets=Targets(flagged=flagged))
  per_clip = P.num_patches(P.num_frames(int(TINY.clip_seconds * P.sample_rate)))
  assert per_clip == 2  # 148 frames: patches start at 0 and 48
  n_patches = n_masked = 0
  for x, y in ds:
    n_patches += x.shape[0]
    assert x.shape[1:] == (96, 64)
    masked = y["mask"].numpy() == 0
    for row in np.flatnonzero(masked.any(axis=1)):
      assert list(np.flatnonzero(masked[row])) == [1, 4]
      n_masked += 1
  assert n_patches == TINY.train_clips * per_clip // 8 * 8  # whole batches only
  assert n_masked == per_clip  # every patch of the target clip, and no other


def test_training_dataset_adds_the_given_positives_and_only_them(tiny_examples):
  """The complete-label reference: known missing labels become positives, unmasked."""
  train_dir, _ = tiny_examples
  clips = {c["clip_id"]: c for c in examples.iterate(train_dir)}
  target = sorted(clips)[5]
  given = np.flatnonzero(clips[target]["positives"])
  absent = [c for c in range(TINY.num_classes) if c not in given][:2]
  added = Entries.from_lists((target,), (tuple(absent),))
  ds = input_pipeline.training_dataset(train_dir, 8, hop_frames=48, repeat=False, seed=0,
                                      targets=Targets(added_positives=added))
  want = {k: c["positives"] for k, c in clips.items()}
  want[target] = want[target].copy()
  want[target][absent] = 1
  rows = {tuple(v) for v in want.values()}
  seen_target = 0
  for _, y in ds:
    assert (y["mask"].numpy() == 1).all()
    for labels in y["labels"].numpy():
      assert tuple(labels) in rows
      seen_target += tuple(labels) == tuple(want[target])
  # Both patches of the target clip (and of any clip whose labels equal its new ones).
  assert seen_target == 2 * sum(tuple(w) == tuple(want[target]) for w in want.values())


def _clip_order(directory, hop_frames, batches, seed, weights=None):
  ds = input_pipeline.training_dataset(directory, 8, hop_frames=hop_frames, seed=seed,
                                      with_clip_ids=True, clip_weights=weights,
                                      deterministic=True)
  return [tuple(y["clip_id"]) for _, y in ds.take(batches).as_numpy_iterator()]


@pytest.mark.parametrize("resampled", [False, True])
def test_deterministic_input_repeats_a_seeds_batches(embedding_examples, tiny_examples,
                                                     resampled):
  """deterministic=True: a seed's batch order is the same on every run, and another seed's
  is not; with clip resampling, so are the draws (keyed by position in the stream)."""
  for directory, hop in ((embedding_examples[0], 1), (tiny_examples[0], 48)):
    ids = [c["clip_id"] for c in examples.iterate(directory)]
    weights = {k: 0.5 for k in ids} if resampled else None
    first = _clip_order(directory, hop, 12, seed=3, weights=weights)
    assert first == _clip_order(directory, hop, 12, seed=3, weights=weights)
    assert first != _clip_order(directory, hop, 12, seed=4, weights=weights)


def test_resampling_keeps_each_clip_at_its_weight(embedding_examples):
  """Over many passes, a clip of weight w is seen about w times a pass (binomial bounds)."""
  ex, source = embedding_examples
  ids = sorted(source)
  weights = {k: (0.25 if i % 2 else 1.0) for i, k in enumerate(ids)}
  passes = 40
  ds = input_pipeline.training_dataset(ex, 8, hop_frames=1, seed=0, repeat=True,
                                      with_clip_ids=True, clip_weights=weights)
  counts = dict.fromkeys(ids, 0)
  want_total = passes * sum(weights.values())
  for _, y in ds.take(int(want_total) // 8).as_numpy_iterator():
    for key in y["clip_id"]:
      counts[key.decode()] += 1
  low = [counts[k] for k in ids if weights[k] < 1]
  high = [counts[k] for k in ids if weights[k] == 1]
  # Each clip's share of the draws is weight / sum(weights); the low-weight clips' mean
  # count against the full-weight clips' is 0.25 (+- a few binomial standard errors).
  ratio = np.mean(low) / np.mean(high)
  assert abs(ratio - 0.25) < 0.05, ratio
