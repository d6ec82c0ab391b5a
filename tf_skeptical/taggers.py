"""Running an exported tagger (exporting.py writes them) on waveforms: the SavedModel's
serving signature in bounded memory, a TFLite file through LiteRT, the patches both cut,
audio files decoded at the frontend's rate, a long file scored block by block
(`streamed_scores`), and how far two taggers' scores agree (the int8 file against the float
one). tfsk_tag and the export's own checks run taggers here;
export/tagger.py is the same runner without TensorFlow."""

from typing import Callable, Iterable, Sequence

import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from tf_skeptical import errors
from tf_skeptical.data import audio_io
from tf_skeptical.data.params import FrontendParams
from tf_skeptical.util import native_output


def windows(waveform: np.ndarray, window: int, hop: int) -> np.ndarray:
  """[N] waveform -> [patches, window] at the SavedModel's hop (zero-padded if short)."""
  if len(waveform) < window:
    waveform = np.pad(waveform, (0, window - len(waveform)))
  starts = range(0, len(waveform) - window + 1, hop)
  return np.stack([waveform[s:s + window] for s in starts]).astype(np.float32)


def clips(paths: Sequence[str], params: FrontendParams):
  """Decoded mono waveforms of audio files at the frontend's rate, one at a time."""
  for path in paths:
    yield audio_io.load_clip(tf.constant(path), None, params).numpy()


def tflite_scorer(model_path: str, hop: int, threads: int = 1) -> Callable:
  """waveform -> per-patch scores of a TFLite tagger (ai-edge-litert) at `hop` samples
  between patches (metadata.json's hop_samples); the interpreter is made once."""
  with native_output.held_native_output():  # LiteRT's "Created ... XNNPACK delegate" line
    runner = Interpreter(model_path=model_path, num_threads=threads).get_signature_runner("patch")
  window = int(runner.get_input_details()["waveform"]["shape"][0])

  def score(waveform: np.ndarray) -> np.ndarray:
    with native_output.held_native_output():
      return np.stack([runner(waveform=w)["scores"] for w in windows(waveform, window, hop)])

  return score


def tflite_scores(model_path: str, waveform: np.ndarray, hop: int,
                  threads: int = 1) -> np.ndarray:
  """Per-patch scores of a TFLite tagger on one waveform, for checks."""
  return tflite_scorer(model_path, hop, threads)(waveform)


def saved_model_scores(serve, waveform: np.ndarray, window: int, hop: int,
                       patches_per_call: int = 256) -> np.ndarray:
  """Per-patch scores of the SavedModel's serving signature, a bounded number of patches per
  call, so that an hour of audio needs no more memory than a few minutes (the patches are
  the ones one call on the whole waveform would cut)."""
  count = 1 + max(0, len(waveform) - window) // hop
  out = []
  for first in range(0, count, patches_per_call):
    n = min(patches_per_call, count - first)
    part = waveform[first * hop:first * hop + window + (n - 1) * hop]
    out.append(serve(waveform=tf.constant(part, tf.float32))["scores"].numpy())
  return np.concatenate(out)


def streamed_scores(blocks: Iterable[np.ndarray], score: Callable, window: int, hop: int,
                    sample_rate: int) -> np.ndarray:
  """Per-patch scores of a waveform that arrives in blocks (audio_io.decode_blocks), with
  score(waveform) -> [patches, C]: the patches one call on the whole waveform would cut,
  holding at most a block and a window of audio. Refuses (ValueError) a non-finite sample,
  naming its time, and audio shorter than one window."""
  buffer, start, out = np.zeros(0, np.float32), 0, []
  for block in blocks:
    bad = np.flatnonzero(~np.isfinite(block))
    if bad.size:
      raise errors.BadValue(f"non-finite samples (NaN or Inf) in the audio, the first at "
                       f"{(start + len(buffer) + bad[0]) / sample_rate:.3f} s")
    buffer = np.concatenate([buffer, block])
    count = 1 + (len(buffer) - window) // hop if len(buffer) >= window else 0
    if count:
      out.append(score(buffer[:window + (count - 1) * hop]))
      buffer, start = buffer[count * hop:], start + count * hop
  if not out:
    raise errors.BadValue(f"{(start + len(buffer)) / sample_rate:.2f} s of audio, shorter than one "
                     f"{window / sample_rate:.3f} s window: nothing to tag")
  return np.concatenate(out)


def agreement(float_scores: np.ndarray, int8_scores: np.ndarray) -> dict:
  """[patches, C] float and int8 scores -> mean |difference|, and top-5 agreement: the
  share of the float model's top 5 classes that int8 also ranks in its top 5, ties included
  (int8 scores are discrete: about 1 patch in 6 has a tie at 5th place, whose order argsort
  would settle by class index)."""
  k = min(5, float_scores.shape[1])
  float_top = np.argsort(-float_scores, axis=1)[:, :k]
  int8_kth = np.sort(int8_scores, axis=1)[:, -k]
  shared = (np.take_along_axis(int8_scores, float_top, axis=1) >= int8_kth[:, None]).mean(1)
  return dict(patches=int(float_scores.shape[0]),
              mean_abs_difference=float(np.abs(int8_scores - float_scores).mean()),
              top5_agreement=float(shared.mean()))
