"""AudioSet's released embedding TFRecords (tf.train.SequenceExample).

Context: `video_id` bytes, `start_time_seconds` / `end_time_seconds` float, `labels` int64
(class-map indices). Feature list `audio_embedding`: one 128-byte quantized vector per second.
"""

from typing import NamedTuple

import numpy as np
import tensorflow as tf

from tf_skeptical.bad_input import DataError

EMBEDDING_DIMS = 128
SECONDS_PER_CLIP = 10


class EmbeddingClip(NamedTuple):
  clip_id: str
  start_seconds: float
  end_seconds: float
  labels: tuple
  embeddings: np.ndarray  # [SECONDS_PER_CLIP, 128] float32, dequantized to about [-1, 1]


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
  embeddings = np.zeros([SECONDS_PER_CLIP, EMBEDDING_DIMS], np.float32)
  rows = dequantize(np.stack(rows[:SECONDS_PER_CLIP]))
  embeddings[:len(rows)] = rows

  def seconds(key):
    values = context[key].float_list.value if key in context else []
    return float(values[0]) if values else 0.0

  return EmbeddingClip(clip_id, seconds("start_time_seconds"), seconds("end_time_seconds"),
                       tuple(sorted(set(labels))), embeddings)


def make_sequence_example(clip_id: str, start: float, end: float, labels, quantized) -> bytes:
  """Builds a record in the exact released layout (used by tests and the demo data)."""
  context = tf.train.Features(feature={
      "video_id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[clip_id.encode()])),
      "start_time_seconds": tf.train.Feature(float_list=tf.train.FloatList(value=[start])),
      "end_time_seconds": tf.train.Feature(float_list=tf.train.FloatList(value=[end])),
      "labels": tf.train.Feature(int64_list=tf.train.Int64List(value=list(labels))),
  })
  frames = [tf.train.Feature(bytes_list=tf.train.BytesList(value=[bytes(row)]))
            for row in np.asarray(quantized, np.uint8)]
  lists = tf.train.FeatureLists(feature_list={
      "audio_embedding": tf.train.FeatureList(feature=frames)})
  return tf.train.SequenceExample(context=context, feature_lists=lists).SerializeToString()
