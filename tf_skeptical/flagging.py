"""`flag`: per class, the top-scored implicit negatives are the likely missing labels.

Definitions (tested entry by entry):
- The implicit negatives of class c are the clips where c is neither a positive nor an
  explicit negative; there are n_c of them.
- They are ranked by teacher score, highest first. Ties are broken by clip id (ascending),
  so the ranking is the same however the scores were sharded.
- Rank r (1-based) has percentile 100 * r / n_c.
- Discarding p% of class c flags the top floor(p * n_c / 100) implicit negatives, that is
  ranks r with 100 * r <= p * n_c. Rounding down never flags more than p%; a class with
  fewer than 100 / p implicit negatives has none flagged at p.
- Positives and explicit negatives are never flagged. With an ontology (ontology.py) the
  ancestors of a clip's positives are positives too, so they are never flagged either.
- With min_positives = k, a class with fewer than k train positives gets no flags: its
  teacher has next to nothing to rank by.

Flags are written once, up to max_percent, so a student's --discard_percent=p is the filter
`rank <= floor(p * n_c / 100)` and the whole sweep comes from one ranking.
"""

import csv
import dataclasses
import json
import math
from typing import Iterable, Optional, Sequence

import numpy as np

from tf_skeptical import errors
from tf_skeptical.entries import Entries
from tf_skeptical.util import files, provenance
from tf_skeptical.util.bad_input import DataError

FLAGS_FILE = "flags.npz"
SUMMARY = "summary.csv"
REVIEW = "review.csv"
REVIEW_HEADER = ("clip_id", "mid", "display_name", "score", "percentile", "rank")
# Classes with fewer train positives than this get no flags by default (tfsk_flag
# --min_positives, tfsk_sweep --flag_min_positives) and are listed by the teacher check: a
# teacher that saw a class present that rarely ranks its implicit negatives little better
# than at random, and a class it never saw has no label to miss (experiments/RESULTS.md,
# flag_threshold: measured on three datasets and a class map that the data covers in part).
MIN_POSITIVES = 5
SUMMARY_PERCENTS = (0.1, 0.2, 0.5, 1, 2, 5, 10, 20)
_EPS = 1e-9  # so that p * n / 100 landing on an integer is not lost to rounding


def flag_count(percent: float, num_implicit):
  """How many implicit negatives discarding `percent`% of them flags (rounded down)."""
  return np.floor(np.asarray(num_implicit, np.float64) * percent / 100.0 + _EPS).astype(np.int64)


@dataclasses.dataclass(frozen=True)
class Flags:
  """Flagged (clip, class) entries up to max_percent, sorted by class then rank."""

  clip_ids: np.ndarray  # [N] all scored clips, sorted
  clip: np.ndarray  # [F] int32 index into clip_ids
  cls: np.ndarray  # [F] int16
  rank: np.ndarray  # [F] int32, 1-based among the class's implicit negatives
  score: np.ndarray  # [F] float32
  num_implicit: np.ndarray  # [C] int64
  max_percent: float
  made_from: dict = dataclasses.field(default_factory=dict)  # see Entries
  # [C] int64: each class's train positives (after the ontology), or None in flags files
  # written before it was recorded. A class without any cannot have a missing label among
  # these clips: flag quality is reported over the classes that have some.
  num_positives: Optional[np.ndarray] = None

  @property
  def percentile(self) -> np.ndarray:
    """[F] float32: 100 * rank / the class's implicit negatives (in chunks: at AudioSet's
    p = 20% a float64 temporary of every flag would be 1.7 GB)."""
    out = np.empty(self.rank.size, np.float32)
    for a in range(0, out.size, 1 << 22):
      b = a + (1 << 22)
      out[a:b] = 100.0 * self.rank[a:b] / np.maximum(self.num_implicit[self.cls[a:b]], 1)
    return out

  def selected(self, percent: float) -> np.ndarray:
    """Boolean [F]: the entries flagged when discarding `percent`%."""
    _check_percent(percent, self.max_percent)
    return self.rank <= flag_count(percent, self.num_implicit)[self.cls]

  def entries(self, percent: float, with_scores: bool = False) -> Entries:
    """The entries flagged at `percent`, grouped by clip (arrays throughout), with their
    teacher scores if asked."""
    return _entries(self.clip_ids, self.clip, self.cls, self.num_implicit, self.max_percent,
                     percent, self.made_from, self.score if with_scores else None)


