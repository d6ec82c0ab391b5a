"""tf.train.Example records written straight in protobuf's wire format.

The score job writes one record per clip with 527 floats; building it through the
protobuf classes costs about 170 us a record (most of it copying floats one by one into a
repeated field), which at AudioSet's 2M clips is longer than the model's forward pass. Here
a float feature is the array's little-endian bytes behind a length, as protobuf packs a
`repeated float`; the result parses as the same tf.train.Example (tests/test_formats.py
checks it against the protobuf classes). The AudioSet simulation writes its
SequenceExamples the same way.

Wire format used (tensorflow/core/example/{example,feature}.proto): Example.features = 1;
Features.feature = 1, a map<string, Feature> whose entries are {key = 1, value = 2};
Feature: bytes_list = 1, float_list = 2, int64_list = 3; each list's `value = 1`, packed
for floats and ints.
"""

from typing import Mapping, Sequence

import numpy as np

_LEN = 2  # wire type of a length-delimited field


def _encode_varint(n: int) -> bytes:
  if n < 0:
    n += 1 << 64  # int64 negatives take ten bytes, as two's complement
  out = bytearray()
  while True:
    byte = n & 0x7F
    n >>= 7
    if n:
      out.append(byte | 0x80)
    else:
      out.append(byte)
      return bytes(out)


_SMALL = [_encode_varint(n) for n in range(1 << 14)]  # lengths, tags, class indices


def _varint(n: int) -> bytes:
  return _SMALL[n] if 0 <= n < 16384 else _encode_varint(n)


def _field(number: int, payload: bytes) -> bytes:
  return _varint(number << 3 | _LEN) + _varint(len(payload)) + payload


def float_feature(values) -> bytes:
  """A Feature holding a float_list (packed little-endian float32)."""
  packed = np.ascontiguousarray(values, "<f4").tobytes()
  return _field(2, _field(1, packed) if packed else b"")


def int64_feature(values: Sequence[int]) -> bytes:
  """A Feature holding an int64_list (packed varints)."""
  packed = b"".join(_varint(int(v)) for v in values)
  return _field(3, _field(1, packed) if packed else b"")


def bytes_feature(values: Sequence[bytes]) -> bytes:
  """A Feature holding a bytes_list."""
  return _field(1, b"".join(_field(1, v) for v in values))


def _map_entries(entries: Mapping[str, bytes]) -> bytes:
  return b"".join(_field(1, _field(1, name.encode("utf-8")) + _field(2, value))
                  for name, value in entries.items())


def example(features: Mapping[str, bytes]) -> bytes:
  """Serialized tf.train.Example from name -> encoded Feature (the *_feature functions)."""
  return _field(1, _map_entries(features))


def sequence_example(context: Mapping[str, bytes],
                     feature_lists: Mapping[str, Sequence[bytes]]) -> bytes:
  """Serialized tf.train.SequenceExample: context = 1 (Features), feature_lists = 2
  (map<string, FeatureList>, a FeatureList being `repeated Feature feature = 1`)."""
  lists = {name: b"".join(_field(1, f) for f in feats) for name, feats in feature_lists.items()}
  return _field(1, _map_entries(context)) + _field(2, _map_entries(lists))
