r"""Writes an AudioSet-sized dataset with known missing labels, in AudioSet's released
embedding format, to measure the pipeline at scale (see tf_skeptical/audioset_simulation.py).

  tfsk_simulate_audioset --output_dir=sim --train_clips=2041789 --eval_clips=20371
Then: tfsk_prepare --embeddings='sim/train/*.tfrecord' --class_map=sim/class_labels_indices.csv
--output_dir=ex/train (and the same for eval), train with --model=embedding_mlp, and score,
flag and evaluate as with any examples; sim/train_missing_labels.csv is the truth for
tfsk_evaluate --teacher_flags and tfsk_sweep --truth. `python -m bench.scale` runs all of it, timed.
"""

from absl import flags, logging

from tf_skeptical.datasets import audioset_simulation
from tf_skeptical_bin import checks, cli

_D = audioset_simulation.SimulationParams()
OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Where the shards, class map and truth "
                                 "go.")
TRAIN_CLIPS = flags.DEFINE_integer("train_clips", _D.train_clips, "Train clips (AudioSet: "
                                   f"{audioset_simulation.AUDIOSET_TRAIN_CLIPS}).")
EVAL_CLIPS = flags.DEFINE_integer("eval_clips", _D.eval_clips, "Eval clips, fully labelled "
                                  f"(AudioSet: {audioset_simulation.AUDIOSET_EVAL_CLIPS}).")
NUM_CLASSES = flags.DEFINE_integer("num_classes", _D.num_classes, "Classes.")
LABELS_PER_CLIP = flags.DEFINE_float("labels_per_clip", _D.labels_per_clip,
                                     "Mean present events per clip.")
LARGEST = flags.DEFINE_float("largest_class", _D.largest_class,
                             "Share of clips with the most frequent class.")
SMALLEST = flags.DEFINE_float("smallest_class", _D.smallest_class,
                              "Share of clips with the rarest class.")
MISSING_LOW = flags.DEFINE_float("missing_rate_low", _D.missing_rate[0],
                                 "Lowest per-class chance that a present event's train label "
                                 "is missing.")
MISSING_HIGH = flags.DEFINE_float("missing_rate_high", _D.missing_rate[1],
                                  "Highest such chance (each class draws one in between).")
CHILD_SHARE = flags.DEFINE_float(
    "child_share", _D.child_share, "Share of classes given a parent among the more frequent "
    "classes (an ontology: a present child makes its parent present). 0.5 with the default "
    "--parent_missing_rate is the harder, more AudioSet-like set.")
PARENT_MISSING = flags.DEFINE_float(
    "parent_missing_rate", _D.parent_missing_rate, "Chance that a parent present only "
    "through a child loses its train label (AudioSet's annotators often gave the child "
    "alone).")
CLIPS_PER_SHARD = flags.DEFINE_integer("clips_per_shard", _D.clips_per_shard,
                                       "Records per TFRecord shard.")
SEED = flags.DEFINE_integer("seed", _D.seed, "Same seed, same dataset.")
checks.positive(TRAIN_CLIPS, EVAL_CLIPS, NUM_CLASSES, LABELS_PER_CLIP, LARGEST, SMALLEST,
                CLIPS_PER_SHARD)
checks.fraction(MISSING_LOW, MISSING_HIGH, high_open=True)
checks.fraction(CHILD_SHARE, PARENT_MISSING)
flags.mark_flags_as_required(["output_dir"])


def main(argv):
  del argv
  summary = audioset_simulation.generate(OUTPUT_DIR.value, audioset_simulation.SimulationParams(
      train_clips=TRAIN_CLIPS.value, eval_clips=EVAL_CLIPS.value,
      num_classes=NUM_CLASSES.value, labels_per_clip=LABELS_PER_CLIP.value,
      largest_class=LARGEST.value, smallest_class=SMALLEST.value,
      missing_rate=(MISSING_LOW.value, MISSING_HIGH.value), child_share=CHILD_SHARE.value,
      parent_missing_rate=PARENT_MISSING.value,
      clips_per_shard=CLIPS_PER_SHARD.value, seed=SEED.value))
  logging.info("wrote %s: %d train clips with %d missing labels (base rate %.5f), %d eval "
               "clips", OUTPUT_DIR.value, summary["train"]["clips"],
               summary["train"]["missing_labels"], summary["base_rate"],
               summary["eval"]["clips"])


def run():
  cli.run(main)


if __name__ == "__main__":
  run()
