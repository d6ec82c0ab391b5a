"""util/native_output.py: what native code writes to fds 1 and 2 is held back when
TensorFlow's C++ logging is turned down, shown when the block fails, and passed through
when it is not turned down. os.write stands in for C++ (it bypasses Python's streams)."""

import os

import pytest

from tf_skeptical.util.native_output import held_native_output


def test_held_when_quiet_and_descriptors_restored(capfd, monkeypatch):
  monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
  with held_native_output():
    os.write(1, b"fully_quantize: 0\n")
    os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
  os.write(2, b"after the block\n")
  out, err = capfd.readouterr()
  assert "fully_quantize" not in out and "XNNPACK" not in err
  assert err == "after the block\n"


def test_shown_when_the_block_fails(capfd, monkeypatch):
  monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
  with pytest.raises(RuntimeError, match="conversion failed"):
    with held_native_output():
      os.write(2, b"error: 'tfl.conv_2d' op is neither a custom op nor a flex op")
      raise RuntimeError("conversion failed")
  assert capfd.readouterr().err == (
      "error: 'tfl.conv_2d' op is neither a custom op nor a flex op\n")


@pytest.mark.parametrize("level", ["0", None])
def test_passed_through_unless_quiet(capfd, monkeypatch, level):
  if level is None:
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
  else:
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", level)
  with held_native_output():
    os.write(2, b"native line\n")
  assert capfd.readouterr().err == "native line\n"
