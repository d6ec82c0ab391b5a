"""The log-mel frontend against an independent numpy computation and against tf.signal.stft."""

import numpy as np
import pytest
import tensorflow as tf

from tf_skeptical.data import frontend
from tf_skeptical.data.params import DEFAULT_FRONTEND as P, FrontendParams


def numpy_log_mel(x):
  """YAMNet's log-mel from the definitions: periodic Hann, |rfft|, HTK mel triangles."""
  n, hop, nfft = 400, 160, 512
  frames = np.stack([x[i * hop:i * hop + n] for i in range(1 + (len(x) - n) // hop)])
  window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)
  magnitude = np.abs(np.fft.rfft(frames * window, nfft))
  mel = lambda f: 1127.0 * np.log1p(f / 700.0)
  bin_mel = mel(np.linspace(0, 8000, nfft // 2 + 1))
  edges = np.linspace(mel(125.0), mel(7500.0), 64 + 2)
  weights = np.zeros((nfft // 2 + 1, 64))
  for m in range(64):
    lower, center, upper = edges[m], edges[m + 1], edges[m + 2]
    rising = (bin_mel - lower) / (center - lower)
    falling = (upper - bin_mel) / (upper - center)
    weights[:, m] = np.maximum(0, np.minimum(rising, falling))
  weights[0] = 0  # the DC bin carries no mel weight
  return np.log(magnitude @ weights + 0.001)


@pytest.fixture
def waveform():
  rng = np.random.default_rng(0)
  t = np.arange(16000) / 16000
  return (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


def test_log_mel_matches_numpy(waveform):
  ours = frontend.log_mel(waveform).numpy()
  ref = numpy_log_mel(waveform.astype(np.float64))
  assert ours.shape == ref.shape == (P.num_frames(16000), 64)
  np.testing.assert_allclose(ours, ref, atol=2e-3)


def test_log_mel_matches_tf_signal_stft(waveform):
  stft = tf.signal.stft(waveform, frame_length=400, frame_step=160, fft_length=512)
  mel = tf.matmul(tf.abs(stft), frontend._mel_matrix(P))
  ref = tf.math.log(mel + 0.001).numpy()
  assert np.abs(frontend.log_mel(waveform).numpy() - ref).max() < 1e-4


def test_patches_shape_and_content():
  frames = tf.reshape(tf.range(200 * 64, dtype=tf.float32), [200, 64])
  p = frontend.patches(frames, hop_frames=48).numpy()
  assert p.shape == (3, 96, 64)  # starts 0, 48, 96; a 104-frame tail is too short for a 4th
  np.testing.assert_array_equal(p[1], frames.numpy()[48:144])


def test_pad_for_one_patch_makes_a_patch_from_a_short_waveform():
  w = frontend.pad_for_one_patch(tf.zeros([1000]))
  assert P.num_patches(P.num_frames(int(w.shape[0]))) == 1


@pytest.mark.parametrize("sample_rate,window_seconds", [(16000, 0.025), (8000, 0.025),
                                                        (16000, 0.05), (24000, 0.025)])
def test_two_stage_dft_magnitude_equals_numpy_rfft(sample_rate, window_seconds):
  """FFT lengths 512, 256, 1024 and 1024 (radix 16x32, 16x16, 32x32, 32x32)."""
  p = FrontendParams(sample_rate=sample_rate, stft_window_seconds=window_seconds)
  x = np.random.default_rng(sample_rate).standard_normal(p.window_samples + 7 * p.hop_samples)
  n = p.window_samples
  frames = np.stack([x[i * p.hop_samples:i * p.hop_samples + n] for i in range(8)])
  window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)
  ref = np.abs(np.fft.rfft(frames * window, p.fft_length))
  ours = frontend._stft_magnitude(tf.constant(x, tf.float32), p).numpy()
  assert ours.shape == ref.shape == (8, p.fft_length // 2 + 1)
  np.testing.assert_allclose(ours, ref, atol=2e-4 * np.abs(ref).max())
