"""TFLite Model Metadata for an exported tagger, so that MediaPipe loads it unchanged.

MediaPipe's Audio Classifier and Audio Embedder (the same C++ task on Android, iOS, Python
and the web) refuse a model without TFLite Model Metadata, since the metadata is where they
learn the input's sample rate and channel count and the scores' class names. This module
writes that metadata into a TFLite file and reads it back:

  - a `ModelMetadata` flatbuffer (schema: MediaPipe's tasks/metadata/metadata_schema.fbs,
    file identifier "M001") in a model buffer named "TFLITE_METADATA": the model's name,
    description, version, author and licence; the input tensor with `AudioProperties`
    (sample rate, channels); the outputs in subgraph order, `scores` with a
    TENSOR_AXIS_LABELS file of the class display names and `embeddings` as features;
  - the associated files (the label file, and `tagger.json` with the export's metadata.json:
    frontend settings, model and class-map ids) packed as an uncompressed zip appended to
    the model, which is where the metadata readers look for them. TFLite runtimes ignore
    the zip.

The metadata flatbuffer is built here with the `flatbuffers` package alone (tables written
field by field in the schema's slot order), so exporting needs neither MediaPipe nor
tflite-support (whose populator requires protobuf < 4). `read_metadata` parses it back the
same way, for the check every export runs; the tests read it with MediaPipe's own
generated schema code instead.
"""

import dataclasses
import io
import json
import zipfile
from typing import Dict, List, Optional, Sequence, Tuple

import flatbuffers
from flatbuffers import table as fb_table
from ai_edge_litert import schema_py_generated as tflite_schema

from tf_skeptical import errors

METADATA_BUFFER = "TFLITE_METADATA"  # the name MediaPipe's metadata extractor looks for
FILE_IDENTIFIER = b"M001"
# AudioProperties arrived in metadata schema 1.3.0; nothing newer is used.
MIN_PARSER_VERSION = "1.3.0"
LABELS_FILE = "class_labels.txt"
SETTINGS_FILE = "tagger.json"

# Enum values of metadata_schema.fbs.
_FEATURE_PROPERTIES, _AUDIO_PROPERTIES = 1, 4  # union ContentProperties
_DESCRIPTIONS, _TENSOR_AXIS_LABELS = 1, 2  # enum AssociatedFileType


@dataclasses.dataclass(frozen=True)
class TaggerMetadata:
  """What a tagger's TFLite file says about itself."""
  name: str
  description: str
  version: str
  author: str
  license: str
  sample_rate: int
  channels: int
  window_samples: int
  labels: Tuple[str, ...]  # the scores' class display names, in output order
  embedding_dims: int
  settings: Dict  # the export's metadata.json, packed as tagger.json

  def __post_init__(self):
    bad = [i for i, label in enumerate(self.labels) if not label or "\n" in label or
           "\r" in label]
    if bad:
      raise errors.BadValue(f"class display names must be non-empty single lines; class "
                       f"{bad[0]} is {self.labels[bad[0]]!r}")


def _files(meta: TaggerMetadata) -> Dict[str, bytes]:
  return {LABELS_FILE: ("\n".join(meta.labels) + "\n").encode("utf-8"),
          SETTINGS_FILE: json.dumps(meta.settings, indent=2, sort_keys=True).encode("utf-8")}


# ---- writing --------------------------------------------------------------------------

class _Writer:
  """Flatbuffer tables of metadata_schema.fbs, children before parents as flatbuffers
  require. Slot numbers are field positions in the schema (a union takes two: type, value).
  """

  def __init__(self):
    self.b = flatbuffers.Builder(1024)

  def string(self, s: Optional[str]):
    return None if s is None else self.b.CreateString(s)

  def vector(self, offsets: Sequence[int]) -> int:
    self.b.StartVector(4, len(offsets), 4)
    for o in reversed(offsets):
      self.b.PrependUOffsetTRelative(o)
    return self.b.EndVector()

  def table(self, num_slots: int, offsets: Dict[int, Optional[int]] = None,
            int8s: Dict[int, int] = None, uint8s: Dict[int, int] = None,
            uint32s: Dict[int, int] = None) -> int:
    self.b.StartObject(num_slots)
    for slot, value in (uint32s or {}).items():
      self.b.PrependUint32Slot(slot, value, 0)
    for slot, value in (offsets or {}).items():
      if value is not None:
        self.b.PrependUOffsetTRelativeSlot(slot, value, 0)
    for slot, value in (int8s or {}).items():
      self.b.PrependInt8Slot(slot, value, 0)
    for slot, value in (uint8s or {}).items():
      self.b.PrependUint8Slot(slot, value, 0)
    return self.b.EndObject()

  def associated_file(self, name: str, description: str, file_type: int) -> int:
    n, d = self.string(name), self.string(description)
    return self.table(5, offsets={0: n, 1: d}, int8s={2: file_type})

  def content(self, properties_type: int, properties: int) -> int:
    return self.table(3, offsets={1: properties}, uint8s={0: properties_type})

  def tensor(self, name: str, description: str, content: int,
             files: Sequence[int] = ()) -> int:
    n, d = self.string(name), self.string(description)
    f = self.vector(files) if files else None
    return self.table(7, offsets={0: n, 1: d, 3: content, 6: f})


