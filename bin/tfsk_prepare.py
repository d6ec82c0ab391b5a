r"""Prepares example shards from AudioSet-style data, as an Apache Beam pipeline.

Audio (segments CSV + audio folder + class map), decoded and turned into log-mel frames once:
  tfsk_prepare --segments=data/train_segments.csv --audio_dir=data/audio \
      --class_map=data/class_labels_indices.csv --output_dir=examples/train
  tfsk_prepare --segments=data/eval_segments.csv --audio_dir=data/audio \
      --class_map=data/class_labels_indices.csv --output_dir=examples/eval
AudioSet's released embeddings:
  tfsk_prepare --embeddings='bal_train/*.tfrecord' --class_map=class_labels_indices.csv \
      --output_dir=examples/bal_train
The frontend flags (--mel_bands, --patch_hop_frames, ...) default to YAMNet's settings; the
manifest records them, and every model trained on the examples and every tagger exported
from it uses them. Flags not listed here go to Beam, e.g. --runner=DataflowRunner
--project=... --region=...
"""

import dataclasses

from absl import app, flags, logging

from tf_skeptical.data import examples
from tf_skeptical import prepare
from tf_skeptical_bin import checks, cli
from tf_skeptical.data.params import FrontendParams

SEGMENTS = flags.DEFINE_string("segments", None, "AudioSet-layout segments CSV.")
AUDIO_DIR = flags.DEFINE_string(
    "audio_dir", None, "Folder of clips named <YTID>.wav|.flac|.ogg|.mp3 (any rate, any "
    "channel count).")
EMBEDDINGS = flags.DEFINE_string(
    "embeddings", None, "Glob of AudioSet embedding TFRecords (instead of --segments).")
CLASS_MAP = flags.DEFINE_string("class_map", None, "Class map CSV: index,mid,display_name.")
OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Where the example shards go.")
CLIP_SECONDS = flags.DEFINE_float(
    "clip_seconds", 10.0, "Pad or crop every clip to this length (0 keeps each clip's own).")
CLIPS_PER_SHARD = flags.DEFINE_integer("clips_per_shard", prepare.CLIPS_PER_SHARD,
                                       "Examples per output shard (at most).")
SKIP_BAD_CLIPS = flags.DEFINE_bool(
    "skip_bad_clips", False, "Skip bad rows and clips (listed with the reason in "
    "<output_dir>/skipped.csv) instead of stopping at the first.")
LOCAL_WORKERS = flags.DEFINE_integer(
    "local_workers", 1, "Worker processes of the local runner (Beam's FnApiRunner; ignored "
    "with another --runner).")
checks.positive(CLIPS_PER_SHARD, LOCAL_WORKERS)
checks.non_negative(CLIP_SECONDS)
FEATURE_STORAGE = flags.DEFINE_enum(
    "feature_storage", None, list(examples.STORAGES),
    "How features are stored in the example records. Log-mel: float32 (default) or float16 "
    "(half the size, values within 0.004). Embeddings: uint8 (default: AudioSet's released "
    "codes, a quarter of float32's size, lossless), float16 or float32.")
flags.mark_flags_as_required(["class_map", "output_dir"])

# The log-mel frontend, one flag per FrontendParams field, YAMNet's values by default.
_FRONTEND_HELP = {
    "sample_rate": "Audio is resampled to this rate (Hz).",
    "stft_window_seconds": "STFT window length (s).",
    "stft_hop_seconds": "STFT hop, i.e. one log-mel frame (s).",
    "mel_bands": "Mel bands per frame.",
    "mel_min_hz": "Lowest mel band edge (Hz).",
    "mel_max_hz": "Highest mel band edge (Hz).",
    "log_offset": "log(mel + this).",
    "patch_frames": "Frames per model input patch.",
    "patch_hop_frames": "Frames between patches at inference (scoring, evaluation, tagging).",
}
_FRONTEND = {}
for _field, _default in dataclasses.asdict(FrontendParams()).items():
  _define = flags.DEFINE_integer if isinstance(_default, int) else flags.DEFINE_float
  _FRONTEND[_field] = _define(_field, _default, "Frontend: " + _FRONTEND_HELP[_field])


def frontend_from_flags() -> FrontendParams:
  return FrontendParams(**{name: flag.value for name, flag in _FRONTEND.items()})


def main(argv):
  beam_args = argv[1:]
  if bool(EMBEDDINGS.value) == bool(SEGMENTS.value):
    raise app.UsageError("give exactly one of --segments (with --audio_dir) or --embeddings")
  if EMBEDDINGS.value:
    result = prepare.prepare_embeddings(
        EMBEDDINGS.value, CLASS_MAP.value, OUTPUT_DIR.value, clips_per_shard=CLIPS_PER_SHARD.value,
        skip_bad_clips=SKIP_BAD_CLIPS.value, beam_args=beam_args,
        local_workers=LOCAL_WORKERS.value,
        feature_storage=FEATURE_STORAGE.value or examples.UINT8)
  else:
    if not AUDIO_DIR.value:
      raise app.UsageError("--segments needs --audio_dir")
    result = prepare.prepare_audio(
        SEGMENTS.value, AUDIO_DIR.value, CLASS_MAP.value, OUTPUT_DIR.value,
        clip_seconds=CLIP_SECONDS.value, clips_per_shard=CLIPS_PER_SHARD.value,
        skip_bad_clips=SKIP_BAD_CLIPS.value, beam_args=beam_args,
        local_workers=LOCAL_WORKERS.value, params=frontend_from_flags(),
        feature_storage=FEATURE_STORAGE.value or examples.FLOAT32)
  logging.info("prepared %d clips into %s", result.num_clips, result.output_dir)
  if result.skips:
    logging.warning("skipped %d clips; reasons in %s", len(result.skips), result.report)


def run():
  cli.run_with_beam_args(main)


if __name__ == "__main__":
  run()
