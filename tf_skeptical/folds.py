"""Out-of-fold teachers: every train clip scored by a teacher that never trained on it.

A teacher scoring its own training clips has partly memorised their labels, the wrong
implicit negatives included, which is what the flags are meant to expose (cleanlab's
documented practice is out-of-sample probabilities for this reason). With K folds, teacher
k trains on the clips outside fold k and scores fold k; the K fold scores together cover
the train set once.

A clip's fold is FarmHash64(clip id) mod K (`tf.strings.to_hash_bucket_fast`): fixed by its
id alone, so training's input pipeline (in the graph) and the scoring job (in Beam workers)
agree without a table, whatever the shard layout and order.
"""

import dataclasses
import hashlib
from typing import Sequence

import tensorflow as tf

from tf_skeptical import errors


@dataclasses.dataclass(frozen=True)
class Fold:
  """Fold `index` of `count`."""
  index: int
  count: int

  def __post_init__(self):
    if not (self.count >= 2 and 0 <= self.index < self.count):
      raise errors.BadValue(f"fold {self.index} of {self.count}: need 2+ folds and 0 <= index < "
                       "count")

  def contains(self, clip_id) -> tf.Tensor:
    """tf.bool: whether clip_id (a tf.string scalar or vector) is in this fold."""
    return tf.equal(tf.strings.to_hash_bucket_fast(clip_id, self.count), self.index)

  @property
  def name(self) -> str:
    return f"fold{self.index}"


def combined_model_id(model_ids: Sequence[str]) -> str:
  """One id for the fold teachers, in fold order (what flags made from their scores
  record as their model id)."""
  digest = hashlib.sha1("\n".join(model_ids).encode("utf-8")).hexdigest()[:16]
  return f"{len(model_ids)}folds:{digest}"
