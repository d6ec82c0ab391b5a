"""The built-in dataset: procedurally synthesised sound events with known missing labels.

Finding missing labels can only be measured where the truth is known. Each clip mixes 1-4
events of distinct classes at random levels over background noise. The train labels
simulate a nomination system that misses present events, more often for some classes and
for quiet or short events, scaled so that missing labels are `missing_rate` of the implicit
negatives; the eval labels are complete. Written in AudioSet layout (audio files, segments
CSVs, class map) so the same readers are exercised, plus a truth file of what is missing.
"""

import csv
import dataclasses
import os
import wave
from typing import Callable, List, Tuple

import numpy as np
from tqdm import tqdm

from tf_skeptical import errors
from tf_skeptical.util import files
from tf_skeptical.data.class_map import ClassMap, write_class_map
from tf_skeptical.data.segments import Segment, write_segments
from tf_skeptical.datasets import layout
from tf_skeptical.datasets.layout import (AUDIO_DIR, CLASS_MAP, EVAL_SEGMENTS, SUMMARY, TRAIN_SEGMENTS,
                                          TRUTH)



@dataclasses.dataclass(frozen=True)
class BuiltinDataParams:
  num_classes: int = 24
  train_clips: int = 3000
  eval_clips: int = 1000
  clip_seconds: float = 2.0
  min_events: int = 1
  max_events: int = 4
  # Missing labels as a fraction of the train set's implicit negatives.
  missing_rate: float = 0.02
  # Explicit negatives (classes a rater marked absent) per train clip, on average.
  explicit_negatives_per_clip: float = 0.5
  # Every this-many clips is written at 22.05 kHz stereo, to exercise resampling and downmix.
  other_format_every: int = 8
  seed: int = 0


def _t(n, sr):
  return np.arange(n) / sr


def _tone(freqs, amps=None):
  def make(rng, n, sr):
    t = _t(n, sr)
    a = amps or [1.0] * len(freqs)
    return sum(ai * np.sin(2 * np.pi * f * t + rng.uniform(0, 6.28)) for f, ai in zip(freqs, a))
  return make


def _harmonic(f0, num, decay):
  return _tone([f0 * k for k in range(1, num + 1)], [decay ** k for k in range(num)])


def _chirp(f_start, f_end):
  def make(rng, n, sr):
    f = np.linspace(f_start, f_end, n)
    return np.sin(2 * np.pi * np.cumsum(f) / sr)
  return make


def _fm(carrier, rate, depth):
  def make(rng, n, sr):
    t = _t(n, sr)
    f = carrier + depth * np.sin(2 * np.pi * rate * t)
    return np.sin(2 * np.pi * np.cumsum(f) / sr)
  return make


def _colored_noise(exponent, band=None):
  """1/f^exponent noise, optionally band-limited to (lo, hi) Hz."""
  def make(rng, n, sr):
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / sr)
    spectrum[1:] /= freqs[1:] ** (exponent / 2)
    spectrum[0] = 0
    if band:
      spectrum[(freqs < band[0]) | (freqs > band[1])] = 0
    x = np.fft.irfft(spectrum, n)
    return x / (np.abs(x).max() + 1e-9)
  return make


def _gated(source, on_seconds, period_seconds):
  def make(rng, n, sr):
    gate = (_t(n, sr) % period_seconds) < on_seconds
    return source(rng, n, sr) * gate
  return make


def _amplitude_modulated(source, rate):
  def make(rng, n, sr):
    return source(rng, n, sr) * (0.5 + 0.5 * np.sin(2 * np.pi * rate * _t(n, sr)))
  return make


def _repeated_decay(source, period_seconds, decay_seconds):
  def make(rng, n, sr):
    t = _t(n, sr)
    return source(rng, n, sr) * np.exp(-(t % period_seconds) / decay_seconds)
  return make


def _clicks(rate_hz):
  def make(rng, n, sr):
    x = np.zeros(n)
    x[(np.arange(0, n / sr, 1 / rate_hz) * sr).astype(int)] = 1.0
    return np.convolve(x, np.exp(-np.arange(int(0.002 * sr)) / (0.0005 * sr)))[:n]
  return make


def _droplets(rate_hz):
  def make(rng, n, sr):
    x = np.zeros(n)
    hits = rng.integers(0, n, size=max(1, int(rate_hz * n / sr)))
    x[hits] = rng.uniform(0.3, 1.0, size=hits.size)
    return np.convolve(x, _colored_noise(0, (3000, 7000))(rng, int(0.01 * sr), sr))[:n]
  return make


