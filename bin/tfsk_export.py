"""Exports a trained tagger for serving and for devices: SavedModel, float and int8 TFLite.

  tfsk_export --model=runs/p1 --train=examples/train --output_dir=tagger
The int8 model is calibrated on windows of the training clips' audio (found through the
train examples' manifest, or --calibration_audio). Every artifact is checked (silence,
noise, a tone; Keras vs SavedModel vs TFLite) before the directory appears.
Both TFLite files carry TFLite Model Metadata (audio properties, class labels), so
MediaPipe's Audio Classifier and Audio Embedder load them as they are.
Tag with it: `tfsk_tag --tagger=tagger clip.wav`, or on a device, export/tagger.py,
MediaPipe, or the web page in export/web/.
"""

import os

from absl import flags, logging

from tf_skeptical.data import examples
from tf_skeptical import exporting, prepare
from tf_skeptical.util import files
from tf_skeptical_bin import checks, cli

MODEL = flags.DEFINE_string("model", None, "Model directory (model.keras) or .keras file.")
TRAIN = flags.DEFINE_string("train", None, "Train examples directory: class map and, for "
                            "calibration, the audio it was prepared from.")
CLASS_MAP = flags.DEFINE_string("class_map", None, "Class map CSV (default: the train "
                                "examples').")
CALIBRATION = flags.DEFINE_string("calibration_audio", None,
                                  "Glob of audio for int8 calibration (default: the train "
                                  "examples' audio).")
WINDOWS = flags.DEFINE_integer("calibration_windows", 200, "Calibration windows: every "
                               "window of training clips taken in random order, up to this "
                               "many.")
FLOAT_LAYERS = flags.DEFINE_list(
    "int8_float_layers", list(exporting.ExportConfig.float_layers),
    "Network layers (name prefixes) the int8 model keeps float: the first layers lose most "
    "to 8-bit activations. Empty (--int8_float_layers=) quantizes every network layer.")
CHECK_CLIPS = flags.DEFINE_integer("check_clips", 16, "Training clips held out of calibration "
                                   "(at most 1 in 5) on which int8 is checked against float.")
AUTHOR = flags.DEFINE_string("model_author", exporting.ExportConfig.author,
                             "Author written into the TFLite Model Metadata.")
LICENSE = flags.DEFINE_string("model_license", exporting.ExportConfig.license,
                              "Licence written into the TFLite Model Metadata: the terms "
                              "your model is shared under (its training data's terms may "
                              "bind it: AudioSet's labels are CC BY 4.0).")
OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "The export directory.")
checks.positive(WINDOWS)
checks.non_negative(CHECK_CLIPS)
flags.mark_flags_as_required(["model", "output_dir"])


def main(argv):
  del argv
  if not (TRAIN.value or (CLASS_MAP.value and CALIBRATION.value)):
    raise flags.ValidationError("give --train, or --class_map and --calibration_audio")
  class_map = CLASS_MAP.value or os.path.join(TRAIN.value, examples.CLASS_MAP)
  audio = (files.glob(CALIBRATION.value) if CALIBRATION.value
           else prepare.source_audio(TRAIN.value))
  meta = exporting.export(MODEL.value, class_map, OUTPUT_DIR.value, calibration_files=audio,
                          cfg=exporting.ExportConfig(calibration_windows=WINDOWS.value,
                                                     float_layers=tuple(FLOAT_LAYERS.value),
                                                     check_clips=CHECK_CLIPS.value,
                                                     author=AUTHOR.value,
                                                     license=LICENSE.value))
  sizes = {k: files.size(os.path.join(OUTPUT_DIR.value, v)) / 1e6
           for k, v in meta["files"].items() if v.endswith(".tflite")}
  logging.info("exported %s to %s (TFLite MB: %s); checks in %s", meta["model"],
               OUTPUT_DIR.value, {k: round(v, 2) for k, v in sizes.items()},
               os.path.join(OUTPUT_DIR.value, exporting.SANITY))


def run():
  cli.run(main)


if __name__ == "__main__":
  run()
