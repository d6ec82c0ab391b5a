"""A listening test over a flags directory: the candidates in their order, what the page
shows of each (class and ontology path, the teacher's score and rank, the clip's labels, its
audio from the patch the teacher scored highest, its log-mel picture), and the answers,
appended to the verdicts file before the page moves on (verdicts.py).

Everything is found from the flags: they record the examples they were scored from, whose
manifest names the segments CSV and the audio folder (as tfsk_export finds its calibration
audio), and the teacher that scored them (to find each candidate's best patch).
"""

import dataclasses
import io
import os
import threading
from typing import Dict, Optional

import numpy as np

from tf_skeptical import errors, flagging
from tf_skeptical.data import examples
from tf_skeptical.review import queue, verdicts
from tf_skeptical.util import files, provenance


@dataclasses.dataclass(frozen=True)
class ReviewConfig:
  percent: float = 0.0  # the candidates: the flags at this p (0: all the flags hold)
  order: str = queue.TEACHER
  max_candidates: int = 2000  # a test takes at most this many (their log-mel is held)
  ontology: str = ""  # ontology.json, for the class's path in the ontology


def flags_file(flags_path: str) -> str:
  """flags.npz, given it or its directory."""
  return (os.path.join(flags_path, flagging.FLAGS_FILE) if files.isdir(flags_path)
          else flags_path)


def made_from(flags: flagging.Flags, flags_path: str) -> dict:
  """What a verdicts file records of the flags it answers."""
  return dict(flags=files.absolute(flags_path), flags_id=provenance.file_id(flags_path),
              class_map_id=flags.made_from.get("class_map_id"),
              clips_id=flags.made_from.get("clips_id"))


