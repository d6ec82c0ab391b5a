"""What a generated dataset's directory holds, named once for every generator (the built-in
sounds, the AudioSet-sized simulation, the real-recordings benchmark) and every reader of
their output. Names follow AudioSet's release where it has one."""

CLASS_MAP = "class_labels_indices.csv"  # index,mid,display_name (AudioSet's file)
TRAIN_SEGMENTS = "train_segments.csv"  # AudioSet's segments layout (audio datasets)
EVAL_SEGMENTS = "eval_segments.csv"
AUDIO_DIR = "audio"  # the clips' audio files (audio datasets)
TRAIN, EVAL = "train", "eval"  # the embedding record folders (embedding datasets)
TRUTH = "train_missing_labels.csv"  # clip_id,mid: present events whose train label is missing
ONTOLOGY = "ontology.json"  # AudioSet's ontology layout, where a dataset has one
SUMMARY = "generation.json"  # the generator's parameters and counts; written last