def _check_percent(percent: float, max_percent: float) -> None:
  if not percent >= 0:  # also NaN
    raise errors.BadValue(f"a discard percentage must be in [0, {max_percent}], got {percent}")
  if percent > max_percent + _EPS:
    raise errors.BadValue(f"flags were written up to {max_percent}%, not {percent}%: "
                     "re-run flagging with a larger --max_percent")


def _entries(clip_ids, clip, cls, num_implicit, max_percent, percent, made_from,
              score=None) -> Entries:
  """Flags (sorted by class, then rank 1, 2, ...) -> the Entries at `percent`. A class's
  flags at `percent` are the first flag_count of its block, so the selection is a list of
  slices; the regrouping by clip is a CSR transpose (scipy, int32 indices). At AudioSet's
  p = 20% (2e8 flags) this needs no per-flag temporary wider than 4 bytes (an argsort's int64
  order and a per-flag int64 count were 3.2 GB of them). score: the flags' teacher scores,
  carried along (0.8 GB more at that size), or None."""
  import scipy.sparse
  _check_percent(percent, max_percent)
  num_classes, num_clips = len(num_implicit), len(clip_ids)
  bounds = np.searchsorted(cls, np.arange(num_classes + 1))
  take = np.minimum(flag_count(percent, num_implicit), np.diff(bounds))
  def selection(values):
    if int(take.sum()) == values.size:
      return values
    return np.concatenate([values[bounds[c]:bounds[c] + take[c]] for c in range(num_classes)]
                          + [np.zeros(0, values.dtype)])

  chosen = selection(clip)
  data = (np.ones(chosen.size, bool) if score is None
          else selection(np.asarray(score, np.float32)))
  by_class = scipy.sparse.csr_matrix(
      (data, chosen.astype(np.int32, copy=False), np.r_[0, np.cumsum(take)]),
      shape=(num_classes, num_clips))
  by_clip = by_class.tocsc()  # indices: the classes of each clip, ascending
  del by_class, chosen, data
  counts = np.diff(by_clip.indptr)
  listed = np.flatnonzero(counts)
  return Entries(clip_ids[listed], np.r_[0, np.cumsum(counts[listed])].astype(np.int64),
                  by_clip.indices.astype(np.int32, copy=False), dict(made_from),
                  None if score is None else by_clip.data.astype(np.float32, copy=False))


def class_lists(indptr: np.ndarray, indices: np.ndarray, num_classes: int):
  """Clip-major CSR -> for each class, the clip indices listing it."""
  clips = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
  if indices.size and (indices.min() < 0 or indices.max() >= num_classes):
    raise DataError("labels", f"a label index is outside 0..{num_classes - 1}")
  order = np.argsort(indices, kind="stable")
  bounds = np.searchsorted(indices[order], np.arange(num_classes + 1))
  return [clips[order[bounds[c]:bounds[c + 1]]] for c in range(num_classes)]


def implicit_negatives(num_clips: int, positives_by_class, explicit_by_class):
  """Yields (class, the clip indices that are neither its positives nor its explicit
  negatives), class by class, from class_lists of each."""
  implicit = np.empty(num_clips, bool)
  for c, (pos, neg) in enumerate(zip(positives_by_class, explicit_by_class)):
    implicit[:] = True
    implicit[pos] = False
    implicit[neg] = False
    yield c, np.flatnonzero(implicit)


def unscored(scores: np.ndarray) -> np.ndarray:
  """[C] bool: the classes a teacher gave no scores (NaN throughout: scoring.py writes them
  for the classes a pretrained teacher does not know)."""
  if scores.shape[0] == 0:
    return np.zeros(scores.shape[1], bool)
  candidates = np.flatnonzero(np.isnan(scores[0]))
  out = np.zeros(scores.shape[1], bool)
  out[candidates] = [bool(np.isnan(scores[:, c]).all()) for c in candidates]
  return out