# name, synthesiser, (min, max) event seconds. Classes differ the way real event classes do:
# pitch, timbre, noise colour, temporal pattern and duration.
_CLASSES: List[Tuple[str, Callable, Tuple[float, float]]] = [
    ("Low hum", _tone([110, 220]), (0.8, 2.0)),
    ("Whistle", _tone([2400]), (0.3, 1.2)),
    ("High beep", _gated(_tone([3600]), 0.08, 0.2), (0.4, 1.2)),
    ("Buzz", _harmonic(150, 12, 0.8), (0.5, 2.0)),
    ("Square tone", _tone([400, 1200, 2000, 2800], [1, 1 / 3, 1 / 5, 1 / 7]), (0.4, 1.5)),
    ("Rising chirp", _chirp(300, 3000), (0.3, 1.0)),
    ("Falling chirp", _chirp(4000, 500), (0.3, 1.0)),
    ("Vibrato", _fm(1200, 6, 80), (0.5, 2.0)),
    ("White noise", _colored_noise(0), (0.3, 1.5)),
    ("Pink noise", _colored_noise(1), (0.5, 2.0)),
    ("Rumble", _colored_noise(2, (20, 400)), (0.8, 2.0)),
    ("Hiss", _colored_noise(0, (2000, 3000)), (0.4, 1.5)),
    ("Slow clicks", _clicks(8), (0.5, 2.0)),
    ("Fast clicks", _clicks(60), (0.3, 1.5)),
    ("Beeping", _gated(_tone([1500]), 0.1, 0.2), (0.6, 2.0)),
    ("Tremolo", _amplitude_modulated(_tone([600]), 12), (0.5, 2.0)),
    ("Pluck", _repeated_decay(_harmonic(330, 6, 0.6), 0.5, 0.08), (0.5, 2.0)),
    ("Drum", _repeated_decay(_chirp(150, 50), 0.4, 0.05), (0.4, 2.0)),
    ("Chord", _tone([500, 630, 750]), (0.5, 2.0)),
    ("Bell", _repeated_decay(_fm(1000, 1400, 500), 0.7, 0.2), (0.7, 2.0)),
    ("Rain", _droplets(80), (0.8, 2.0)),
    ("Siren", _fm(1000, 0.8, 400), (1.0, 2.0)),
    ("Wind", _amplitude_modulated(_colored_noise(1, (200, 1200)), 0.7), (1.0, 2.0)),
    ("Dial tone", _tone([697, 1209]), (0.3, 1.0)),
    ("Crackle", _droplets(25), (0.5, 2.0)),
    ("Low pulse", _gated(_tone([180]), 0.15, 0.3), (0.6, 2.0)),
    ("Shimmer", _amplitude_modulated(_tone([5000, 5300]), 4), (0.5, 2.0)),
    ("Warble", _fm(2000, 15, 300), (0.4, 1.5)),
]
MAX_CLASSES = len(_CLASSES)


@dataclasses.dataclass(frozen=True)
class Event:
  cls: int
  level_db: float
  start: float
  seconds: float


def class_map(num_classes: int) -> ClassMap:
  if not 2 <= num_classes <= MAX_CLASSES:
    raise errors.BadValue(f"num_classes must be in 2..{MAX_CLASSES}, got {num_classes}")
  names = tuple(name for name, _, _ in _CLASSES[:num_classes])
  return ClassMap(tuple(f"/tfsk/{i:03d}" for i in range(num_classes)), names)


def _draw_events(rng, p: BuiltinDataParams) -> List[Event]:
  count = int(rng.integers(p.min_events, p.max_events + 1))
  events = []
  for cls in rng.choice(p.num_classes, size=count, replace=False):
    lo, hi = _CLASSES[cls][2]
    seconds = float(rng.uniform(lo, min(hi, p.clip_seconds)))
    start = float(rng.uniform(0, p.clip_seconds - seconds))
    events.append(Event(int(cls), float(rng.uniform(-30, -6)), start, seconds))
  return events


def _render(events: List[Event], p: BuiltinDataParams, sr: int, rng) -> np.ndarray:
  n = int(round(p.clip_seconds * sr))
  x = _colored_noise(float(rng.uniform(0, 2)))(rng, n, sr) * 10 ** (rng.uniform(-50, -40) / 20)
  for e in events:
    a, m = int(e.start * sr), max(int(e.seconds * sr), 1)
    add_event(x, _CLASSES[e.cls][1](rng, m, sr), a, e.level_db, sr)
  return x


def add_event(x: np.ndarray, sound: np.ndarray, start: int, level_db: float, sr: int) -> None:
  """Mixes a sound into x from sample `start`: 10 ms ramps at both ends, scaled to unit RMS
  and then to level_db; cut at the end of x."""
  m = len(sound)
  ramp = np.minimum(1.0, np.minimum(np.arange(m), np.arange(m)[::-1]) / (0.01 * sr))
  sound = sound * ramp / (np.sqrt(np.mean(sound ** 2)) + 1e-9)  # unit RMS
  x[start:start + m] += sound[:len(x) - start] * 10 ** (level_db / 20)


def write_pcm_wav(path: str, x: np.ndarray, sr: int, channels: int) -> None:
  peak = np.abs(x).max()
  if peak > 0.99:
    x = x * (0.99 / peak)
  pcm = (np.clip(x, -1, 1) * 32767).astype("<i2")
  if channels == 2:
    pcm = np.stack([pcm, pcm], axis=1)
  with files.local_output(path) as tmp, wave.open(tmp, "wb") as w:
    w.setnchannels(channels)
    w.setsampwidth(2)
    w.setframerate(sr)
    w.writeframes(pcm.tobytes())