class Session:
  """One listening test: candidates, their clips, and the verdicts file. Thread-safe: the
  server answers several requests at once."""

  def __init__(self, flags_path: str, verdicts_path: str, cfg: ReviewConfig = ReviewConfig(),
               examples_dir: Optional[str] = None):
    self.flags_path = flags_file(flags_path)
    self.flags = flagging.read_flags(self.flags_path)
    self.examples_dir = examples_dir or self.flags.made_from.get("examples")
    if not self.examples_dir or not files.exists(
        os.path.join(self.examples_dir, examples.MANIFEST)):
      raise errors.BadValue(f"{self.flags_path}: the examples it was scored from "
                            f"({self.examples_dir}) are not there: give --examples")
    self.info = examples.read_info(self.examples_dir)
    provenance.check_made_from(self.flags.made_from, f"flags {self.flags_path}", self.info)
    self.class_map = self.info.class_map
    self.verdicts_path = verdicts_path
    self._lock = threading.Lock()
    self._verdicts = verdicts.open_for(verdicts_path, made_from(self.flags, self.flags_path),
                                       self.class_map.mids, self.flags.clip_ids)
    percent = cfg.percent or self.flags.max_percent
    self.order = queue.candidates(self.flags, percent, cfg.order)[:cfg.max_candidates]
    self.percent = min(percent, self.flags.max_percent)
    self.cfg = cfg
    self._ancestors = None
    if cfg.ontology:
      from tf_skeptical.data import ontology
      self._ancestors = ontology.read_ontology(cfg.ontology, self.class_map.mids).ancestors
    self._clips = self._read_clips()
    self._audio = _audio_files(self.info)
    self._teacher = None
    self._teacher_error = ""

  def _read_clips(self) -> Dict[str, dict]:
    """The candidates' clips (features and labels) in one pass over the examples."""
    wanted = {str(self.flags.clip_ids[self.flags.clip[i]]) for i in self.order}
    return {c["clip_id"]: c for c in examples.iterate(self.examples_dir)
            if c["clip_id"] in wanted}

  # -- what the page shows ------------------------------------------------------------

  def entry(self, pos: int):
    i = self.order[pos]
    return (str(self.flags.clip_ids[self.flags.clip[i]]), int(self.flags.cls[i]),
            float(self.flags.score[i]), int(self.flags.rank[i]))

  def counts(self) -> dict:
    with self._lock:
      answers = self._verdicts.answers
      asked = {self.key(p) for p in range(len(self.order))}
      done = [answers[k].verdict for k in asked if k in answers]
    present, absent = done.count(verdicts.PRESENT), done.count(verdicts.ABSENT)
    return dict(total=len(self.order), reviewed=len(done), present=present, absent=absent,
                unsure=done.count(verdicts.UNSURE), left=len(self.order) - len(done),
                precision=present / (present + absent) if present + absent else None)

  def key(self, pos: int) -> tuple:
    clip_id, c, _, _ = self.entry(pos)
    return clip_id, self.class_map.mids[c]

  def first_unanswered(self, start: int = 0) -> int:
    """The first candidate from `start` on without an answer (len(order): none left)."""
    with self._lock:
      answers = self._verdicts.answers
      for pos in range(start, len(self.order)):
        if self.key(pos) not in answers:
          return pos
    return len(self.order)

  def candidate(self, pos: int) -> dict:
    clip_id, c, score, rank = self.entry(pos)
    clip = self._clips[clip_id]
    names = self.class_map.display_names
    path = []
    if self._ancestors is not None:
      path = [names[a] for a in sorted(self._ancestors[c], key=lambda a: len(self._ancestors[a]))]
    with self._lock:
      answer = self._verdicts.answers.get((clip_id, self.class_map.mids[c]))
    start, why = self.best_patch(clip, c)
    return dict(pos=pos, clip_id=clip_id, mid=self.class_map.mids[c], name=names[c],
                ontology_path=path, score=score, rank=rank,
                implicit=int(self.flags.num_implicit[c]),
                labels=[names[k] for k in np.flatnonzero(clip["positives"])],
                answer=answer.verdict if answer else None, start_seconds=start,
                start_note=why, audio=clip_id in self._audio)

  def best_patch(self, clip: dict, c: int):
    """(seconds, note): where the patch the teacher scored highest for class c starts."""
    teacher = self._load_teacher()
    if teacher is None:
      return 0.0, f"from the start (the teacher is not available: {self._teacher_error})"
    from tf_skeptical import input_pipeline
    spec = self.info.features
    hop = spec.patch_hop()
    patches = input_pipeline.clip_patches(clip["features"], spec, hop).numpy()
    k = int(np.argmax(teacher.probabilities(patches)[:, c]))
    if spec.kind != examples.LOG_MEL:
      return 0.0, "from the start (embedding examples)"
    return k * hop * spec.frontend.stft_hop_seconds, f"patch {k + 1}, the teacher's best"

  def _load_teacher(self):
    if self._teacher is None and not self._teacher_error:
      from tf_skeptical import teachers
      model = self.flags.made_from.get("scores_model")
      try:
        self._teacher = teachers.load(model, self.info)
      except Exception as e:  # noqa: BLE001  (shown on the page; the review goes on)
        self._teacher_error = f"{model}: {str(e).splitlines()[0][:200]}"
    return self._teacher

  def log_mel_png(self, clip_id: str) -> bytes:
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import image
    features = np.asarray(self._clips[clip_id]["features"], np.float32)
    out = io.BytesIO()
    image.imsave(out, features.T[::-1], cmap="magma", format="png")
    return out.getvalue()

  def audio_wav(self, clip_id: str) -> bytes:
    """The clip's audio as 16-bit PCM WAV at the frontend's rate."""
    import tensorflow as tf
    from tf_skeptical.data import audio_io
    path = self._audio.get(clip_id)
    if path is None:
      raise errors.BadValue(f"clip {clip_id}: no audio file in {self.info.extra.get('audio_dir')}")
    samples = int(round(self.info.extra.get("clip_seconds", 10.0) * 16000))
    return audio_io.wav_bytes(audio_io.load_clip(tf.constant(path), samples), 16000).numpy()

  # -- answers --------------------------------------------------------------------------

  def answer(self, pos: int, verdict: str) -> dict:
    """Appends the verdict on candidate `pos` (durably: fsync) and returns the counts and
    the next unanswered candidate after it."""
    if not 0 <= pos < len(self.order):
      raise errors.BadValue(f"no candidate {pos} (there are {len(self.order)})")
    clip_id, c, score, rank = self.entry(pos)
    a = verdicts.Answer(clip_id, self.class_map.mids[c], self.class_map.display_names[c],
                        verdict, score, rank)
    with self._lock:
      verdicts.append(self.verdicts_path, [a])
      self._verdicts = verdicts.read(self.verdicts_path)  # other writers' answers too
    nxt = self.first_unanswered(pos + 1)
    if nxt == len(self.order):
      nxt = self.first_unanswered(0)
    return dict(next=nxt, counts=self.counts())

  def refresh(self) -> None:
    """Reads the file again (answers other servers appended)."""
    with self._lock:
      self._verdicts = verdicts.read(self.verdicts_path)


def _audio_files(info) -> Dict[str, str]:
  from tf_skeptical.prepare import audio_files
  audio_dir = info.extra.get("audio_dir")
  return audio_files(audio_dir) if audio_dir else {}


def describe(counts: dict) -> str:
  precision = ("" if counts["precision"] is None else
               f", precision of the flags so far {counts['precision']:.2f}")
  return (f"{counts['reviewed']} of {counts['total']} reviewed: {counts['present']} present, "
          f"{counts['absent']} absent, {counts['unsure']} unsure{precision}; "
          f"{counts['left']} left")
