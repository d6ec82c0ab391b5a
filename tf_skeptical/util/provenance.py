"""What an artifact was made from, as short ids, so that consumers can refuse a mismatch.

- `clip_set_id`: the set of clips with their labels (order-independent: a sum of 63-bit
  hashes of "id, positives, explicit negatives", so a Beam job can combine it across
  workers) and its size, e.g. "3000:1f3a...". The labels are in it so that two datasets
  whose clips share names (two generations of the built-in data, say) differ.
- `class_map_id`: the class map's mids in order.
- `file_id`: a file's bytes (a trained model.keras).

Examples record the first two; scores add the model's id; flags carry all three; a student
compares its flags with its train examples, and the sweep compares scores and flags with
its teacher before reusing them.
"""

import hashlib
from typing import Iterable, Sequence

from tf_skeptical.util import files
from tf_skeptical.util.bad_input import DataError

_MOD = 2 ** 63  # hashes and their sums stay within Beam's signed 64-bit integer coder


class ProvenanceMismatch(DataError):
  """An artifact made from something else than what it is used with."""


def clip_hash(clip_id: str, positives=(), explicit_negatives=()) -> int:
  text = "\t".join([clip_id, ",".join(str(int(i)) for i in sorted(set(positives))),
                    ",".join(str(int(i)) for i in sorted(set(explicit_negatives)))])
  return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(),
                        "little") % _MOD


def combine_hashes(hashes: Iterable[int]) -> int:
  """Associative and commutative: partial sums combine in any order (Beam's CombineFn)."""
  return sum(hashes) % _MOD


def clip_set_id_from(count: int, hash_sum: int) -> str:
  return f"{count}:{hash_sum:016x}"


def clip_set_id(clips: Iterable[tuple]) -> str:
  """clips: (clip id, positive indices, explicit-negative indices) of every clip."""
  clips = list(clips)
  return clip_set_id_from(len(clips), combine_hashes(clip_hash(*c) for c in clips))


def class_map_id(mids: Sequence[str]) -> str:
  return f"{len(mids)}:" + hashlib.sha1("\n".join(mids).encode("utf-8")).hexdigest()[:16]


def file_id(path: str, chunk: int = 1 << 22) -> str:
  digest = hashlib.sha256()
  with files.open(path, "rb") as f:
    for block in iter(lambda: f.read(chunk), b""):
      digest.update(block)
  return digest.hexdigest()[:16]


def check_made_from(made_from: dict, name: str, info) -> None:
  """Raises ProvenanceMismatch unless an artifact (its made_from, called `name`) was made
  from the clip set and class map of examples `info` (examples.ExamplesInfo)."""
  for key, what in (("clips_id", "clip set"), ("class_map_id", "class map")):
    check_same(what, made_from.get(key, "unrecorded"), name, info.extra.get(key, "unrecorded"),
               f"train examples {info.directory}")


def check_same(what: str, have: str, have_name: str, want: str, want_name: str) -> None:
  """Raises ProvenanceMismatch naming both artifacts where their ids of `what` differ."""
  if have != want:
    raise ProvenanceMismatch(have_name, f"made from another {what} than {want_name} "
                             f"({have} vs {want})")
