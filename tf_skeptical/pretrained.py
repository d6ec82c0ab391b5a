"""Starting from a pretrained tagger: YAMNet's released weights under Keras 3, or a run of
this project, with the classifier head mapped onto the user's class map by mid.

YAMNet's official model code names its layers `layer1/conv`, ..., which Keras 3 refuses, so
its released `yamnet.h5` (Keras 2's save_weights layout) is read here with h5py: its layers
with weights, in the file's order (1 conv + its BatchNorm, 13 x depthwise, BatchNorm,
pointwise, BatchNorm, and the `logits` Dense of 521 classes with bias: 55), each array
checked against this project's MobileNetV1 at width 1.0, which has YAMNet's layers in the
same order (models.py). A file of another layout is refused in one line naming the layer
and the shapes. The head is mapped by mid through YAMNet's class map
(`yamnet_class_map.csv`, index,mid,display_name, beside the weights file by default): a
class the user's map shares with it starts from YAMNet's weights, a new class starts fresh.

The weights file is the user's download: nothing here fetches it.
"""

import dataclasses
import os
from typing import List, Optional, Sequence, Tuple

import numpy as np

from tf_skeptical import errors, models
from tf_skeptical.data.class_map import read_class_map
from tf_skeptical.util import files, provenance

YAMNET_CLASS_MAP = "yamnet_class_map.csv"
YAMNET_LAYERS = 55  # weighted layers of yamnet.h5
YAMNET = "yamnet"  # a start's kind: YAMNet's released weights
RUN = "run"  # or a model of this project


@dataclasses.dataclass(frozen=True)
class Start:
  """What a run started from (result.json's `init_from`, and the exported tagger's)."""

  path: str
  kind: str  # YAMNET or RUN
  file_id: str
  classes_kept: int  # classes of the user's map whose head started from the source's
  classes_new: int  # classes the source does not know, started fresh


def read_h5_layers(path: str) -> List[Tuple[str, List[np.ndarray]]]:
  """(layer name, its arrays) for every layer with weights of a Keras 2 weights file, in
  the file's layer order."""
  import h5py
  try:
    with files.open(path, "rb") as raw, h5py.File(raw, "r") as f:
      root = f["model_weights"] if "model_weights" in f else f
      out = []
      for name in root.attrs["layer_names"]:
        name = name.decode() if isinstance(name, bytes) else str(name)
        group = root[name]
        weight_names = [w.decode() if isinstance(w, bytes) else str(w)
                        for w in group.attrs.get("weight_names", [])]
        if weight_names:
          out.append((name, [np.asarray(group[w]) for w in weight_names]))
      return out
  except (OSError, KeyError) as e:
    raise errors.BadValue(f"{path}: not a Keras weights file in YAMNet's released layout "
                          f"({e})") from None


def read_class_map_mids(path: str) -> List[str]:
  """The mids of the source's class map (data/class_map.py reads and checks it)."""
  if not files.exists(path):
    raise errors.BadValue(f"{path}: no class map for the weights to start from (YAMNet's "
                          f"is {YAMNET_CLASS_MAP}, beside yamnet.h5 in its download): give "
                          "--init_class_map")
  return list(read_class_map(path).mids)


def _weighted(model) -> list:
  return [layer for layer in model.layers if layer.weights]


def _check_shapes(path: str, name: str, arrays, layer) -> None:
  want = [tuple(w.shape) for w in layer.weights]
  have = [tuple(a.shape) for a in arrays]
  if want != have:
    raise errors.BadValue(f"{path}: layer {name} holds arrays of shapes {have}, but "
                          f"{layer.name} of this MobileNetV1 at width 1.0 needs {want}: not "
                          "YAMNet's released layout")


def map_head(head, kernel: np.ndarray, bias: np.ndarray, source_mids: Sequence[str],
             target_mids: Sequence[str]) -> Tuple[int, int]:
  """Sets the Dense `head`'s columns of the classes whose mids the source knows to the
  source's; the others keep their fresh initialisation. Returns (kept, new)."""
  index = {mid: i for i, mid in enumerate(source_mids)}
  if kernel.shape[1] != len(source_mids):
    raise errors.BadValue(f"the source's head has {kernel.shape[1]} classes, its class map "
                          f"{len(source_mids)}: they do not belong together")
  new_kernel, new_bias = (np.array(w) for w in head.get_weights())
  kept = 0
  for j, mid in enumerate(target_mids):
    if mid in index:
      new_kernel[:, j], new_bias[j] = kernel[:, index[mid]], bias[index[mid]]
      kept += 1
  head.set_weights([new_kernel, new_bias])
  return kept, len(target_mids) - kept


