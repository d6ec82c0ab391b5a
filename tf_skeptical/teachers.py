"""What can score a train set as the skeptical teacher: a run of this project trained on
its class map, YAMNet's released weights, or an exported tagger (exporting.py) whose classes
cover the class map by mid. One shape for all three, so that the scoring job, the flags and
the students do not care which it is.

A teacher that does not know some of the train set's classes (by mid) names them: their
scores are written as NaN and flagging leaves them unflagged.
"""

import dataclasses
import os
from typing import Callable, Optional

import numpy as np

from tf_skeptical import errors, inference, pretrained
from tf_skeptical.data import examples
from tf_skeptical.data.class_map import CLASS_MAP_FILE, read_class_map
from tf_skeptical.data.params import FrontendParams
from tf_skeptical.util import files


@dataclasses.dataclass(frozen=True)
class Teacher:
  """probabilities: a batch of the examples' patches [P, *features.input_shape] -> [P, C],
  C the examples' classes (columns of `unknown` meaningless)."""

  probabilities: Callable[[np.ndarray], np.ndarray]
  features: examples.Features
  unknown: np.ndarray  # int64 indices of the examples' classes the teacher does not know


def load(model_path: str, info: examples.ExamplesInfo,
         class_map: Optional[str] = None) -> Teacher:
  """The teacher at model_path for info's examples; refused in one line (errors.BadValue,
  inference's DataError and FeatureMismatch) when it cannot score them."""
  if pretrained.is_weights_file(model_path):
    model, unknown = pretrained.yamnet_teacher(model_path, info, class_map)
  elif files.isdir(model_path) and inference.is_export(model_path):
    return exported(model_path, info)
  else:
    model = inference.load_model(model_path)
    inference.check_examples(model, model_path, info)
    unknown = np.zeros(0, np.int64)
  return Teacher(lambda x: inference.patch_probabilities(model, x),
                 inference.features_of(model), unknown)


def exported(path: str, info: examples.ExamplesInfo) -> Teacher:
  """An exported tagger's SavedModel as the teacher: its `log_mel_patches` signature scores
  the examples' log-mel patches (they must have been prepared with the tagger's frontend),
  and its class map (class_map.csv beside it) is matched to the examples' by mid."""
  import tensorflow as tf
  from tf_skeptical import exporting
  metadata = files.read_json(os.path.join(path, inference.EXPORT_METADATA))
  frontend = FrontendParams(**metadata["frontend"])
  own = examples.Features(examples.LOG_MEL, frontend.mel_bands, frontend)
  own.check_same(f"exported tagger {path}", info.features, f"examples {info.directory}")
  mids = read_class_map(os.path.join(path, CLASS_MAP_FILE)).mids
  column = {mid: i for i, mid in enumerate(mids)}
  take = np.array([column.get(mid, -1) for mid in info.class_map.mids], np.int64)
  unknown = np.flatnonzero(take < 0)
  if unknown.size == take.size:
    raise errors.BadValue(f"{path}: the exported tagger knows none of the {take.size} classes "
                          f"of {info.directory} by mid: it cannot be their teacher")
  saved = tf.saved_model.load(os.path.join(path, exporting.SAVED_MODEL))
  if exporting.PATCHES_SIGNATURE not in saved.signatures:
    raise errors.BadValue(f"{path}: this export has no {exporting.PATCHES_SIGNATURE} "
                          "signature (made by an older tf_skeptical): export the model again "
                          "with tfsk_export")
  score = saved.signatures[exporting.PATCHES_SIGNATURE]
  columns = np.maximum(take, 0)

  def probabilities(patches):
    scores = score(patches=tf.constant(patches, tf.float32))["scores"].numpy()
    return scores[:, columns]
  probabilities.saved = saved  # the loaded SavedModel lives as long as the function
  return Teacher(probabilities, own, unknown)
