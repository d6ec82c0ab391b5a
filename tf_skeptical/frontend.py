"""The YAMNet log-mel frontend and patching.

Two ways to the same spectrogram: `tf.signal.stft` for training-time preparation, and a
TFLite-compatible one (the DFT as two constant matmuls, since TFLite has no RFFT op) that
the exported on-device model embeds. Tests hold them to each other and to numpy.
"""

import numpy as np
import tensorflow as tf

from tf_skeptical.params import DEFAULT_FRONTEND, FrontendParams


def _mel_matrix(params: FrontendParams):
  return tf.signal.linear_to_mel_weight_matrix(
      num_mel_bins=params.mel_bands,
      num_spectrogram_bins=params.spectrogram_bins,
      sample_rate=params.sample_rate,
      lower_edge_hertz=params.mel_min_hz,
      upper_edge_hertz=params.mel_max_hz)


def _stft_magnitude(waveform, params: FrontendParams):
  return tf.abs(tf.signal.stft(
      waveform, frame_length=params.window_samples, frame_step=params.hop_samples,
      fft_length=params.fft_length))


def _dft_stft_magnitude(waveform, params: FrontendParams):
  """|STFT| with the DFT written as matmuls against constant cos/sin matrices."""
  n = params.window_samples
  frames = tf.signal.frame(waveform, n, params.hop_samples)
  window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)  # periodic Hann
  # Zero-padding a frame to fft_length adds nothing to the sum: only the first n rows.
  angles = 2 * np.pi * np.outer(np.arange(n), np.arange(params.spectrogram_bins)) / params.fft_length
  cos = tf.constant((window[:, None] * np.cos(angles)).astype(np.float32))
  sin = tf.constant((window[:, None] * -np.sin(angles)).astype(np.float32))
  real, imag = tf.matmul(frames, cos), tf.matmul(frames, sin)
  return tf.sqrt(real * real + imag * imag)


def log_mel(waveform, params: FrontendParams = DEFAULT_FRONTEND, tflite_compatible=False):
  """[samples] float32 waveform at params.sample_rate -> [frames, mel_bands] log-mel."""
  waveform = tf.convert_to_tensor(waveform, tf.float32)
  if tflite_compatible:
    magnitude = _dft_stft_magnitude(waveform, params)
  else:
    magnitude = _stft_magnitude(waveform, params)
  mel = tf.matmul(magnitude, _mel_matrix(params))
  return tf.math.log(mel + params.log_offset)


def pad_for_one_patch(waveform, params: FrontendParams = DEFAULT_FRONTEND):
  """Pads a short waveform with zeros to the length of one whole patch."""
  short = tf.maximum(params.min_patch_samples - tf.shape(waveform)[0], 0)
  return tf.pad(waveform, [[0, short]])


def patches(log_mel_frames, params: FrontendParams = DEFAULT_FRONTEND, hop_frames=None):
  """[frames, bands] -> [patches, patch_frames, bands]; a tail shorter than a patch is dropped."""
  return tf.signal.frame(log_mel_frames, params.patch_frames,
                         hop_frames or params.patch_hop_frames, axis=0)
