"""Tag audio with an exported tf_skeptical tagger: numpy and ai-edge-litert only, no TensorFlow.

  python tagger.py TAGGER_DIR clip.wav [more.wav ...] [--model int8] [--top 5]
  python tagger.py TAGGER_DIR long.wav --stream        # patch by patch, reading as it goes

TAGGER_DIR is what `tfsk_export` wrote. Audio: 8/16/24/32-bit PCM or 32/64-bit float wav,
any rate (resampled to 16 kHz), any channel count (averaged to mono).
"""

import argparse
import csv
import json
import os
import sys
from typing import Iterator, List, Tuple

import numpy as np


def read_class_names(path: str) -> List[str]:
  with open(path, newline="", encoding="utf-8") as f:
    return [row["display_name"] for row in csv.DictReader(f)]


_PCM, _FLOAT, _EXTENSIBLE = 1, 3, 0xFFFE  # WAVE format tags


def _samples_to_float(raw: bytes, width: int, channels: int, is_float: bool) -> np.ndarray:
  raw = raw[:len(raw) - len(raw) % (width * channels)]
  if is_float:
    x = np.frombuffer(raw, {4: "<f4", 8: "<f8"}[width]).astype(np.float32)
  elif width == 1:
    x = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128) / 128
  elif width == 2:
    x = np.frombuffer(raw, "<i2").astype(np.float32) / 32768
  elif width == 3:
    b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
    v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
    x = (np.where(v >= 1 << 23, v - (1 << 24), v)).astype(np.float32) / (1 << 23)
  else:
    x = np.frombuffer(raw, "<i4").astype(np.float32) / 2147483648
  return x.reshape(-1, channels).mean(axis=1)


class WavReader:
  """Reads a RIFF wav file in chunks: PCM (8/16/24/32-bit), IEEE float (32/64-bit) and
  their WAVE_FORMAT_EXTENSIBLE forms (Python's `wave` reads PCM only)."""

  def __init__(self, path: str):
    self.path = path
    self._f = open(path, "rb")
    try:
      self._parse_header()
    except Exception:
      self._f.close()
      raise

  def _fail(self, why: str):
    raise ValueError(f"{self.path}: not a readable wav file ({why})")

  def _parse_header(self):
    head = self._f.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
      self._fail("no RIFF/WAVE header")
    fmt = None
    while True:
      chunk = self._f.read(8)
      if len(chunk) < 8:
        self._fail("no data chunk" if fmt else "no fmt chunk")
      kind, size = chunk[:4], int.from_bytes(chunk[4:], "little")
      if kind == b"fmt ":
        fmt = self._f.read(size + size % 2)
      elif kind == b"data":
        break
      else:
        self._f.seek(size + size % 2, 1)
    if fmt is None or len(fmt) < 16:
      self._fail("data before fmt chunk")
    tag, self.channels, self.rate = (int.from_bytes(fmt[i:j], "little")
                                     for i, j in ((0, 2), (2, 4), (4, 8)))
    bits = int.from_bytes(fmt[14:16], "little")
    if tag == _EXTENSIBLE and len(fmt) >= 26:
      tag = int.from_bytes(fmt[24:26], "little")  # the sub-format GUID's first two bytes
    self.is_float = tag == _FLOAT
    self.width = bits // 8
    if tag not in (_PCM, _FLOAT) or self.channels < 1 or self.rate < 1 or not (
        (self.is_float and self.width in (4, 8)) or (not self.is_float and 1 <= self.width <= 4)):
      self._fail(f"format {tag}, {bits}-bit, {self.channels} channels: supported are PCM "
                 "8/16/24/32-bit and float 32/64-bit")
    self._left = size
    self._read_frames = 0

  def read(self, frames: int = -1) -> np.ndarray:
    """Up to `frames` frames (all when negative), as mono float32. A NaN or infinite sample
    (float files only) is refused: every score of its patch would be NaN."""
    frame = self.width * self.channels
    want = self._left if frames < 0 else min(self._left, frames * frame)
    start = self._read_frames
    raw = self._f.read(want)
    self._left -= len(raw)
    self._read_frames += len(raw) // frame
    x = _samples_to_float(raw, self.width, self.channels, self.is_float)
    if self.is_float and not np.isfinite(x).all():
      first = start + int(np.flatnonzero(~np.isfinite(x))[0])
      raise ValueError(f"{self.path}: non-finite samples (NaN or Inf), the first at "
                       f"{first / self.rate:.3f} s: the file is damaged; fix or drop it")
    return x

  def close(self):
    self._f.close()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()


