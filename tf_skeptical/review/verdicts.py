"""The verdicts file: a listening test's answers, data that must not be lost.

A CSV, appended to and never rewritten: each answer is one line written with one write()
under an exclusive lock (fcntl), flushed and fsynced before the page moves on, so that a
killed server loses no answer it acknowledged and two tabs (or two servers) on the same
file never overwrite each other. Answering an entry again ("Back") appends another line:
the last answer of an entry counts.

    # tf_skeptical verdicts {"flags": ..., "flags_id": ..., "class_map_id": ..., "clips_id": ...}
    clip_id,mid,display_name,verdict,teacher_score,rank,answered_at
    train000017,/m/0bt9lr,Dog,present,0.81234,3,2026-12-07T06:40:12Z

The first line records which flags (their file id) and which class map and clip set the
answers are about: tfsk_review refuses to go on with a file made for other flags, and a
student refuses one made for other train examples. verdict: present (a missing label
confirmed: trained as a positive), absent (rejected: an explicit negative, never
flagged), unsure (counted as reviewed, changes nothing).
"""

import contextlib
import csv
import dataclasses
import datetime
import fcntl
import hashlib
import io
import json
import os
from typing import Dict, Iterable, Optional, Sequence

from tf_skeptical import errors
from tf_skeptical.entries import Entries
from tf_skeptical.util import files

PRESENT, ABSENT, UNSURE = "present", "absent", "unsure"
VERDICTS = (PRESENT, ABSENT, UNSURE)
MAGIC = "# tf_skeptical verdicts "
HEADER = ["clip_id", "mid", "display_name", "verdict", "teacher_score", "rank", "answered_at"]
MADE_FROM_KEYS = ("flags", "flags_id", "class_map_id", "clips_id")
ID = "verdicts_id"  # the key of Verdicts.answers_id() in the entries' made_from


@dataclasses.dataclass(frozen=True)
class Answer:
  clip_id: str
  mid: str
  display_name: str
  verdict: str
  teacher_score: float
  rank: int
  answered_at: str = ""

  def row(self) -> list:
    return [self.clip_id, self.mid, self.display_name, self.verdict,
            f"{self.teacher_score:.5f}", self.rank,
            self.answered_at or datetime.datetime.now(datetime.timezone.utc).strftime(
                "%Y-%m-%dT%H:%M:%SZ")]


@dataclasses.dataclass(frozen=True)
class Verdicts:
  """The last answer of every answered entry, in the order first answered."""

  path: str
  made_from: dict
  answers: Dict[tuple, Answer]  # (clip id, mid) -> its last answer
  lines: int  # answers in the file, re-answers included

  def count(self, verdict: str) -> int:
    return sum(a.verdict == verdict for a in self.answers.values())

  def counts(self) -> dict:
    return {v: self.count(v) for v in VERDICTS}

  def entries(self, mids: Sequence[str]) -> Entries:
    """The present and absent answers as Entries of the class map `mids` (scores: 1
    present, 0 absent), what a student is told (targets.Targets.reviewed); unsure ones are
    left out."""
    index = {mid: i for i, mid in enumerate(mids)}
    by_clip: Dict[str, list] = {}
    for (clip_id, mid), a in self.answers.items():
      if a.verdict != UNSURE:
        by_clip.setdefault(clip_id, []).append((index[mid], 1.0 if a.verdict == PRESENT else 0.0))
    ids = sorted(by_clip)
    made_from = {k: self.made_from.get(k) for k in ("clips_id", "class_map_id")}
    made_from["flags"] = f"verdicts {files.absolute(self.path)}"
    made_from[ID] = self.answers_id()
    return Entries.from_lists(ids, [[c for c, _ in by_clip[i]] for i in ids], made_from,
                              [[v for _, v in by_clip[i]] for i in ids])


  def answers_id(self) -> str:
    """What the answers say, as an id: the same present and absent answers give the same
    id, whatever the file's name, the order answered or the re-answers. A run made with
    other answers (or none) differs by it, and a resumed sweep trains it again
    (sweep/runs.py)."""
    said = sorted(f"{c}\t{m}\t{a.verdict}" for (c, m), a in self.answers.items()
                  if a.verdict != UNSURE)
    return f"{len(said)}:" + hashlib.sha1("\n".join(said).encode("utf-8")).hexdigest()[:16]


def answered(path: str, mids: Sequence[str],
             clip_ids: Optional[Sequence[str]] = None) -> Entries:
  """The present and absent answers of a verdicts file as Entries of the class map `mids`
  (read() then Verdicts.entries): what a student is told (targets.Targets.reviewed)."""
  return read(path, mids, clip_ids).entries(mids)


def _header_line(made_from: dict) -> str:
  return MAGIC + json.dumps({k: made_from.get(k) for k in MADE_FROM_KEYS}) + "\n"


