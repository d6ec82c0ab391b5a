"""The AudioSet ontology as prior knowledge: a present child makes its ancestors present.

AudioSet's `ontology.json` is a list of nodes `{"id": mid, "name": ..., "child_ids": [mids]}`.
Annotators often gave the child and not the parent (a "Guitar" clip without "Music"), so a
parent's implicit negatives are full of clips whose child is labelled: those are not
missing-label guesses but known positives. YAMNet was trained with labels propagated up
the ontology. Two uses here:

- propagate: a clip's positives gain every ancestor of each positive (training input and
  flagging alike, so the teacher, its flags and the student see the same labels);
- known positives are never flagged: an ancestor of a labelled class is a positive once
  propagated, and without propagation flagging can still leave it out of the candidates.

Ancestors are followed through nodes outside the class map too (AudioSet's abstract
nodes), and restricted to the classes of the map.
"""

import dataclasses
import json
from typing import Dict, List, Sequence

import numpy as np

from tf_skeptical.util import files
from tf_skeptical.util.bad_input import DataError


@dataclasses.dataclass(frozen=True)
class Ontology:
  """ancestors[c]: the class indices of every ancestor of class c (sorted, c excluded)."""

  ancestors: List[np.ndarray]
  path: str = ""

  @property
  def num_classes(self) -> int:
    return len(self.ancestors)

  def matrix(self) -> np.ndarray:
    """[C, C] float32: 1 at [c, a] where a is an ancestor of c."""
    out = np.zeros((self.num_classes, self.num_classes), np.float32)
    for c, a in enumerate(self.ancestors):
      out[c, a] = 1
    return out

  def propagate_csr(self, indptr: np.ndarray, indices: np.ndarray):
    """Clip-major CSR of positives -> the same with every positive's ancestors added
    (each row sorted, without repeats)."""
    import scipy.sparse
    n = len(indptr) - 1
    labels = scipy.sparse.csr_matrix(
        (np.ones(len(indices), np.float32), np.asarray(indices, np.int64), indptr),
        shape=(n, self.num_classes))
    up = scipy.sparse.csr_matrix(self.matrix())
    out = ((labels + labels @ up) > 0).tocsr()
    out.sort_indices()
    return out.indptr.astype(np.int64), out.indices.astype(np.int32)

  def child_count(self) -> int:
    return sum(1 for a in self.ancestors if a.size)


def from_children(children: Dict[str, Sequence[str]], mids: Sequence[str],
                  path: str = "ontology") -> Ontology:
  """From a mid -> child mids map (any nodes) and the class map's mids; a cycle is a
  DataError naming the path."""
  parents: Dict[str, List[str]] = {}
  for parent, kids in children.items():
    for kid in kids:
      parents.setdefault(kid, []).append(parent)
  index = {m: i for i, m in enumerate(mids)}
  memo: Dict[str, frozenset] = {}

  def above(mid, trail):
    if mid in memo:
      return memo[mid]
    if mid in trail:
      raise DataError(path, f"the ontology has a cycle through {mid}")
    out = set()
    for p in parents.get(mid, ()):
      out.add(p)
      out |= above(p, trail | {mid})
    memo[mid] = frozenset(out)
    return memo[mid]

  ancestors = [np.array(sorted(index[a] for a in above(m, frozenset()) if a in index),
                        np.int64) for m in mids]
  return Ontology(ancestors, path)


def read_ontology(path: str, mids: Sequence[str]) -> Ontology:
  """Reads an AudioSet-layout ontology.json for the classes `mids` (the class map's)."""
  if not files.exists(path):
    raise DataError(path, "ontology file does not exist")
  try:
    with files.open(path) as f:
      nodes = json.load(f)
    children = {str(n["id"]): [str(c) for c in n.get("child_ids", [])] for n in nodes}
  except (ValueError, TypeError, KeyError) as e:
    raise DataError(path, f"not an AudioSet-layout ontology (a JSON list of nodes with "
                    f"'id' and 'child_ids'): {e}")
  known = set(children) | {c for kids in children.values() for c in kids}
  if not known & set(mids):
    raise DataError(path, "the ontology names none of the class map's mids: is it the "
                    "ontology of another dataset?")
  return from_children(children, mids, path)


def write_ontology(path: str, mids: Sequence[str], names: Sequence[str],
                   parent: Sequence[int]) -> None:
  """Writes an AudioSet-layout ontology.json where class c's parent is parent[c] (-1:
  none)."""
  kids: Dict[int, List[str]] = {}
  for c, p in enumerate(parent):
    if p >= 0:
      kids.setdefault(int(p), []).append(mids[c])
  nodes = [dict(id=m, name=n, description="", citation_uri="", positive_examples=[],
                child_ids=kids.get(c, []), restrictions=[])
           for c, (m, n) in enumerate(zip(mids, names))]
  with files.atomic_write(path) as f:
    json.dump(nodes, f, indent=1)