def read_wav(path: str) -> Tuple[np.ndarray, int]:
  """A wav file -> (mono float32 in [-1, 1], sample rate)."""
  with WavReader(path) as w:
    return w.read(), w.rate


class StreamResampler:
  """Band-limited resampling (Kaiser-windowed sinc, cut off at the lower Nyquist rate) that
  takes input in chunks and gives exactly what resampling the whole signal at once would."""

  def __init__(self, rate_in: int, rate_out: int = 16000, half_width: int = 16):
    self.ratio = rate_out / rate_in
    self.cutoff = min(1.0, self.ratio)
    self.taps = np.arange(-half_width, half_width + 1)
    self.window = np.kaiser(2 * half_width + 1, 8.0)
    self.half_width = half_width
    self.buffer = np.zeros(0, np.float32)
    self.offset = 0  # input index of buffer[0]
    self.next_out = 0  # index of the next output sample

  def push(self, x: np.ndarray, last: bool = False) -> np.ndarray:
    self.buffer = np.concatenate([self.buffer, np.asarray(x, np.float32)])
    end = self.offset + len(self.buffer)  # input samples seen so far
    if last:
      stop = int(np.floor(end * self.ratio))
    else:  # outputs whose filter support ends before the input we have
      stop = max(self.next_out, int(np.floor((end - self.half_width - 1) * self.ratio)))
    k = np.arange(self.next_out, stop)
    t = k / self.ratio
    idx = np.floor(t).astype(np.int64)[:, None] + self.taps[None, :]
    h = self.cutoff * np.sinc(self.cutoff * (t[:, None] - idx)) * self.window[None, :]
    local = idx - self.offset
    valid = (idx >= 0) & (local < len(self.buffer))
    out = np.sum(np.where(valid, self.buffer[np.clip(local, 0, len(self.buffer) - 1)], 0) * h,
                 axis=1).astype(np.float32)
    self.next_out = stop
    keep_from = max(0, int(np.floor(stop / self.ratio)) - self.half_width - 1 - self.offset)
    self.buffer, self.offset = self.buffer[keep_from:], self.offset + keep_from
    return out


def resample(x: np.ndarray, rate_in: int, rate_out: int = 16000) -> np.ndarray:
  if rate_in == rate_out:
    return np.asarray(x, np.float32)
  r = StreamResampler(rate_in, rate_out)
  parts = [r.push(x[a:a + 65536]) for a in range(0, len(x), 65536)]  # bounded memory
  return np.concatenate(parts + [r.push(np.zeros(0, np.float32), last=True)])


class NotATagger(ValueError):
  """A directory that is not a whole export of tfsk_export."""


def tagger_file(tagger_dir: str, key: str) -> str:
  """The path of a tagger's file named in its metadata.json (`class_map`, `tflite_float`,
  ...), refused in one sentence if the directory is not a whole export."""
  metadata_path = os.path.join(tagger_dir, "metadata.json")
  if not os.path.isfile(metadata_path):
    raise NotATagger(f"{tagger_dir}: not an exported tagger (no metadata.json): give the "
                     "directory tfsk_export wrote")
  with open(metadata_path, encoding="utf-8") as f:
    name = json.load(f).get("files", {}).get(key)
  path = os.path.join(tagger_dir, name or key)
  if not name or not os.path.isfile(path):
    raise NotATagger(f"{tagger_dir}: an incomplete tagger ({name or key} is missing): copy "
                     "the whole directory that tfsk_export wrote")
  return path