@contextlib.contextmanager
def _locked(path: str):
  """The file open for appending, under an exclusive lock (held across processes)."""
  fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
  try:
    fcntl.flock(fd, fcntl.LOCK_EX)
    yield fd
  finally:
    os.close(fd)  # releases the lock


def open_for(path: str, made_from: dict, mids: Optional[Sequence[str]] = None,
             clip_ids: Optional[Sequence[str]] = None) -> "Verdicts":
  """Starts a verdicts file for made_from's flags, or reads the one there (its rows checked
  as `read` checks them): refused when it answers other flags, another class map or clip
  set (errors.BadValue)."""
  with _locked(path) as fd:
    if os.fstat(fd).st_size == 0:
      text = _header_line(made_from) + ",".join(HEADER) + "\n"
      os.write(fd, text.encode("utf-8"))
      os.fsync(fd)
  return read(path, mids, clip_ids, answers_for=made_from)


def append(path: str, answers: Iterable[Answer]) -> None:
  """Appends the answers in one write, durably (fsync) before returning."""
  buffer = io.StringIO()
  writer = csv.writer(buffer, lineterminator="\n")
  for a in answers:
    if a.verdict not in VERDICTS:
      raise errors.BadValue(f"verdict {a.verdict!r} is none of {', '.join(VERDICTS)}")
    writer.writerow(a.row())
  data = buffer.getvalue().encode("utf-8")
  with _locked(path) as fd:
    os.write(fd, data)
    os.fsync(fd)


def read(path: str, mids: Optional[Sequence[str]] = None,
         clip_ids: Optional[Sequence[str]] = None,
         answers_for: Optional[dict] = None) -> Verdicts:
  """Reads a verdicts file; with the class map's mids (and clip_ids), refuses a mid it
  lacks (a clip id not among clip_ids) in one line naming the file and row; with
  answers_for (what open_for's flags were made from), first refuses a file made for other
  flags, class map or clip set (errors.BadValue)."""
  if not files.exists(path):
    raise errors.BadValue(f"{path}: no such verdicts file (tfsk_review writes it)")
  with files.open(path, "r") as f:
    text = f.read()
  if not text.startswith(MAGIC):
    raise errors.BadValue(f"{path}: not a verdicts file (its first line should start with "
                          f"{MAGIC.strip()!r}; tfsk_review writes it)")
  first, _, rest = text.partition("\n")
  try:
    made_from = json.loads(first[len(MAGIC):])
  except json.JSONDecodeError as e:
    raise errors.BadValue(f"{path}: row 1: unreadable header ({e})") from e
  for key, what in (("flags_id", "flags"), ("class_map_id", "class map"),
                    ("clips_id", "clip set")):
    if answers_for is not None and made_from.get(key) != answers_for.get(key):
      raise errors.BadValue(
          f"{path}: these verdicts answer other {what} ({made_from.get('flags')}, "
          f"{key} {made_from.get(key)} vs {answers_for.get(key)}): give --verdicts a "
          "new file for these flags (the file is kept as it is)")
  if rest and not rest.endswith("\n"):
    raise errors.BadValue(f"{path}: row {text.count(chr(10)) + 1}: the last row is cut "
                          "short (not ended by a newline): remove it and review that "
                          "candidate again")
  known_mids = set(mids) if mids is not None else None
  known_clips = set(clip_ids) if clip_ids is not None else None
  answers: Dict[tuple, Answer] = {}
  lines = 0
  reader = csv.reader(io.StringIO(rest))
  for n, row in enumerate(reader, start=2):
    if n == 2:
      if row != HEADER:
        raise errors.BadValue(f"{path}: row 2: the column names should be "
                              f"{','.join(HEADER)}")
      continue
    where = f"{path}: row {n}"
    if len(row) != len(HEADER):
      raise errors.BadValue(f"{where}: {len(row)} fields, a verdict has {len(HEADER)} "
                            f"({','.join(HEADER)})")
    clip_id, mid, name, verdict, score, rank, when = row
    if verdict not in VERDICTS:
      raise errors.BadValue(f"{where}: verdict {verdict!r} is none of {', '.join(VERDICTS)}")
    try:
      score_value, rank_value = float(score), int(rank)
    except ValueError as e:
      raise errors.BadValue(f"{where}: teacher_score {score!r} or rank {rank!r} is not a "
                            "number") from e
    if known_mids is not None and mid not in known_mids:
      raise errors.BadValue(f"{where}: class {mid} ({name}) is not in the class map")
    if known_clips is not None and clip_id not in known_clips:
      raise errors.BadValue(f"{where}: clip {clip_id} is not in the train set")
    key = (clip_id, mid)
    answers.pop(key, None)  # a re-answer moves to the end
    answers[key] = Answer(clip_id, mid, name, verdict, score_value, rank_value, when)
    lines += 1
  return Verdicts(path, made_from, answers, lines)
