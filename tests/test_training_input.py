"""The training input for embedding examples, which parses, filters and labels whole
batches: every batch row against a reference computed from the source records in numpy."""

import glob

import numpy as np
import pytest
import tensorflow as tf

from tf_skeptical import (audioset_embeddings, audioset_simulation as sim, flagging, folds,
                          input_pipeline, prepare)

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
  return flagging.Discards.from_lists(
      chosen, [tuple(np.flatnonzero(rng.random(NUM_CLASSES) < 0.3)) for _ in chosen])


@pytest.mark.parametrize("fold_count", [0, 3])
def test_embedding_batches_match_the_source_records(embedding_examples, fold_count):
  ex, source = embedding_examples
  rng = np.random.default_rng(fold_count)
  ids = sorted(source)
  discards = _random_entries(rng, ids, 0.5)
  added = _random_entries(rng, ids, 0.2)
  fold = folds.Fold(1, fold_count) if fold_count else None
  ds = input_pipeline.training_dataset(ex, 7, hop_frames=1, discards=discards,
                                      add_positives=added, exclude_fold=fold, repeat=False,
                                      seed=0, with_implicit=True, with_clip_ids=True)

  def entries(d):
    out = {}
    for i, k in enumerate(d.clip_ids):
      out[str(k)] = d.classes_of(i)
    return out
  masked, positive = entries(discards), entries(added)
  expected = set(ids)
  if fold:
    expected -= {k for k, f in zip(ids, folds.fold_of(ids, fold_count)) if f == 1}
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


def test_mask_lookup_takes_a_batch_of_ids(embedding_examples):
  _, source = embedding_examples
  ids = sorted(source)[:30]
  d = _random_entries(np.random.default_rng(9), ids, 0.6)
  lookup = input_pipeline.mask_lookup(d, NUM_CLASSES)
  want = np.ones((len(ids), NUM_CLASSES), np.float32)
  for i, k in enumerate(d.clip_ids):
    want[ids.index(str(k)), d.classes_of(i)] = 0
  np.testing.assert_array_equal(lookup(tf.constant(ids)).numpy(), want)
  np.testing.assert_array_equal(lookup(tf.constant([ids[:15], ids[15:]])).numpy(),
                                want.reshape(2, 15, NUM_CLASSES))
