"""Scores every clip of an examples directory with a trained teacher, as a Beam job.

  tfsk_score --examples=examples/train --model=runs/teacher --output_dir=scores
On a cluster, append the runner's options, e.g. `--runner=DataflowRunner --project=P
--region=R --temp_location=gs://B/tmp` (docs/clusters.md).
"""

from absl import flags, logging

from tf_skeptical import scoring
from tf_skeptical_bin import checks, cli, inference_options

flags.adopt_module_key_flags(inference_options)  # --help lists --pooling, --patch_hop_frames

EXAMPLES = flags.DEFINE_string("examples", None, "Examples directory to score.")
MODEL = flags.DEFINE_string(
    "model", None, "The teacher: a model directory (model.keras) or .keras file trained on "
    "these examples' class map; or, as a pretrained teacher, YAMNet's released weights "
    "(yamnet.h5, your download) or an exported tagger's directory (tfsk_export's output): "
    "the classes it knows by mid are scored, the others named and never flagged.")
TEACHER_CLASS_MAP = flags.DEFINE_string(
    "teacher_class_map", None, "With --model=yamnet.h5: its class map (default: "
    "yamnet_class_map.csv beside it).")
OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Where score shards go.")
PATCH_BATCH = flags.DEFINE_integer(
    "patch_batch", None, "Patches per model call (a fixed shape). Default: 256 for log-mel "
    "examples, 1024 for embeddings.")
LOCAL_WORKERS = flags.DEFINE_integer(
    "local_workers", 2, "Worker processes of the local runner (Beam's FnApiRunner; ignored "
    "with another --runner).")
checks.positive(PATCH_BATCH, LOCAL_WORKERS)
flags.mark_flags_as_required(["examples", "model", "output_dir"])


def main(argv):
  manifest = scoring.score(EXAMPLES.value, MODEL.value, OUTPUT_DIR.value,
                           pooling=inference_options.POOLING.value,
                           hop_frames=inference_options.PATCH_HOP.value,
                           patch_batch=PATCH_BATCH.value, beam_args=argv[1:],
                           local_workers=LOCAL_WORKERS.value,
                           teacher_class_map=TEACHER_CLASS_MAP.value)
  logging.info("scored %d clips into %s", manifest["num_clips"], OUTPUT_DIR.value)


def run():
  cli.run_with_beam_args(main)


if __name__ == "__main__":
  run()
