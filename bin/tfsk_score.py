"""Scores every clip of an examples directory with a trained teacher, as a Beam job.

  tfsk_score --examples=examples/train --model=runs/teacher --output_dir=scores
On a cluster, add the runner's options, e.g.:
  tfsk_score ... --runner=DataflowRunner --project=P --region=R --temp_location=gs://B/tmp
"""

from absl import flags, logging

from tf_skeptical import cli, scoring

EXAMPLES = flags.DEFINE_string("examples", None, "Examples directory to score.")
MODEL = flags.DEFINE_string("model", None, "Model directory (model.keras) or .keras file.")
OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Where score shards go.")
POOLING = flags.DEFINE_enum("pooling", "mean", ["mean", "max"], "Patch -> clip pooling.")
HOP = flags.DEFINE_integer("hop_frames", 48, "Frames between scored patches.")
PATCH_BATCH = flags.DEFINE_integer("patch_batch", 256, "Patches per model call (fixed).")
LOCAL_WORKERS = flags.DEFINE_integer(
    "local_workers", 2, "DirectRunner worker processes (ignored with another --runner).")
flags.mark_flags_as_required(["examples", "model", "output_dir"])


def main(argv):
  manifest = scoring.score(EXAMPLES.value, MODEL.value, OUTPUT_DIR.value,
                           pooling=POOLING.value, hop_frames=HOP.value,
                           patch_batch=PATCH_BATCH.value, beam_args=argv[1:],
                           local_workers=LOCAL_WORKERS.value)
  logging.info("scored %d clips into %s", manifest["num_clips"], OUTPUT_DIR.value)


def run():
  cli.run_with_beam_args(main)


if __name__ == "__main__":
  run()
