"""Frontend and patching parameters: one frozen dataclass, YAMNet's numbers by default.

`prepare` turns audio into log-mel frames with them and records them in the examples'
manifest (examples.Features); training records them in the model; scoring, evaluation and
export take them from there, so the exported on-device frontend is the one the model was
trained on.
"""

import dataclasses
import math
from typing import Optional


@dataclasses.dataclass(frozen=True)
class FrontendParams:
  """Log-mel frontend and patching, as YAMNet defines them."""

  sample_rate: int = 16000
  stft_window_seconds: float = 0.025
  stft_hop_seconds: float = 0.010
  mel_bands: int = 64
  mel_min_hz: float = 125.0
  mel_max_hz: float = 7500.0
  log_offset: float = 0.001
  patch_frames: int = 96
  # Hop between patches: YAMNet uses 48 frames (0.48 s) at inference.
  patch_hop_frames: int = 48

  @property
  def window_samples(self) -> int:
    return int(round(self.sample_rate * self.stft_window_seconds))

  @property
  def hop_samples(self) -> int:
    return int(round(self.sample_rate * self.stft_hop_seconds))

  @property
  def fft_length(self) -> int:
    return 2 ** int(math.ceil(math.log2(self.window_samples)))

  @property
  def spectrogram_bins(self) -> int:
    return self.fft_length // 2 + 1

  @property
  def patch_seconds(self) -> float:
    return self.patch_frames * self.stft_hop_seconds

  @property
  def min_patch_samples(self) -> int:
    """Samples needed for one whole patch of frames: an exported tagger's window."""
    return (self.patch_frames - 1) * self.hop_samples + self.window_samples

  @property
  def patch_hop_samples(self) -> int:
    """Samples between the starts of consecutive inference patches."""
    return self.patch_hop_frames * self.hop_samples

  def num_frames(self, num_samples: int) -> int:
    if num_samples < self.window_samples:
      return 0
    return 1 + (num_samples - self.window_samples) // self.hop_samples

  def num_patches(self, num_frames: int, hop_frames: Optional[int] = None) -> int:
    """Whole patches in num_frames, every hop_frames (default: the inference hop)."""
    if num_frames < self.patch_frames:
      return 0
    return 1 + (num_frames - self.patch_frames) // (hop_frames or self.patch_hop_frames)


DEFAULT_FRONTEND = FrontendParams()