def rank_implicit_negatives(clip_ids: np.ndarray, scores: np.ndarray, positives: tuple,
                            explicit_negatives: tuple, max_percent: float = 20.0,
                            min_positives: int = 0) -> Flags:
  """Ranks each class's implicit negatives and keeps the top max_percent (none for a class
  with fewer than min_positives positives).

  clip_ids must be sorted (ties break by clip index = clip id); scores [N, C] is best
  column-major; positives / explicit_negatives are clip-major CSR (indptr, indices).
  """
  n, num_classes = scores.shape
  if not 0 < max_percent <= 100:
    raise errors.BadValue(f"max_percent must be in (0, 100], got {max_percent}")
  if num_classes > np.iinfo(np.int16).max:
    raise errors.BadValue(f"at most {np.iinfo(np.int16).max} classes, got {num_classes}")
  pos = class_lists(*positives, num_classes)
  neg = class_lists(*explicit_negatives, num_classes)
  # Outputs are allocated once at their final size: at AudioSet scale and 20% they are
  # ~0.7x the scores, and growing them piecewise would double that.
  num_implicit = np.array([n - np.union1d(pos[c], neg[c]).size for c in range(num_classes)],
                          np.int64)
  num_positives = np.array([len(p) for p in pos], np.int64)
  counts = flag_count(max_percent, num_implicit)
  counts[num_positives < min_positives] = 0
  counts[unscored(scores)] = 0  # classes the teacher does not know (a pretrained teacher)
  offsets = np.r_[0, np.cumsum(counts)]
  total = int(offsets[-1])
  out_clip = np.empty(total, np.int32)
  out_cls = np.repeat(np.arange(num_classes, dtype=np.int16), counts)
  out_rank = np.empty(total, np.int32)
  out_score = np.empty(total, np.float32)
  for c, candidates in implicit_negatives(n, pos, neg):
    k = int(counts[c])
    if k == 0:
      continue
    s = scores[candidates, c]
    if k < candidates.size:
      threshold = -np.partition(-s, k - 1)[k - 1]  # the k-th highest score
      above = s > threshold
      at = np.flatnonzero(s == threshold)[:k - int(above.sum())]  # ties: lowest clip first
      chosen = np.sort(np.r_[np.flatnonzero(above), at])
    else:
      chosen = np.arange(candidates.size)
    top = chosen[np.lexsort((chosen, -s[chosen]))]  # score descending, then clip index
    a, b = offsets[c], offsets[c + 1]
    out_clip[a:b] = candidates[top]
    out_rank[a:b] = np.arange(1, k + 1)
    out_score[a:b] = s[top]
  return Flags(np.asarray(clip_ids), out_clip, out_cls, out_rank, out_score, num_implicit,
               float(max_percent), num_positives=num_positives)


def write_flags(flags: Flags, path: str) -> None:
  """Writes flags as .npz (atomically: a temporary name, renamed when complete)."""
  with files.local_output(path) as tmp:
    np.savez(tmp, clip_ids=flags.clip_ids, clip=flags.clip, cls=flags.cls, rank=flags.rank,
             score=flags.score, percentile=flags.percentile, num_implicit=flags.num_implicit,
             max_percent=np.float64(flags.max_percent),
             made_from=np.str_(json.dumps(flags.made_from)),
             **({} if flags.num_positives is None else dict(num_positives=flags.num_positives)))


def _read_arrays(path: str, names: Sequence[str]):
  """The named arrays of a flags file, and what the flags were made from."""
  if not files.exists(path):
    raise DataError(path, "flags file does not exist (run tfsk_flag first)")
  try:
    with files.open(path, "rb") as f, np.load(f, allow_pickle=False) as z:
      made_from = json.loads(str(z["made_from"])) if "made_from" in z.files else {}
      return [z[n] if n in z.files or n not in OPTIONAL_ARRAYS else None
              for n in names], dict(made_from, flags=path)
  except (KeyError, ValueError, OSError) as e:
    raise DataError(path, f"not a flags file written by tfsk_flag ({e})")


OPTIONAL_ARRAYS = ("num_positives",)  # absent from older flags files


def read_flags(path: str) -> Flags:
  arrays, made_from = _read_arrays(path, ("clip_ids", "clip", "cls", "rank", "score",
                                          "num_implicit", "max_percent", "num_positives"))
  return Flags(*arrays[:6], float(arrays[6]), made_from, arrays[7])


