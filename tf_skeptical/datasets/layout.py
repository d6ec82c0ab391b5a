"""What a generated dataset's directory holds, named once for every generator (the built-in
sounds, the AudioSet-sized simulation, the real-recordings benchmark) and every reader of
their output. Names follow AudioSet's release where it has one. A generator writes through
`writing`, so that a dataset directory appears whole or not at all."""

import contextlib

from tf_skeptical.util import files, output_paths

CLASS_MAP = "class_labels_indices.csv"  # index,mid,display_name (AudioSet's file)
TRAIN_SEGMENTS = "train_segments.csv"  # AudioSet's segments layout (audio datasets)
EVAL_SEGMENTS = "eval_segments.csv"
AUDIO_DIR = "audio"  # the clips' audio files (audio datasets)
TRAIN, EVAL = "train", "eval"  # the embedding record folders (embedding datasets)
TRUTH = "train_missing_labels.csv"  # clip_id,mid: present events whose train label is missing
ONTOLOGY = "ontology.json"  # AudioSet's ontology layout, where a dataset has one
SUMMARY = "generation.json"  # the generator's parameters and counts; written last
OUTPUT = output_paths.OutputKind("generated dataset directory", (SUMMARY,))


@contextlib.contextmanager
def writing(out_dir: str):
  """Yields a staging directory for a generator to fill (SUMMARY last); on success it
  replaces out_dir whole. out_dir is checked first (output_paths.py) and locked."""
  output_paths.check_directory(out_dir, OUTPUT)
  with files.output_lock(out_dir), files.staged(out_dir) as staging:
    yield staging
    files.publish_directory(staging, out_dir, last=SUMMARY)
