"""A set of (clip, class) entries of the label matrix, grouped by clip: the teacher's flags
at one p, the known missing labels of an experiment, later a reviewer's verdicts.

Arrays, not per-entry Python objects (CSR by clip): the classes of clip_ids[i] are
classes[indptr[i]:indptr[i + 1]]. At AudioSet's size and p = 20% there are about 2e8.
"""

import dataclasses
from typing import Optional, Sequence

import numpy as np

from tf_skeptical.util import provenance


@dataclasses.dataclass(frozen=True)
class Entries:
  """made_from: what the entries were made from (clip set, class map, the teacher's model
  id; provenance.py), which a student checks against its train examples. scores: a value
  per entry, parallel to classes (the teacher's score of a flag), where one is needed."""

  clip_ids: np.ndarray  # [K] str: the clips with at least one entry
  indptr: np.ndarray  # [K + 1] int64
  classes: np.ndarray  # [indptr[-1]] int32
  made_from: dict = dataclasses.field(default_factory=dict)
  scores: Optional[np.ndarray] = None  # [indptr[-1]] float32, or None

  @classmethod
  def from_lists(cls, clip_ids: Sequence[str], classes: Sequence[Sequence[int]],
                 made_from: Optional[dict] = None,
                 scores: Optional[Sequence[Sequence[float]]] = None) -> "Entries":
    """From per-clip class lists (and, optionally, score lists): small cases and tests."""
    lengths = [len(c) for c in classes]
    return cls(np.asarray(clip_ids, dtype=str), np.r_[0, np.cumsum(lengths)].astype(np.int64),
               np.asarray([k for c in classes for k in c], np.int32), dict(made_from or {}),
               None if scores is None else
               np.asarray([v for s in scores for v in s], np.float32))

  @property
  def count(self) -> int:
    return int(self.indptr[-1])

  def classes_of(self, i: int) -> np.ndarray:
    return self.classes[self.indptr[i]:self.indptr[i + 1]]

  def check_examples(self, info) -> None:
    """Raises ProvenanceMismatch unless the entries were made from info's clip set and
    class map (examples.ExamplesInfo): entries of other clips would treat the wrong
    entries, or none."""
    provenance.check_made_from(self.made_from, f"flags {self.made_from.get('flags', '')}".strip(),
                               info)