def drop_weights(events_per_clip, class_weight) -> np.ndarray:
  """Relative chance that the nomination misses each event: class, quietness, shortness."""
  w = []
  for events in events_per_clip:
    for e in events:
      quiet = np.interp(e.level_db, [-30, -6], [3.0, 0.5])
      short = np.interp(e.seconds, [0.3, 2.0], [2.0, 0.7])
      w.append(class_weight[e.cls] * quiet * short)
  return np.asarray(w)


def scale_to_rate(weights: np.ndarray, wanted_missing: float) -> np.ndarray:
  """Probabilities min(1, s * w) whose sum is wanted_missing (bisection on s)."""
  if wanted_missing >= len(weights):
    return np.ones_like(weights)
  lo, hi = 0.0, 1.0
  while np.minimum(1, hi * weights).sum() < wanted_missing:
    hi *= 2
  for _ in range(60):
    mid = (lo + hi) / 2
    lo, hi = (mid, hi) if np.minimum(1, mid * weights).sum() < wanted_missing else (lo, mid)
  return np.minimum(1.0, hi * weights)


def generate(out_dir: str, p: BuiltinDataParams = BuiltinDataParams()) -> dict:
  """Writes the dataset into out_dir; returns the summary (also in generation.json)."""
  with layout.writing(out_dir) as staging:
    return _generate(staging, p)


def _generate(out_dir: str, p: BuiltinDataParams) -> dict:
  cmap = class_map(p.num_classes)
  rng = np.random.default_rng(p.seed)
  files.makedirs(os.path.join(out_dir, AUDIO_DIR))
  write_class_map(cmap, os.path.join(out_dir, CLASS_MAP))
  class_weight = rng.uniform(0.2, 2.0, size=p.num_classes)

  splits = {"train": p.train_clips, "eval": p.eval_clips}
  events = {s: [_draw_events(rng, p) for _ in range(n)] for s, n in splits.items()}

  # Raters marked some truly absent classes absent: explicit negatives.
  train_events = events["train"]
  train_negatives = []
  for evs in train_events:
    absent = np.setdiff1d(np.arange(p.num_classes), [e.cls for e in evs])
    n_neg = min(rng.poisson(p.explicit_negatives_per_clip), absent.size)
    train_negatives.append(tuple(sorted(int(c) for c in rng.choice(absent, n_neg, replace=False))))
  # Nomination: which true train events lose their label.
  implicit = sum(p.num_classes - len(ev) - len(neg)
                 for ev, neg in zip(train_events, train_negatives))
  # Each missed label also becomes an implicit negative: solve m = rate * (implicit + m).
  wanted = p.missing_rate * implicit / (1 - p.missing_rate)
  drop_prob = scale_to_rate(drop_weights(train_events, class_weight), wanted)
  dropped = rng.random(drop_prob.size) < drop_prob

  segments = {"train": [], "eval": []}
  truth_rows, k = [], 0
  for split, clips in events.items():
    for i, evs in enumerate(tqdm(clips, desc=f"synthesising {split} clips", unit="clip",
                                 leave=False)):
      clip_id = f"{split}{i:06d}"
      true_classes = sorted(e.cls for e in evs)
      observed = set(true_classes)
      negatives = ()
      if split == "train":
        for e in evs:
          if dropped[k]:
            observed.discard(e.cls)
            truth_rows.append([clip_id, cmap.mids[e.cls], cmap.display_names[e.cls],
                               f"{e.level_db:.1f}", f"{e.seconds:.2f}"])
          k += 1
        negatives = train_negatives[i]
      other = p.other_format_every and i % p.other_format_every == p.other_format_every - 1
      sr, channels = (22050, 2) if other else (16000, 1)
      write_pcm_wav(os.path.join(out_dir, AUDIO_DIR, clip_id + ".wav"),
                 _render(evs, p, sr, rng), sr, channels)
      segments[split].append(Segment(clip_id, 0.0, p.clip_seconds, tuple(sorted(observed)),
                                     negatives, 0))

  write_segments(segments["train"], cmap, os.path.join(out_dir, TRAIN_SEGMENTS),
                 header="tf_skeptical built-in train set: labels miss some present events")
  write_segments(segments["eval"], cmap, os.path.join(out_dir, EVAL_SEGMENTS),
                 header="tf_skeptical built-in eval set: complete labels")
  with files.atomic_write(os.path.join(out_dir, TRUTH)) as f:
    writer = csv.writer(f)
    writer.writerow(["clip_id", "mid", "display_name", "level_db", "event_seconds"])
    writer.writerows(truth_rows)

  implicit_after = sum(p.num_classes - len(s.positives) - len(s.explicit_negatives)
                       for s in segments["train"])
  summary = dict(params=dataclasses.asdict(p),
                 train_true_labels=int(drop_prob.size),
                 train_missing_labels=len(truth_rows),
                 train_implicit_negatives=int(implicit_after),
                 missing_rate_of_implicit_negatives=len(truth_rows) / max(implicit_after, 1))
  files.write_json(os.path.join(out_dir, SUMMARY), summary)
  return summary
