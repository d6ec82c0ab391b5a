"""Tags audio files with an exported tagger (SavedModel or TFLite), any format tfio reads.

  tfsk_tag --tagger=tagger data/audio/eval000000.wav data/audio/eval000001.wav
  tfsk_tag --tagger=tagger --runtime=tflite_int8 --top=3 data/audio/eval000002.wav
Prints the top classes of every patch (YAMNet's frontend: 0.96 s, hop 0.48 s) and of the
whole clip. A file that cannot be read is named on stderr and skipped; the exit status is
then 1.
"""

import os
import sys

import numpy as np
import tensorflow as tf
from absl import app, flags

from tf_skeptical import errors
from tf_skeptical.data import audio_io
from tf_skeptical import exporting, taggers
from tf_skeptical.util import files
from tf_skeptical_bin import checks, cli
from tf_skeptical.errors import tf_error_text
from tf_skeptical.util.bad_input import DataError
from tf_skeptical.data.class_map import read_class_map
from tf_skeptical.data.params import FrontendParams

TAGGER = flags.DEFINE_string("tagger", None, "Export directory from tfsk_export.")
RUNTIME = flags.DEFINE_enum("runtime", "saved_model", ["saved_model", "tflite_float",
                                                        "tflite_int8"], "Which artifact runs.")
TOP = flags.DEFINE_integer("top", 5, "Classes printed per line.")
checks.positive(TOP)
flags.mark_flags_as_required(["tagger"])


def scorer(tagger_dir: str, runtime: str, window: int, hop: int):
  """waveform -> [patches, C] scores with the chosen artifact of an export directory."""
  if runtime == "saved_model":
    serve = tf.saved_model.load(os.path.join(tagger_dir, exporting.SAVED_MODEL)).signatures[
        "serving_default"]
    return lambda w: taggers.saved_model_scores(serve, w, window, hop)
  return taggers.tflite_scorer(os.path.join(
      tagger_dir, exporting.FLOAT_TFLITE if runtime == "tflite_float" else exporting.INT8_TFLITE),
      hop)


def check_tagger(tagger_dir: str, runtime: str) -> None:
  """Refuses a directory that is not a whole export, naming what is missing."""
  if not files.exists(os.path.join(tagger_dir, exporting.METADATA)):
    raise DataError(tagger_dir, f"not an exported tagger (no {exporting.METADATA}): give "
                    "the directory tfsk_export wrote")
  needed = {"saved_model": exporting.SAVED_MODEL, "tflite_float": exporting.FLOAT_TFLITE,
            "tflite_int8": exporting.INT8_TFLITE}[runtime]
  for name in (exporting.CLASS_MAP, needed):
    if not files.exists(os.path.join(tagger_dir, name)):
      raise DataError(tagger_dir, f"an incomplete tagger ({name} is missing): copy the whole "
                      "directory that tfsk_export wrote")


def main(argv):
  paths = argv[1:]
  if not paths:
    raise app.UsageError("name one or more audio files")
  check_tagger(TAGGER.value, RUNTIME.value)
  meta = files.read_json(os.path.join(TAGGER.value, exporting.METADATA))
  params = FrontendParams(**meta["frontend"])
  names = read_class_map(os.path.join(TAGGER.value, exporting.CLASS_MAP)).display_names
  score = scorer(TAGGER.value, RUNTIME.value, meta["window_samples"], meta["hop_samples"])

  def top(s):
    return ", ".join(f"{names[i]} {s[i]:.2f}" for i in np.argsort(-s)[:TOP.value])

  failed = []
  for path in paths:
    try:  # block by block: memory bounded by a block, not by the file's length
      scores = taggers.streamed_scores(audio_io.decode_blocks(path, params), score,
                                       meta["window_samples"], meta["hop_samples"],
                                       meta["sample_rate"])
    except (tf.errors.OpError, ValueError, OSError) as e:
      failed.append(path)
      print(f"tfsk_tag: error: {path}: cannot tag it ({tf_error_text(e)})", file=sys.stderr)
      continue
    print(f"== {path}")
    for i, s in enumerate(scores):
      print(f"  {i * meta['hop_samples'] / meta['sample_rate']:7.2f}s  {top(s)}")
    print(f"  clip (mean of {len(scores)} patches): {top(scores.mean(axis=0))}")
  if failed:
    print(f"tfsk_tag: {len(failed)} of {len(paths)} files could not be tagged: "
          f"{', '.join(failed)}", file=sys.stderr)
    return 1
  return 0


def run():
  cli.run(main)


if __name__ == "__main__":
  run()