def metadata_buffer(meta: TaggerMetadata, output_order: Sequence[str]) -> bytes:
  """The ModelMetadata flatbuffer; `output_order` names the subgraph's outputs in order
  ("scores", "embeddings")."""
  w = _Writer()
  audio = w.table(2, uint32s={0: meta.sample_rate, 1: meta.channels})
  waveform = w.tensor(
      "waveform", f"{meta.window_samples} samples of mono audio at {meta.sample_rate} Hz, "
      "float32 in [-1, 1]", w.content(_AUDIO_PROPERTIES, audio))
  outputs = {}
  labels = w.associated_file(LABELS_FILE, "Class display names, one per score, in order.",
                             _TENSOR_AXIS_LABELS)
  outputs["scores"] = w.tensor(
      "scores", f"Sigmoid probability of each of the {len(meta.labels)} classes (several "
      "can be present at once).", w.content(_FEATURE_PROPERTIES, w.table(0)), [labels])
  outputs["embeddings"] = w.tensor(
      "embeddings", f"{meta.embedding_dims}-dimensional embedding of the window (the "
      "network's last hidden layer).", w.content(_FEATURE_PROPERTIES, w.table(0)))
  unknown = set(output_order) - set(outputs)
  if unknown or len(output_order) != len(outputs):
    raise errors.BadValue(f"tagger outputs {list(output_order)}: expected scores and embeddings")
  settings = w.associated_file(
      SETTINGS_FILE, "tf_skeptical export metadata: frontend settings, model and class-map "
      "ids (metadata.json of the export directory).", _DESCRIPTIONS)
  subgraph = w.table(10, offsets={
      0: w.string(meta.name), 2: w.vector([waveform]),
      3: w.vector([outputs[k] for k in output_order])})
  strings = {k: w.string(getattr(meta, k))
             for k in ("name", "description", "version", "author", "license")}
  root = w.table(8, offsets={
      0: strings["name"], 1: strings["description"], 2: strings["version"],
      3: w.vector([subgraph]), 4: strings["author"], 5: strings["license"],
      6: w.vector([settings]), 7: w.string(MIN_PARSER_VERSION)})
  w.b.Finish(root, file_identifier=FILE_IDENTIFIER)
  return bytes(w.b.Output())


def _output_order(model: "tflite_schema.ModelT", signature: str) -> List[str]:
  """Signature output names in the order of the subgraph's output tensors."""
  for sig in model.signatureDefs or []:
    if sig.signatureKey.decode() == signature:
      by_tensor = {t.tensorIndex: t.name.decode() for t in sig.outputs}
      subgraph = model.subgraphs[sig.subgraphIndex]
      return [by_tensor[int(i)] for i in subgraph.outputs]
  raise errors.BadValue(f"the TFLite model has no signature {signature!r}")


def with_metadata(model_bytes: bytes, meta: TaggerMetadata, signature: str = "patch") -> bytes:
  """The TFLite model with `meta` written in (replacing metadata written before)."""
  model = tflite_schema.ModelT.InitFromObj(tflite_schema.Model.GetRootAsModel(
      bytearray(_flatbuffer_part(model_bytes)), 0))
  buffer = tflite_schema.BufferT()
  buffer.data = list(metadata_buffer(meta, _output_order(model, signature)))
  entries = [m for m in (model.metadata or []) if m.name.decode() != METADATA_BUFFER]
  entry = tflite_schema.MetadataT()
  entry.name = METADATA_BUFFER
  entry.buffer = len(model.buffers)
  model.buffers.append(buffer)  # an old metadata buffer stays, unreferenced and small
  model.metadata = entries + [entry]
  b = flatbuffers.Builder(len(model_bytes) + 4096)
  b.Finish(model.Pack(b), file_identifier=b"TFL3")
  out = io.BytesIO(bytes(b.Output()))
  with zipfile.ZipFile(out, "a", compression=zipfile.ZIP_STORED) as z:
    for name, data in _files(meta).items():
      z.writestr(zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0)), data)
  return out.getvalue()


# ---- reading --------------------------------------------------------------------------

def _flatbuffer_part(model_bytes: bytes) -> bytes:
  """The model without an appended zip of associated files."""
  try:
    with zipfile.ZipFile(io.BytesIO(model_bytes)) as z:
      starts = [i.header_offset for i in z.infolist()]
  except zipfile.BadZipFile:
    return model_bytes
  return model_bytes[:min(starts)] if starts else model_bytes


