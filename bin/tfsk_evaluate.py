r"""Evaluates a trained model at clip level, and (optionally) flags against known truth.

  tfsk_evaluate --model=runs/p1 --eval=examples/eval --output_dir=runs/p1/eval
  tfsk_evaluate --teacher_flags=flags/flags.npz --truth=data/train_missing_labels.csv \
      --class_map=data/class_labels_indices.csv --output_dir=flag_quality
Writes eval.json (d', lwlrap, mAP, AUC, per class) and TensorBoard scalars; with
--teacher_flags and --truth, flag_quality.csv: precision and recall of the flags at each p,
and the base rate.
"""

import os

from absl import flags, logging

from tf_skeptical import evaluation, flagging
from tf_skeptical.data import examples
from tf_skeptical.util import files, output_paths
from tf_skeptical_bin import cli, inference_options
from tf_skeptical.data.class_map import read_class_map

flags.adopt_module_key_flags(inference_options)  # --help lists --pooling, --patch_hop_frames

MODEL = flags.DEFINE_string("model", None, "Model directory or .keras file.")
EVAL = flags.DEFINE_string("eval", None, "Eval examples directory.")
OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Where eval.json and logs go.")
FLAGS_FILE = flags.DEFINE_string("teacher_flags", None, "The teacher's flags, flags.npz from "
                                 "tfsk_flag: their precision and recall against --truth.")
TRUTH = flags.DEFINE_string("truth", None, "CSV of truly missing labels (clip_id, mid).")
CLASS_MAP = flags.DEFINE_string("class_map", None, "Class map that --truth's mids index "
                                "(default: --eval's).")
PERCENTS = flags.DEFINE_string("percents", "paper", "Percentages for the flag quality table.")
flags.mark_flags_as_required(["output_dir"])


def main(argv):
  del argv
  if not (MODEL.value or FLAGS_FILE.value):
    raise flags.ValidationError("give --model and --eval, or --teacher_flags and --truth, or "
                                "both")
  if MODEL.value and not EVAL.value:
    raise flags.ValidationError("--model needs --eval")
  if bool(FLAGS_FILE.value) != bool(TRUTH.value):
    raise flags.ValidationError("--teacher_flags and --truth go together")
  if FLAGS_FILE.value and not (CLASS_MAP.value or EVAL.value):
    raise flags.ValidationError("--truth names classes by mid: give --class_map (or --eval)")
  out = OUTPUT_DIR.value
  output_paths.check_directory(out, evaluation.OUTPUT)
  with files.output_lock(out), files.staged(out) as staging:  # both reports, or neither
    if MODEL.value:
      result = evaluation.evaluate_model(MODEL.value, EVAL.value,
                                         inference_options.POOLING.value,
                                         inference_options.PATCH_HOP.value)
      names = examples.read_info(EVAL.value).class_map.display_names
      evaluation.write_evaluation(result, names, staging, os.path.join(staging, "logs"))
      logging.info("%s -> %s", result.summary(), os.path.join(out, evaluation.EVAL_JSON))
    if FLAGS_FILE.value:
      cmap = (read_class_map(CLASS_MAP.value) if CLASS_MAP.value
              else examples.read_info(EVAL.value).class_map)
      flags_ = flagging.read_flags(FLAGS_FILE.value)
      percents = [p for p in flagging.percent_grid(PERCENTS.value) if p <= flags_.max_percent]
      rows = evaluation.flag_quality(flags_, evaluation.read_truth(TRUTH.value, cmap),
                                     percents)
      evaluation.write_rows(rows, os.path.join(staging, evaluation.FLAG_QUALITY))
      for r in rows:
        logging.info("p=%g%%: %d flagged, precision %.3f, recall %.3f (base rate %.4f)",
                     r["percent"], r["flagged"], r["precision"], r["recall"], r["base_rate"])
    files.publish_directory(staging, out, last=evaluation.EVAL_JSON)


def run():
  cli.run(main)


if __name__ == "__main__":
  run()
