"""How a trained model is run on examples, as absl flags shared by tfsk_score and
tfsk_evaluate: patch scores pooled into clip scores, patches cut at the frontend's hop."""

from absl import flags

from tf_skeptical_bin import checks
from tf_skeptical import inference

POOLING = flags.DEFINE_enum("pooling", "mean", list(inference.POOLINGS),
                            "How patch scores pool into a clip score.")
PATCH_HOP = flags.DEFINE_integer(
    "patch_hop_frames", None, "Frames between the patches cut from each clip; default: the "
    "hop of the frontend the model was trained on (YAMNet's: 48).")
checks.positive(PATCH_HOP)
