"""The ontology: ancestors on a hand-made tree (conftest.py), propagation against a
hand-worked table, bad files refused, and the simulated set's ontology."""

import json

import numpy as np
import pytest

from tf_skeptical.datasets import audioset_simulation as sim
from tf_skeptical import scoring
from tf_skeptical.data import ontology
from tf_skeptical.util.bad_input import DataError

from conftest import MIDS

# The hand-made tree of conftest.py, class by class.
ANCESTORS = {0: [], 1: [0], 2: [0, 1], 3: [0], 4: [], 5: [], 6: [5, 7], 7: []}


def test_ancestors_of_a_hand_made_tree(tree):
  assert {c: list(a) for c, a in enumerate(tree.ancestors)} == ANCESTORS


def test_propagation_as_worked_by_hand(tree):
  rows = [[2], [6, 4], [], [3, 1], [0]]
  want = [[0, 1, 2], [4, 5, 6, 7], [], [0, 1, 3], [0]]
  indptr, indices = tree.propagate_csr(*scoring.csr_from_lists(
      [np.array(r, np.int64) for r in rows]))
  assert [list(indices[indptr[i]:indptr[i + 1]]) for i in range(len(rows))] == want


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
