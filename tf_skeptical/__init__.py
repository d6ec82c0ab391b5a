"""tf_skeptical: skeptical teacher-student training with loss masking for missing labels.

The pipeline, module by module: builtin_data (a dataset with known missing labels) ->
prepare (Beam: audio or embeddings -> example shards; via audio_io, frontend, examples) ->
input_pipeline (tf.data with labels and masks) -> models + masked_loss + training (teacher
and students) -> inference (run a trained model) -> scoring (Beam: the teacher scores the
train set) -> flagging (top-scored implicit negatives) -> evaluation and sweep -> exporting
(SavedModel, TFLite). docs/design.md has the data contracts between them.
"""

__version__ = "0.1.0"
