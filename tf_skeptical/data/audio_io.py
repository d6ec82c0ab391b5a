"""Audio decoding in the TensorFlow graph: the package's only use of tensorflow-io.

Kept in one module so the stack can move when tensorflow-io does (its kernels load only
with TF <= 2.17). Decodes wav/flac/ogg/mp3 at any rate, mono or multichannel, and returns
16 kHz mono float32 in [-1, 1].

Note: tensorflow-io's resampler delays its output by a few milliseconds (141 samples at
16 kHz for 22.05/44.1 kHz input), less than one STFT hop; 16 kHz input is passed through
untouched.
"""

import tensorflow as tf
from tensorflow_io.python.ops import core_ops

from tf_skeptical import errors
from tf_skeptical.data.params import DEFAULT_FRONTEND, FrontendParams

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")

# Sample types the readers report, and the offset and scale that map each into [-1, 1]
# (8-bit PCM is unsigned, centred on 128).
_SAMPLE_TYPES = ((tf.int16, 0.0, 1.0 / 32768.0), (tf.int32, 0.0, 1.0 / 2147483648.0),
                 (tf.float32, 0.0, 1.0), (tf.uint8, 128.0, 1.0 / 128.0))
UNSUPPORTED = "unsupported sample format (8, 16 or 32-bit PCM, or 32-bit float, are read)"


def decode_audio(path):
  """Reads an audio file: returns (samples [N, channels] float32 in [-1, 1], rate int64).

  Works eagerly and inside tf.function / tf.data. The reader's static dtype must match the
  file's, or the kernel aborts the process, so the read is dispatched on the type the file
  reports.
  """
  resource = core_ops.io_audio_readable_init(path)
  _, dtype, rate = core_ops.io_audio_readable_spec(resource)
  codes = tf.constant([t.as_datatype_enum for t, _, _ in _SAMPLE_TYPES], tf.int32)
  match = tf.where(tf.equal(codes, tf.cast(dtype, tf.int32)))[:, 0]
  tf.debugging.assert_equal(tf.size(match), 1, message=UNSUPPORTED)

  def reader(sample_type, offset, scale):
    return lambda: (tf.cast(core_ops.io_audio_readable_read(
        resource, 0, -1, dtype=sample_type), tf.float32) - offset) * scale

  samples = tf.switch_case(tf.cast(match[0], tf.int32),
                           [reader(*t) for t in _SAMPLE_TYPES])
  # Clipped into [-1, 1]; NaN and Inf are kept, for the caller to refuse (clipping would
  # turn an Inf into a plausible 1.0).
  finite = tf.math.is_finite(samples)
  return (tf.where(finite, tf.clip_by_value(samples, -1.0, 1.0), samples),
          tf.cast(rate, tf.int64))


def _scaled(resource, dtype, start, stop):
  """Samples [start, stop) of an opened file, as float32 in [-1, 1] (NaN and Inf kept)."""
  match = [i for i, (t, _, _) in enumerate(_SAMPLE_TYPES) if t.as_datatype_enum == int(dtype)]
  if not match:
    raise errors.BadValue(UNSUPPORTED)
  sample_type, offset, scale = _SAMPLE_TYPES[match[0]]
  samples = (tf.cast(core_ops.io_audio_readable_read(resource, start, stop, dtype=sample_type),
                     tf.float32) - offset) * scale
  return tf.where(tf.math.is_finite(samples), tf.clip_by_value(samples, -1.0, 1.0), samples)


def decode_blocks(path: str, params: FrontendParams = DEFAULT_FRONTEND,
                  block_seconds: int = 30):
  """An audio file as consecutive blocks of mono float32 at the frontend's rate (eager), read
  a block at a time, so that an hour of audio needs no more memory than a block. The blocks
  joined equal load_clip's waveform: at another rate each block is resampled with a second
  of the file on either side and cut at its own samples (the resampler's filter reaches
  far less than a second)."""
  resource = core_ops.io_audio_readable_init(path)
  shape, dtype, rate = core_ops.io_audio_readable_spec(resource)
  total, rate, target = int(shape[0]), int(rate), params.sample_rate
  block = block_seconds * rate
  margin = 0 if rate == target else rate  # whole seconds: every cut lands on an output sample
  for start in range(0, total, block):
    stop = min(start + block, total)
    first, last = max(0, start - margin), min(total, stop + margin)
    mono = tf.reduce_mean(_scaled(resource, dtype, first, last), axis=1)
    if rate == target:
      yield mono.numpy()
      continue
    out = core_ops.io_audio_resample(mono[:, None], rate_in=rate, rate_out=target)[:, 0]
    begin = (start - first) * target // rate
    end = None if stop == total else (stop - first) * target // rate
    yield out[begin:end].numpy()


def to_mono_16k(samples, rate, params: FrontendParams = DEFAULT_FRONTEND):
  """Downmixes [N, channels] to mono and resamples to the frontend's rate."""
  mono = tf.reduce_mean(samples, axis=1)
  target = params.sample_rate
  return tf.cond(
      tf.equal(rate, target),
      lambda: mono,
      lambda: core_ops.io_audio_resample(mono[:, None], rate_in=rate, rate_out=target)[:, 0])


def fit_length(waveform, num_samples: int):
  """Zero-pads or crops a waveform to exactly num_samples."""
  waveform = waveform[:num_samples]
  return tf.pad(waveform, [[0, num_samples - tf.shape(waveform)[0]]])


def load_clip(path, clip_samples=None, params: FrontendParams = DEFAULT_FRONTEND):
  """Decodes a file to 16 kHz mono float32; padded or cropped when clip_samples is set."""
  samples, rate = decode_audio(path)
  waveform = to_mono_16k(samples, rate, params)
  if clip_samples:
    waveform = fit_length(waveform, clip_samples)
  return waveform


def wav_bytes(waveform, sample_rate: int) -> tf.Tensor:
  """Float samples ([N] or [N, channels], in [-1, 1]) as the bytes of a 16-bit wav."""
  waveform = tf.convert_to_tensor(waveform, tf.float32)
  if waveform.shape.rank == 1:
    waveform = waveform[:, None]
  return tf.audio.encode_wav(tf.clip_by_value(waveform, -1.0, 1.0), sample_rate)


def write_wav(path: str, waveform, sample_rate: int) -> None:
  """Writes float samples ([N] or [N, channels], in [-1, 1]) as 16-bit wav."""
  tf.io.write_file(path, wav_bytes(waveform, sample_rate))
