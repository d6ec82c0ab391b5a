"""The training recipe as absl flags, shared by tfsk_train, tfsk_sweep and tfsk_demo: one
flag per TrainConfig field, made from the field (its default, help, allowed values and
bounds live on the dataclass, training.py), and the flags of what the runs are told that
the sweep shares (--distill_weight, --ontology, --propagate_labels).
"""

import dataclasses
import typing

from absl import flags

from tf_skeptical import training
from tf_skeptical.treatments import Treatment
from tf_skeptical_bin import checks

_DEFINE = {bool: flags.DEFINE_bool, int: flags.DEFINE_integer, float: flags.DEFINE_float,
           str: flags.DEFINE_string}
_TYPES = typing.get_type_hints(training.TrainConfig)
_FIELDS = [f for f in dataclasses.fields(training.TrainConfig) if f.metadata.get("flag", True)]


def _define(field) -> flags.FlagHolder:
  meta = field.metadata
  if meta.get("choices"):
    holder = flags.DEFINE_enum(field.name, field.default, list(meta["choices"]), meta["help"])
  else:
    holder = _DEFINE[_TYPES[field.name]](field.name, field.default, meta["help"])
  bounds = dict(meta.get("bounds") or {})
  if bounds.pop("positive", False):
    checks.positive(holder)
  elif bounds:
    checks.in_range(holder, **bounds)
  return holder


FLAGS = {field.name: _define(field) for field in _FIELDS}

DISTILL_WEIGHT = flags.DEFINE_float(
    "distill_weight", Treatment.distill_weight,
    "distill: the teacher score's share of every target (EfficientAT: 0.9).")
ONTOLOGY = flags.DEFINE_string(
    "ontology", "", "An AudioSet-layout ontology.json: with --propagate_labels every "
    "positive's ancestors are positives too (YAMNet's practice), and flagging never flags "
    "an ancestor of a labelled class. Empty: none.")
PROPAGATE = flags.DEFINE_bool(
    "propagate_labels", True, "With --ontology: train on labels propagated to their "
    "ancestors (off: only flagging uses the ontology).")
REVIEWED = flags.DEFINE_string(
    "reviewed", "", "A listening test's verdicts (tfsk_review's verdicts.csv, for these "
    "train examples): a confirmed entry trains as a positive, a rejected one as an explicit "
    "negative that no treatment touches; unsure and unreviewed entries as before. In a "
    "sweep every run but the references reads them; give it --teacher=<the first sweep's "
    "teacher> to keep the flags the verdicts answer (tfsk_demo --review does). Empty: none.")
checks.fraction(DISTILL_WEIGHT)


def config_from_flags() -> training.TrainConfig:
  return training.TrainConfig(**{name: holder.value for name, holder in FLAGS.items()})


def propagated_ontology() -> str:
  """The ontology the runs train with, labels propagated ("": the labels as given)."""
  return ONTOLOGY.value if PROPAGATE.value else ""
