"""The ontology: ancestors on a hand-made tree, propagation against a hand-worked table,
flags that never fall on a labelled class's ancestors, and the simulated set's ontology."""

import json

import numpy as np
import pytest

from tf_skeptical.datasets import audioset_simulation as sim
from tf_skeptical import flagging, scoring
from tf_skeptical.data import ontology
from tf_skeptical.util.bad_input import DataError

# /m/root (not a class) -> Music (0) -> Guitar (1) -> Electric guitar (2); Music -> Drum (3);
# Speech (4) alone; Animal (5) -> Dog (6), and Dog also under Pets (7): two parents.
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
ANCESTORS = {0: [], 1: [0], 2: [0, 1], 3: [0], 4: [], 5: [], 6: [5, 7], 7: []}


@pytest.fixture
def tree(tmp_path):
  path = tmp_path / "ontology.json"
  path.write_text(json.dumps(NODES))
  return ontology.read_ontology(str(path), MIDS)


def test_ancestors_of_a_hand_made_tree(tree):
  assert {c: list(a) for c, a in enumerate(tree.ancestors)} == ANCESTORS


def test_propagation_as_worked_by_hand(tree):
  rows = [[2], [6, 4], [], [3, 1], [0]]
  want = [[0, 1, 2], [4, 5, 6, 7], [], [0, 1, 3], [0]]
  indptr, indices = tree.propagate_csr(*scoring.csr_from_lists(
      [np.array(r, np.int64) for r in rows]))
  assert [list(indices[indptr[i]:indptr[i + 1]]) for i in range(len(rows))] == want


def test_flags_never_fall_on_ancestors_of_labelled_classes(tree):
  rng = np.random.default_rng(0)
  n = 200
  ids = np.array([f"c{i:04d}" for i in range(n)])
  rows = [np.array(rng.choice(8, rng.integers(0, 3), replace=False), np.int64)
          for _ in range(n)]
  pos = scoring.csr_from_lists(rows)
  empty = scoring.csr_from_lists([np.zeros(0, np.int64)] * n)
  # The teacher scores each class high wherever a child is labelled: the likeliest flags.
  scores = rng.random((n, 8)).astype(np.float32)
  for i, r in enumerate(rows):
    for c in r:
      scores[i, tree.ancestors[c]] = 1.0
  s = scoring.Scores(ids, np.asfortranarray(scores), pos, empty, {})
  known = {(i, a) for i, r in enumerate(rows) for c in r for a in tree.ancestors[c]}
  with_tree = flagging.flag_scores(s, 20.0, tree)
  flagged = set(zip(with_tree.clip.tolist(), with_tree.cls.tolist()))
  assert flagged and not flagged & known
  without = flagging.flag_scores(s, 20.0)
  assert set(zip(without.clip.tolist(), without.cls.tolist())) & known
  assert with_tree.made_from["ontology"] == tree.path


def test_min_positives_leaves_few_positive_classes_unflagged():
  n = 100
  ids = np.array([f"c{i:03d}" for i in range(n)])
  rows = [np.array([0] if i < 10 else ([1] if i < 12 else []), np.int64) for i in range(n)]
  empty = scoring.csr_from_lists([np.zeros(0, np.int64)] * n)
  scores = np.asfortranarray(np.random.default_rng(1).random((n, 3)).astype(np.float32))
  s = scoring.Scores(ids, scores, scoring.csr_from_lists(rows), empty, {})
  flags = flagging.flag_scores(s, 10.0, min_positives=5)
  assert sorted(set(flags.cls.tolist())) == [0]  # 10 positives; class 1 has 2, class 2 none
  assert len(flagging.flag_scores(s, 10.0).cls) == 9 + 9 + 10


def test_bad_ontologies_are_refused(tmp_path):
  bad = tmp_path / "bad.json"
  bad.write_text("{not json")
  with pytest.raises(DataError, match="bad.json.*AudioSet-layout"):
    ontology.read_ontology(str(bad), MIDS)
  other = tmp_path / "other.json"
  other.write_text(json.dumps([{"id": "/x/1", "child_ids": []}]))
  with pytest.raises(DataError, match="none of the class map"):
    ontology.read_ontology(str(other), MIDS)
  cycle = tmp_path / "cycle.json"
  cycle.write_text(json.dumps([{"id": "/m/music", "child_ids": ["/m/guitar"]},
                               {"id": "/m/guitar", "child_ids": ["/m/music"]}]))
  with pytest.raises(DataError, match="cycle"):
    ontology.read_ontology(str(cycle), MIDS)


def test_simulated_set_writes_its_ontology(tmp_path):
  p = sim.SimulationParams(train_clips=50, eval_clips=10, num_classes=20, child_share=0.5,
                           clips_per_shard=50, chunk=50, smallest_class=0.05, seed=2)
  summary = sim.generate(str(tmp_path), p)
  mids = [f"/sim/{c:03d}" for c in range(20)]
  tree = ontology.read_ontology(str(tmp_path / sim.ONTOLOGY), mids)
  parents = {int(c): p for c, p in summary["parents"].items()}
  assert parents
  for c in range(20):
    chain, k = [], c
    while k in parents:
      k = parents[k]
      chain.append(k)
    assert sorted(tree.ancestors[c]) == sorted(chain)