class _Table:
  """Reads fields of one flatbuffer table by slot number."""

  def __init__(self, buf: bytes, pos: int):
    self.t = fb_table.Table(buf, pos)

  def _offset(self, slot: int) -> int:
    return self.t.Offset(4 + 2 * slot)

  def string(self, slot: int) -> Optional[str]:
    o = self._offset(slot)
    return self.t.String(o + self.t.Pos).decode("utf-8") if o else None

  def scalar(self, slot: int, flags, default=0):
    o = self._offset(slot)
    return self.t.Get(flags, o + self.t.Pos) if o else default

  def child(self, slot: int) -> Optional["_Table"]:
    o = self._offset(slot)
    return _Table(self.t.Bytes, self.t.Indirect(o + self.t.Pos)) if o else None

  def children(self, slot: int) -> List["_Table"]:
    o = self._offset(slot)
    if not o:
      return []
    start = self.t.Vector(o)
    return [_Table(self.t.Bytes, self.t.Indirect(start + 4 * i))
            for i in range(self.t.VectorLen(o))]


def _read_tensor(t: _Table) -> dict:
  content = t.child(3)
  kind = content.scalar(0, flatbuffers.number_types.Uint8Flags) if content else 0
  out = dict(name=t.string(0), description=t.string(1), content=kind,
             files=[dict(name=f.string(0), type=f.scalar(2, flatbuffers.number_types.Int8Flags))
                    for f in t.children(6)])
  if kind == _AUDIO_PROPERTIES:
    props = content.child(1)
    out.update(sample_rate=props.scalar(0, flatbuffers.number_types.Uint32Flags),
               channels=props.scalar(1, flatbuffers.number_types.Uint32Flags))
  return out


def read_metadata(model_bytes: bytes) -> dict:
  """The metadata and associated files of a TFLite model, as plain Python values; raises
  ValueError naming what is missing."""
  model = tflite_schema.Model.GetRootAsModel(_flatbuffer_part(model_bytes), 0)
  names = {model.Metadata(i).Name().decode(): model.Metadata(i).Buffer()
           for i in range(model.MetadataLength())}
  if METADATA_BUFFER not in names:
    raise errors.BadValue(f"the model has no {METADATA_BUFFER} buffer (no TFLite Model Metadata)")
  buf = model.Buffers(names[METADATA_BUFFER]).DataAsNumpy().tobytes()
  if buf[4:8] != FILE_IDENTIFIER:
    raise errors.BadValue(f"{METADATA_BUFFER} is not a ModelMetadata flatbuffer")
  root = _Table(buf, flatbuffers.encode.Get(flatbuffers.packer.uoffset, buf, 0))
  subgraphs = root.children(3)
  if len(subgraphs) != 1:
    raise errors.BadValue(f"expected metadata for 1 subgraph, found {len(subgraphs)}")
  with zipfile.ZipFile(io.BytesIO(model_bytes)) as z:
    packed = {i.filename: z.read(i) for i in z.infolist()
              if i.compress_type == zipfile.ZIP_STORED}
  return dict(
      name=root.string(0), description=root.string(1), version=root.string(2),
      author=root.string(4), license=root.string(5), min_parser_version=root.string(7),
      model_files=[f.string(0) for f in root.children(6)],
      inputs=[_read_tensor(t) for t in subgraphs[0].children(2)],
      outputs=[_read_tensor(t) for t in subgraphs[0].children(3)],
      packed_files=packed)


def check_metadata(model_bytes: bytes, meta: TaggerMetadata, signature: str = "patch") -> dict:
  """Reads the metadata back and compares it with what was written: audio properties,
  output order, label file, settings. Raises RuntimeError listing every difference."""
  got = read_metadata(model_bytes)
  model = tflite_schema.ModelT.InitFromObj(
      tflite_schema.Model.GetRootAsModel(_flatbuffer_part(model_bytes), 0))
  order = _output_order(model, signature)
  problems = []
  want = dict(name=meta.name, version=meta.version, license=meta.license,
              min_parser_version=MIN_PARSER_VERSION)
  problems += [f"{k} is {got[k]!r}, not {v!r}" for k, v in want.items() if got[k] != v]
  audio = got["inputs"][0] if len(got["inputs"]) == 1 else {}
  if (audio.get("content"), audio.get("sample_rate"), audio.get("channels")) != (
      _AUDIO_PROPERTIES, meta.sample_rate, meta.channels):
    problems.append(f"input metadata {audio} lacks AudioProperties({meta.sample_rate} Hz, "
                    f"{meta.channels} channel)")
  if [t["name"] for t in got["outputs"]] != order:
    problems.append(f"outputs described as {[t['name'] for t in got['outputs']]}, but the "
                    f"model's outputs are {order}")
  scores = next((t for t in got["outputs"] if t["name"] == "scores"), {})
  if scores.get("files") != [dict(name=LABELS_FILE, type=_TENSOR_AXIS_LABELS)]:
    problems.append(f"scores metadata has files {scores.get('files')}, not the label file")
  for name, data in _files(meta).items():
    if got["packed_files"].get(name) != data:
      problems.append(f"packed {name} is missing or differs")
  if problems:
    raise errors.Failed("TFLite metadata check failed: " + "; ".join(problems))
  return dict(min_parser_version=got["min_parser_version"], outputs=order,
              labels=len(meta.labels), packed_files=sorted(got["packed_files"]))