def load_entries(path: str, percent: float, with_scores: bool = False) -> Optional[Entries]:
  """The entries flagged at `percent` (None at 0: nothing is flagged). Reads only the
  arrays that say which entries (not the ranks, nor the scores unless with_scores: 0.8 GB
  each at AudioSet's p = 20%)."""
  if not percent >= 0:  # also NaN
    raise errors.BadValue(f"a discard percentage must be >= 0, got {percent}")
  if percent == 0:
    return None
  names = ("clip_ids", "clip", "cls", "num_implicit", "max_percent") + (
      ("score",) if with_scores else ())
  arrays, made_from = _read_arrays(path, names)
  clip_ids, clip, cls, num_implicit, max_percent = arrays[:5]
  return _entries(clip_ids, clip, cls, num_implicit, float(max_percent), percent, made_from,
                   arrays[5] if with_scores else None)


def write_summary(flags: Flags, class_names: Sequence[str], path: str,
                  percents: Iterable[float] = SUMMARY_PERCENTS) -> None:
  """Per class: implicit negatives and how many are flagged at each percent."""
  percents = [p for p in percents if p <= flags.max_percent + _EPS]
  with files.atomic_write(path) as f:
    writer = csv.writer(f)
    writer.writerow(["index", "display_name", "implicit_negatives"]
                    + [f"flagged_at_{p:g}%" for p in percents])
    counts = [flag_count(p, flags.num_implicit) for p in percents]
    for c, name in enumerate(class_names):
      writer.writerow([c, name, int(flags.num_implicit[c])] + [int(k[c]) for k in counts])


def write_review(flags: Flags, mids: Sequence[str], class_names: Sequence[str], path: str,
                 percent: float = 1.0, limit: int = 0) -> int:
  """The candidates flagged at `percent`, for a human to listen to: highest teacher score
  first, so the likeliest missing labels come first whatever their class. (Ordering by
  rank percentile put each class's top entry first, and in classes the teacher barely
  knows those have scores near zero.) Flags written up to less than `percent` give all of
  theirs; returns the rows written."""
  from tf_skeptical.review import queue
  percentile = flags.percentile  # an array over every flag: computed once, not per row
  order = queue.candidates(flags, percent, queue.TEACHER)
  if limit:
    order = order[:limit]
  with files.atomic_write(path) as f:
    writer = csv.writer(f)
    writer.writerow(REVIEW_HEADER)
    for i in order:
      c = flags.cls[i]
      writer.writerow([flags.clip_ids[flags.clip[i]], mids[c], class_names[c],
                       f"{flags.score[i]:.5f}", f"{percentile[i]:.4f}", flags.rank[i]])
  return len(order)


def flag_scores(scores, max_percent: float = 20.0, ontology=None,
                min_positives: int = MIN_POSITIVES) -> Flags:
  """Flags from a read scores directory (scoring.Scores), recording what they were made
  from. ontology (ontology.Ontology): the positives' ancestors are positives, never flagged.
  min_positives: classes with fewer train positives (after the ontology) get no flags."""
  positives = (scores.positives if ontology is None else
               ontology.propagate_csr(*scores.positives))
  flags = rank_implicit_negatives(scores.clip_ids, scores.scores, positives,
                                  scores.explicit_negatives, max_percent, min_positives)
  m = scores.manifest
  (pp, pos), (nn, neg) = scores.positives, scores.explicit_negatives
  return dataclasses.replace(flags, made_from=dict(
      clips_id=provenance.clip_set_id(
          (clip_id, pos[pp[i]:pp[i + 1]], neg[nn[i]:nn[i + 1]])
          for i, clip_id in enumerate(scores.clip_ids)),
      class_map_id=m.get("class_map_id"),
      model_id=m.get("model_id"), scores_model=m.get("model"), examples=m.get("examples"),
      ontology=ontology.path if ontology is not None else None,
      min_positives=int(min_positives)))


def percent_grid(text: str) -> list:
  """'0,0.1,0.2' -> [0.0, 0.1, 0.2]; 'paper' -> the paper's grid."""
  if text.strip() == "paper":
    return [0.0] + [round(0.1 * i, 1) for i in range(1, 10)] + [float(i) for i in range(1, 21)]
  try:
    values = sorted({float(x) for x in text.split(",") if x.strip()})
  except ValueError:
    raise errors.BadValue(f"percentages must be numbers, comma-separated, or 'paper': "
                          f"{text!r}") from None
  if any(v < 0 or v > 100 or math.isnan(v) for v in values):
    raise errors.BadValue(f"percentages must be in [0, 100]: {text!r}")
  return values
