"""export/tagger.py's wav reader against samples written byte by byte (no TensorFlow)."""

import os
import sys
import wave

import numpy as np
import pytest

from conftest import write_float_wav

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "export"))
import tagger as runtime  # noqa: E402  (export/tagger.py)


@pytest.mark.parametrize("dtype,extensible", [("<f4", False), ("<f8", False), ("<f4", True)])
def test_float_wavs_read_exactly(tmp_path, dtype, extensible):
  x = np.random.default_rng(0).uniform(-1, 1, 5001).astype(np.float32)
  path = str(tmp_path / "f.wav")
  write_float_wav(path, x, rate=22050, dtype=dtype, extensible=extensible)
  got, rate = runtime.read_wav(path)
  assert rate == 22050 and got.dtype == np.float32
  np.testing.assert_array_equal(got, x)
  with runtime.WavReader(path) as w:  # in chunks: the same samples
    parts = [w.read(1000) for _ in range(6)]
  np.testing.assert_array_equal(np.concatenate(parts), x)


@pytest.mark.parametrize("width,scale", [(1, 128), (2, 32768), (3, 1 << 23), (4, 1 << 31)])
def test_pcm_wavs_read_as_int_over_full_scale(tmp_path, width, scale):
  rng = np.random.default_rng(width)
  ints = rng.integers(-scale, scale, size=(700, 2))  # stereo: averaged to mono
  path = str(tmp_path / "p.wav")
  if width == 1:
    raw = (ints + 128).astype(np.uint8).tobytes()
  else:
    raw = b"".join(int(v).to_bytes(width, "little", signed=True) for v in ints.ravel())
  with wave.open(path, "wb") as w:
    w.setnchannels(2), w.setsampwidth(width), w.setframerate(16000)
    w.writeframes(raw)
  got, rate = runtime.read_wav(path)
  np.testing.assert_allclose(got, (ints / scale).mean(axis=1), atol=1e-7)


def test_not_a_wav_names_the_file(tmp_path):
  path = tmp_path / "x.wav"
  path.write_bytes(b"ID3\x03" + b"\0" * 100)
  with pytest.raises(ValueError, match="x.wav: not a readable wav file"):
    runtime.read_wav(str(path))
