"""Tags audio files with an exported tagger (SavedModel or TFLite), any format tfio reads.

  tfsk_tag --tagger=tagger clip.wav other.flac
  tfsk_tag --tagger=tagger --runtime=tflite_int8 --top=3 clip.mp3
Prints the top classes of every 0.96 s patch (hop 0.48 s) and of the whole clip.
"""

import os

import numpy as np
from absl import app, flags

from tf_skeptical import cli, exporting

TAGGER = flags.DEFINE_string("tagger", None, "Export directory from tfsk_export.")
RUNTIME = flags.DEFINE_enum("runtime", "saved_model", ["saved_model", "tflite_float",
                                                        "tflite_int8"], "Which artifact runs.")
TOP = flags.DEFINE_integer("top", 5, "Classes printed per line.")
flags.mark_flags_as_required(["tagger"])


def main(argv):
  paths = argv[1:]
  if not paths:
    raise app.UsageError("name one or more audio files")
  import tensorflow as tf
  from tf_skeptical import audio_io
  from tf_skeptical.class_map import read_class_map
  names = read_class_map(os.path.join(TAGGER.value, exporting.CLASS_MAP)).display_names
  if RUNTIME.value == "saved_model":
    serve = tf.saved_model.load(os.path.join(TAGGER.value, exporting.SAVED_MODEL)).signatures[
        "serving_default"]
    score = lambda w: serve(waveform=tf.constant(w))["scores"].numpy()
  else:
    path = os.path.join(TAGGER.value, exporting.FLOAT_TFLITE if RUNTIME.value == "tflite_float"
                        else exporting.INT8_TFLITE)
    score = lambda w: exporting.tflite_scores(path, w)

  def top(s):
    return ", ".join(f"{names[i]} {s[i]:.2f}" for i in np.argsort(-s)[:TOP.value])

  for path in paths:
    scores = score(audio_io.load_clip(tf.constant(path)).numpy())
    print(f"== {path}")
    for i, s in enumerate(scores):
      print(f"  {i * exporting.HOP / 16000:7.2f}s  {top(s)}")
    print(f"  clip (mean of {len(scores)} patches): {top(scores.mean(axis=0))}")


def run():
  cli.run(main)


if __name__ == "__main__":
  run()
