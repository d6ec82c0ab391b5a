"""AudioSet's released embedding TFRecords (tf.train.SequenceExample).

Context: `video_id` bytes, `start_time_seconds` / `end_time_seconds` float, `labels` int64
(class-map indices). Feature list `audio_embedding`: one 128-byte quantized vector per second.
"""

from typing import NamedTuple

import numpy as np
import tensorflow as tf

from tf_skeptical.util import example_wire
from tf_skeptical.util.bad_input import DataError

EMBEDDING_DIMS = 128
SECONDS_PER_CLIP = 10


class EmbeddingClip(NamedTuple):
  clip_id: str
  start_seconds: float
  end_seconds: float
  labels: tuple
  embeddings: np.ndarray  # [SECONDS_PER_CLIP, 128] float32, dequantized to about [-1, 1]
  codes: np.ndarray  # the same [SECONDS_PER_CLIP, 128] as released: uint8, zero-padded = 128


def dequantize(quantized: np.ndarray) -> np.ndarray:
  """uint8 codes -> float32 centred on zero: (q - 128) / 128."""
  return (quantized.astype(np.float32) - 128.0) / 128.0


def parse_sequence_example(record: bytes, num_classes: int, path: str) -> EmbeddingClip:
  """Parses one record; frames are zero-padded (or cropped) to 10 seconds."""
  try:
    example = tf.train.SequenceExample.FromString(record)
  except Exception as e:  # protobuf raises DecodeError, a private subclass
    raise DataError(path, f"record is not a tf.train.SequenceExample ({e})")
  context = example.context.feature
  if "video_id" not in context or not context["video_id"].bytes_list.value:
    raise DataError(path, "SequenceExample has no context feature video_id")
  clip_id = context["video_id"].bytes_list.value[0].decode("utf-8")
  labels = tuple(int(x) for x in context["labels"].int64_list.value)
  bad = [x for x in labels if not 0 <= x < num_classes]
  if bad:
    raise DataError(path, f"clip {clip_id}: label index {bad[0]} is outside the class map "
                    f"(0..{num_classes - 1})")
  frames = example.feature_lists.feature_list["audio_embedding"].feature
  rows = [np.frombuffer(f.bytes_list.value[0], dtype=np.uint8) for f in frames]
  if not rows:
    raise DataError(path, f"clip {clip_id}: no audio_embedding frames")
  if any(r.shape != (EMBEDDING_DIMS,) for r in rows):
    raise DataError(path, f"clip {clip_id}: an audio_embedding frame is not {EMBEDDING_DIMS} bytes")
  codes = np.full([SECONDS_PER_CLIP, EMBEDDING_DIMS], 128, np.uint8)  # 128 decodes to 0
  kept = rows[:SECONDS_PER_CLIP]
  codes[:len(kept)] = np.stack(kept)

  def seconds(key):
    values = context[key].float_list.value if key in context else []
    return float(values[0]) if values else 0.0

  return EmbeddingClip(clip_id, seconds("start_time_seconds"), seconds("end_time_seconds"),
                       tuple(sorted(set(labels))), dequantize(codes), codes)


def make_sequence_example(clip_id: str, start: float, end: float, labels, quantized) -> bytes:
  """Builds a record in the exact released layout (tests, the demo data and the AudioSet
  simulation, which writes millions: hence protobuf's wire format directly)."""
  return example_wire.sequence_example(
      {"video_id": example_wire.bytes_feature([clip_id.encode("utf-8")]),
       "start_time_seconds": example_wire.float_feature([start]),
       "end_time_seconds": example_wire.float_feature([end]),
       "labels": example_wire.int64_feature(labels)},
      {"audio_embedding": [example_wire.bytes_feature([row.tobytes()])
                           for row in np.asarray(quantized, np.uint8)]})
