"""Running a trained model: load it, score patches, pool patch scores into clip scores.

One implementation serves every stage that runs a trained model: the Beam scoring job, the
evaluation, the per-epoch evaluation during training and export's reference scorer, so that
they agree to float rounding. A trained model carries the `examples.Features` it was trained
on; `check_examples` refuses examples prepared another way with a `FeatureMismatch`.
"""

import os
import zipfile
from typing import Optional

import keras
import numpy as np
import tensorflow as tf

from tf_skeptical import errors
from tf_skeptical.data import examples, frontend
from tf_skeptical.util import files, provenance
from tf_skeptical import input_pipeline
from tf_skeptical.util.bad_input import DataError
from tf_skeptical.masked_loss import MaskedBCEModel

MODEL_FILE = "model.keras"  # a model directory's trained model
EXPORT_METADATA = "metadata.json"  # an exported tagger's (exporting.py): written last
POOLINGS = ("mean", "max")


def is_export(path: str) -> bool:
  """Whether `path` is an exported tagger's directory (exporting.py), not a run."""
  return files.exists(os.path.join(path, EXPORT_METADATA)) and not files.exists(
      os.path.join(path, MODEL_FILE))


def model_path(model_dir_or_file: str) -> str:
  """A model directory's model.keras, an exported tagger's metadata.json (it records the
  model it was made from), or a .keras file as given."""
  if files.isdir(model_dir_or_file):
    return os.path.join(model_dir_or_file,
                        EXPORT_METADATA if is_export(model_dir_or_file) else MODEL_FILE)
  return model_dir_or_file


def model_id(model_dir_or_file: str) -> str:
  """The id of the model file a directory (or .keras file) holds: what every artifact made
  by a model (scores, flags, eval scores, an export) records, and is checked against."""
  return provenance.file_id(model_path(model_dir_or_file))


def load_model(model_dir_or_file: str) -> keras.Model:
  """Loads a trained model from its directory (model.keras) or a .keras file."""
  if files.isdir(model_dir_or_file) and is_export(model_dir_or_file):
    raise DataError(model_dir_or_file, "is an exported tagger, not a trained model: give the "
                    "run it was exported from (its metadata.json names it: source)")
  path = model_path(model_dir_or_file)
  if not files.exists(path):
    raise DataError(path, "no trained model here (did training finish?)")
  try:
    model = keras.models.load_model(path, compile=False)
  except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
    raise DataError(path, f"cannot be read as a Keras model, truncated or not a .keras file "
                    f"({type(e).__name__}: {str(e)[:200]})") from e
  if features_of(model) is None:
    raise DataError(path, "the model records no features (it was not trained by "
                    "tf_skeptical 0.1 or later): retrain it")
  return model


def features_of(model: keras.Model) -> Optional[examples.Features]:
  """The features a model was trained on (None for a model built outside training)."""
  record = getattr(model, "features", None) if isinstance(model, MaskedBCEModel) else None
  return examples.Features.from_dict(record) if record else None


def check_examples(model: keras.Model, model_name: str, info: examples.ExamplesInfo) -> None:
  """Raises FeatureMismatch if info's examples were made otherwise than the model's input,
  and DataError if their class count differs from the model's."""
  own = features_of(model)
  if own is not None:
    own.check_same(f"model {model_name}", info.features, f"examples {info.directory}")
  if model.output_shape[-1] != info.num_classes:
    raise DataError(info.directory, f"{info.num_classes} classes, but model {model_name} "
                    f"has {model.output_shape[-1]} outputs")
  check_class_map(model, model_name, info.extra.get("class_map_id"),
                  f"examples {info.directory}")


def check_class_map(model: keras.Model, model_name: str, class_map_id: Optional[str],
                    other_name: str) -> None:
  """Raises ProvenanceMismatch if the model was trained on another class map (where both
  ids are known)."""
  own = (getattr(model, "made_from", None) or {}).get("class_map_id")
  if own and class_map_id:
    provenance.check_same("class map", own, f"model {model_name}", class_map_id, other_name)


def patch_probabilities(model: keras.Model, patches) -> np.ndarray:
  """Sigmoid of the model's logits for a batch of patches (Keras' cached predict function)."""
  logits = np.asarray(model.predict_on_batch(patches), np.float64)
  return (0.5 * (1.0 + np.tanh(0.5 * logits))).astype(np.float32)  # overflow-free sigmoid


def pool_patches(patch_scores: np.ndarray, clip_index: np.ndarray, num_clips: int,
                 how: str = "mean") -> np.ndarray:
  """[P, C] patch scores + [P] clip index -> [num_clips, C] clip scores (float64)."""
  patch_scores = np.asarray(patch_scores, np.float64)
  clip_index = np.asarray(clip_index, np.int64)
  counts = np.bincount(clip_index, minlength=num_clips)
  if (counts == 0).any():
    raise errors.BadValue(f"{int((counts == 0).sum())} clip(s) have no patches to pool")
  if how == "mean":
    sums = np.zeros((num_clips, patch_scores.shape[1]))
    np.add.at(sums, clip_index, patch_scores)
    return sums / counts[:, None]
  if how == "max":
    out = np.full((num_clips, patch_scores.shape[1]), -np.inf)
    np.maximum.at(out, clip_index, patch_scores)
    return out
  raise errors.BadValue(f"pooling must be one of {POOLINGS}, got {how!r}")


def predict_clip_scores(model: keras.Model, examples_dir: str, *, model_name: str = "model",
                        hop_frames: Optional[int] = None, pooling: str = "mean",
                        batch_size: int = 256):
  """Sigmoid scores pooled per clip: returns (clip_ids, labels [N, C], scores [N, C]).

  hop_frames: frames between patches; default the model's frontend's (YAMNet: 48).
  """
  info = examples.read_info(examples_dir)
  check_examples(model, model_name, info)
  features = features_of(model) or info.features
  ds, ids, labels = input_pipeline.eval_dataset(examples_dir, batch_size,
                                                features.patch_hop(hop_frames), features)
  patch_scores, clip_index = [], []
  for x, index in ds:
    patch_scores.append(patch_probabilities(model, x))
    clip_index.append(index.numpy())
  scores = pool_patches(np.concatenate(patch_scores), np.concatenate(clip_index),
                        len(ids), pooling)
  return ids, labels, scores.astype(np.float32)


def waveform_patch_scores(model: keras.Model, waveform: np.ndarray) -> np.ndarray:
  """[patches, C] scores of a waveform at the model's own frontend and patch hop: what an
  exported tagger must reproduce. A waveform shorter than one patch is zero-padded."""
  params = features_of(model).frontend
  w = frontend.pad_for_one_patch(tf.constant(waveform, tf.float32), params)
  return patch_probabilities(model, frontend.patches(frontend.log_mel(w, params), params))