def load_yamnet(model, path: str, target_mids: Sequence[str],
                class_map: Optional[str] = None) -> Start:
  """YAMNet's released weights into `model` (models.mobilenet_v1 at width 1.0 on 96 x 64
  patches), the head mapped by mid from YAMNet's class map (default: beside the file)."""
  source_mids = read_class_map_mids(class_map or os.path.join(os.path.dirname(path),
                                                              YAMNET_CLASS_MAP))
  layers_in_file, ours = read_h5_layers(path), _weighted(model)
  if len(layers_in_file) != len(ours):
    raise errors.BadValue(f"{path}: {len(layers_in_file)} layers with weights, but YAMNet's "
                          f"released layout has {YAMNET_LAYERS} (this model: {len(ours)}): "
                          "give yamnet.h5, and --model=mobilenet_v1 --width=1")
  for (name, arrays), layer in zip(layers_in_file[:-1], ours[:-1]):
    _check_shapes(path, name, arrays, layer)
    layer.set_weights(arrays)
  name, arrays = layers_in_file[-1]
  head = ours[-1]
  if head.name != models.LOGITS_LAYER or len(arrays) != 2 or (
      arrays[0].shape[0] != head.weights[0].shape[0]):
    raise errors.BadValue(f"{path}: its last layer {name} holds arrays of shapes "
                          f"{[a.shape for a in arrays]}, not a {head.weights[0].shape[0]} x "
                          "classes Dense with bias: not YAMNet's released layout")
  kept, new = map_head(head, arrays[0], arrays[1], source_mids, target_mids)
  return Start(files.absolute(path), YAMNET, provenance.file_id(path), kept, new)


def load_run(model, path: str, target_mids: Sequence[str],
             class_map: Optional[str] = None) -> Start:
  """A model of this project (a run directory or .keras file, same architecture) into
  `model`: every layer by name, the head by mid (the source's class map from its run's
  train examples, or class_map)."""
  from tf_skeptical import inference
  from tf_skeptical.data import examples
  source = inference.load_model(path)
  if class_map:
    source_mids = read_class_map_mids(class_map)
  else:
    result = os.path.join(path, "result.json")
    if not files.exists(result):
      raise errors.BadValue(f"{path}: no result.json to find its class map from: give "
                            "--init_class_map")
    source_mids = list(examples.read_info(files.read_json(result)["train_dir"]).class_map.mids)
  theirs = {layer.name: layer for layer in _weighted(source)}
  for layer in _weighted(model)[:-1]:
    if layer.name not in theirs:
      raise errors.BadValue(f"{path}: has no layer {layer.name}: another architecture than "
                            f"{model.name}")
    _check_same(path, layer, theirs[layer.name])
    layer.set_weights(theirs[layer.name].get_weights())
  kernel, bias = theirs[models.LOGITS_LAYER].get_weights()
  kept, new = map_head(_weighted(model)[-1], kernel, bias, source_mids, target_mids)
  return Start(files.absolute(path), RUN, inference.model_id(path), kept, new)


def _check_same(path, layer, theirs) -> None:
  want = [tuple(w.shape) for w in layer.weights]
  have = [tuple(w.shape) for w in theirs.weights]
  if want != have:
    raise errors.BadValue(f"{path}: layer {layer.name} has shapes {have}, this model needs "
                          f"{want}: another width or architecture")


def is_weights_file(path: str) -> bool:
  """Whether `path` names a Keras 2 weights file (YAMNet's release), not a run."""
  return path.endswith((".h5", ".hdf5"))


def yamnet_teacher(path: str, info, class_map: Optional[str] = None):
  """YAMNet's released weights as the teacher of `info`'s examples (examples.ExamplesInfo,
  prepared with YAMNet's frontend): a model of this project for their class map, whose
  classes that YAMNet knows (by mid) take its head. Returns (model, the indices of the
  classes it does not know): their scores mean nothing, so scoring writes them as NaN and
  flagging leaves them unflagged."""
  from tf_skeptical.data import examples
  from tf_skeptical.data.params import DEFAULT_FRONTEND
  from tf_skeptical.masked_loss import MaskedBCEModel
  if info.features.kind != examples.LOG_MEL or info.features.frontend != DEFAULT_FRONTEND:
    raise errors.BadValue(f"{path}: YAMNet's weights take YAMNet's log-mel frontend, but the "
                          f"examples {info.directory} were prepared with another "
                          f"({info.features.kind}): prepare them with tfsk_prepare's defaults")
  source_csv = class_map or os.path.join(os.path.dirname(path), YAMNET_CLASS_MAP)
  backbone = models.mobilenet_v1(tuple(info.features.input_shape), info.num_classes, 1.0)
  load_yamnet(backbone, path, info.class_map.mids, source_csv)
  known = set(read_class_map_mids(source_csv))
  unknown = np.array([i for i, mid in enumerate(info.class_map.mids) if mid not in known],
                     np.int64)
  model = MaskedBCEModel.wrap(backbone, features=info.features.to_dict(), made_from={
      k: info.extra.get(k) for k in ("clips_id", "class_map_id")})
  return model, unknown


def start_from(model, path: str, target_mids: Sequence[str],
               class_map: Optional[str] = None) -> Start:
  """Loads a pretrained start into a freshly built backbone: YAMNet's weights file (.h5)
  or a run of this project (a directory or .keras file)."""
  if is_weights_file(path):
    return load_yamnet(model, path, target_mids, class_map)
  return load_run(model, path, target_mids, class_map)