class Tagger:
  """An exported tagger directory: per-patch scores from a waveform, with LiteRT."""

  def __init__(self, tagger_dir: str, model: str = "float", threads: int = 1):
    from ai_edge_litert.interpreter import Interpreter
    key = {"float": "tflite_float", "int8": "tflite_int8"}[model]
    class_map, model_path = tagger_file(tagger_dir, "class_map"), tagger_file(tagger_dir, key)
    with open(os.path.join(tagger_dir, "metadata.json"), encoding="utf-8") as f:
      self.metadata = json.load(f)
    self.class_names = read_class_names(class_map)
    self._runner = Interpreter(model_path=model_path,
                               num_threads=threads).get_signature_runner("patch")
    self.sample_rate = self.metadata["sample_rate"]
    self.window = self.metadata["window_samples"]
    self.hop = self.metadata["hop_samples"]

  def patch(self, window: np.ndarray) -> np.ndarray:
    return self.patch_outputs(window)["scores"]

  def patch_outputs(self, window: np.ndarray) -> dict:
    """One window of `self.window` samples -> {"scores": [C], "embeddings": [D]}."""
    return self._runner(waveform=np.asarray(window, np.float32))

  def check_length(self, samples: int) -> None:
    """Refuses audio shorter than one window: its scores would be those of padding."""
    if samples < self.window:
      raise ValueError(f"{samples / self.sample_rate:.2f} s of audio, shorter than one "
                       f"{self.window / self.sample_rate:.3f} s window: nothing to tag")

  def scores(self, waveform: np.ndarray) -> np.ndarray:
    """[N] 16 kHz waveform (at least one window) -> [patches, C]."""
    self.check_length(len(waveform))
    starts = range(0, len(waveform) - self.window + 1, self.hop)
    return np.stack([self.patch(waveform[s:s + self.window]) for s in starts])

  def stream(self, path: str, chunk_seconds: float = 5.0) -> Iterator[Tuple[float, np.ndarray]]:
    """Scores patch by patch over a long wav, reading it in chunks: (start seconds, scores).

    Gives the same patches as scores() on the whole file.
    """
    with WavReader(path) as w:
      rate = w.rate
      resampler = None if rate == self.sample_rate else StreamResampler(rate, self.sample_rate)
      buffer, start, emitted = np.zeros(0, np.float32), 0, False
      while True:
        x = w.read(max(1, int(chunk_seconds * rate)))
        raw = len(x) > 0
        if resampler is not None:
          x = resampler.push(x, last=not raw)
        buffer = np.concatenate([buffer, x])
        while len(buffer) >= self.window:
          yield start / self.sample_rate, self.patch(buffer[:self.window])
          buffer, start, emitted = buffer[self.hop:], start + self.hop, True
        if not raw:
          if not emitted:  # shorter than one window, as scores() refuses
            self.check_length(len(buffer))
          return


def top(scores: np.ndarray, names: List[str], k: int) -> str:
  order = np.argsort(-scores)[:k]
  return ", ".join(f"{names[i]} {scores[i]:.2f}" for i in order)


def _positive(text: str) -> int:
  value = int(text)
  if value < 1:
    raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
  return value


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("tagger_dir", help="Directory written by tfsk_export.")
  parser.add_argument("wavs", nargs="+", help="wav files to tag.")
  parser.add_argument("--model", choices=["float", "int8"], default="float",
                      help="Which TFLite model to run.")
  parser.add_argument("--top", type=_positive, default=5, help="Classes to print per line.")
  parser.add_argument("--stream", action="store_true",
                      help="Read each file in chunks and print every patch as it is scored.")
  parser.add_argument("--threads", type=_positive, default=1, help="CPU threads for LiteRT.")
  args = parser.parse_args(argv)
  try:
    tagger = Tagger(args.tagger_dir, args.model, args.threads)
  except (ValueError, OSError) as e:  # not a tagger: nothing to tag with
    print(f"tagger: error: {e}", file=sys.stderr)
    return 1
  names = tagger.class_names
  failed = []
  for path in args.wavs:
    try:
      if args.stream:
        print(f"== {path}")
        for t, s in tagger.stream(path):
          print(f"  {t:7.2f}s  {top(s, names, args.top)}")
        continue
      x, rate = read_wav(path)
      s = tagger.scores(resample(x, rate, tagger.sample_rate))
    except (ValueError, OSError) as e:  # the file named, the next one tagged
      failed.append(path)
      print(f"tagger: error: {path}: cannot tag it ({e})", file=sys.stderr)
      continue
    print(f"== {path}")
    for i, row in enumerate(s):
      print(f"  {i * tagger.hop / tagger.sample_rate:7.2f}s  {top(row, names, args.top)}")
    print(f"  clip (mean of {len(s)} patches): {top(s.mean(axis=0), names, args.top)}")
  if failed:
    print(f"tagger: {len(failed)} of {len(args.wavs)} files could not be tagged: "
          f"{', '.join(failed)}", file=sys.stderr)
  return 1 if failed else 0


if __name__ == "__main__":
  try:
    sys.exit(main())
  except KeyboardInterrupt:  # Ctrl-C: it writes nothing, so there is nothing to clean up
    print("tagger: stopped by SIGINT", file=sys.stderr)
    sys.exit(130)
