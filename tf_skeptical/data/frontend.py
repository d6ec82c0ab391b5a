"""The YAMNet log-mel frontend and patching.

One implementation serves training-time preparation and the exported on-device model, and
it converts to TFLite builtin ops only. Tests hold it to numpy and to tf.signal.stft.
"""

import numpy as np
import tensorflow as tf

from tf_skeptical.data.params import DEFAULT_FRONTEND, FrontendParams


def _mel_matrix(params: FrontendParams):
  return tf.signal.linear_to_mel_weight_matrix(
      num_mel_bins=params.mel_bands,
      num_spectrogram_bins=params.spectrogram_bins,
      sample_rate=params.sample_rate,
      lower_edge_hertz=params.mel_min_hz,
      upper_edge_hertz=params.mel_max_hz)


def _two_stage_dft(n: int):
  """Constants of a radix-(n1, n2) DFT of length n = n1 * n2 (Cooley-Tukey, one step).

  With sample index t = n2 * a + b and bin k = c + n1 * d (a, c < n1; b, d < n2):
    X[k] = sum_b W_n^(b c) W_n2^(b d) sum_a x[n2 a + b] W_n1^(a c),   W_m = exp(-2 pi i / m).
  Returns the stage-1 cos/sin matrices [c, a], the twiddles [c, b], the stage-2 block matrix
  (re | im -> re | im) and, for each bin k <= n/2, its position in the [c, d] output.
  """
  n1 = 2 ** (int(np.log2(n)) // 2)
  n2 = n // n1
  a, b = np.arange(n1), np.arange(n2)
  stage1 = -2 * np.pi * np.outer(a, a) / n1
  twiddle = -2 * np.pi * np.outer(a, b) / n
  stage2 = -2 * np.pi * np.outer(b, b) / n2
  c2, s2 = np.cos(stage2), np.sin(stage2)
  block = np.block([[c2, s2], [-s2, c2]])  # (re + i im)(c + i s) as one real matmul
  k = np.arange(n // 2 + 1)
  position = (k % n1) * n2 + k // n1
  f32 = lambda x: tf.constant(x.astype(np.float32))
  return (n1, n2, f32(np.cos(stage1)), f32(np.sin(stage1)), f32(np.cos(twiddle)),
          f32(np.sin(twiddle)), f32(block), tf.constant(position, tf.int32))


def _stft_magnitude(waveform, params: FrontendParams):
  """|STFT| as small matmuls: a two-stage DFT (see _two_stage_dft).

  TFLite has no 1-D RFFT builtin (what tf.signal.stft uses). YAMNet multiplies each frame by
  constant [400, 257] cos and sin matrices instead: 0.8 MB of weights (a quarter of an int8
  MobileNet) and 20M multiplies per patch. Two stages of 16- and 32-point DFTs need 4% of
  those bytes and 0.84-0.87x their time under TFLite (bench/export.py); TFLite's RFFT2D
  over a one-row axis also converts but took 1.7x the matmuls' time. One implementation
  serves training-time preparation and the exported model alike (under TensorFlow it is
  slower than tf.signal.stft, but preparation runs once).
  """
  n = params.fft_length
  n1, n2, cos1, sin1, cos_tw, sin_tw, block, position = _two_stage_dft(n)
  frames = tf.signal.frame(waveform, params.window_samples, params.hop_samples)
  frames = frames * tf.signal.hann_window(params.window_samples, periodic=True)
  x = tf.reshape(tf.pad(frames, [[0, 0], [0, n - params.window_samples]]), [-1, n1, n2])
  real = tf.einsum("ca,fab->fcb", cos1, x)  # stage 1 over a: [frames, c, b]
  imag = tf.einsum("ca,fab->fcb", sin1, x)
  real, imag = real * cos_tw - imag * sin_tw, real * sin_tw + imag * cos_tw
  y = tf.matmul(tf.reshape(tf.concat([real, imag], -1), [-1, 2 * n2]), block)  # over b
  real, imag = y[:, :n2], y[:, n2:]
  magnitude = tf.reshape(tf.sqrt(real * real + imag * imag), [-1, n])  # bins in [c, d] order
  return tf.gather(magnitude, position, axis=1)


def log_mel(waveform, params: FrontendParams = DEFAULT_FRONTEND):
  """[samples] float32 waveform at params.sample_rate -> [frames, mel_bands] log-mel."""
  waveform = tf.convert_to_tensor(waveform, tf.float32)
  mel = tf.matmul(_stft_magnitude(waveform, params), _mel_matrix(params))
  return tf.math.log(mel + params.log_offset)


def pad_for_one_patch(waveform, params: FrontendParams = DEFAULT_FRONTEND):
  """Pads a short waveform with zeros to the length of one whole patch."""
  short = tf.maximum(params.min_patch_samples - tf.shape(waveform)[0], 0)
  return tf.pad(waveform, [[0, short]])


def patches(log_mel_frames, params: FrontendParams = DEFAULT_FRONTEND, hop_frames=None):
  """[frames, bands] -> [patches, patch_frames, bands]; a tail shorter than a patch is dropped."""
  return tf.signal.frame(log_mel_frames, params.patch_frames,
                         hop_frames or params.patch_hop_frames, axis=0)
