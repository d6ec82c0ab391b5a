"""What a student is told about its targets, as one value from where a run is set up down
to the input pipeline (input_pipeline.training_dataset) and into result.json.

A teacher is told nothing beyond the labels as given (`Targets()`); a student is told which
entries its teacher flagged (at p % of each class's implicit negatives) and what to make
of them (the treatment, treatments.py); an experiment's reference adds the known missing
labels as positives, or masks exactly them; with an ontology every positive's ancestors
are positives too. The rules that tie these together (soft needs the flags' scores, distill
every entry's teacher score, all of them of the train examples) are checked here, once.
"""

import dataclasses
from typing import Optional

from tf_skeptical import errors, flagging
from tf_skeptical.data import ontology as ontology_lib
from tf_skeptical.entries import Entries
from tf_skeptical.treatments import Treatment
from tf_skeptical.util import provenance


@dataclasses.dataclass(frozen=True)
class Targets:
  treatment: Treatment = Treatment()
  flagged: Optional[Entries] = None  # the teacher's flags at `percent`, treated as told
  percent: float = 0.0  # the p the flags were taken at (0: none, or a reference's entries)
  teacher_scores: Optional[object] = None  # scoring.Scores of the train set (distill)
  added_positives: Optional[Entries] = None  # trained as positives (the complete labels)
  ontology: Optional[ontology_lib.Ontology] = None  # labels propagated to their ancestors
  # A listening test's verdicts (review/verdicts.py): scores 1 (present: a positive) or 0
  # (absent: an explicit negative); either way the entry counts in the loss with that
  # target, whatever the treatment or the flags say of it.
  reviewed: Optional[Entries] = None

  def __post_init__(self):
    if (self.flagged is not None and self.treatment.needs_flag_scores
        and self.flagged.scores is None):
      raise errors.BadValue(f"the {self.treatment.name} treatment needs the flags' teacher "
                            "scores: read the flags with their scores")
    if self.treatment.needs_teacher_scores and self.teacher_scores is None:
      raise errors.BadValue(f"the {self.treatment.name} treatment needs the teacher's scores "
                            "of the train set (tfsk_train --teacher_scores)")

  def check_examples(self, info) -> None:
    """Raises ProvenanceMismatch unless the flags and the teacher's scores were made from
    the train examples `info`, and the scores by the teacher the flags came from."""
    if self.flagged is not None:
      self.flagged.check_examples(info)
    if self.reviewed is not None:
      self.reviewed.check_examples(info)
    if self.teacher_scores is not None:
      m = self.teacher_scores.manifest
      name = f"teacher scores of {m.get('model', 'a model')}"
      provenance.check_made_from(m, name, info)
      if self.flagged is not None:
        provenance.check_same("teacher", m.get("model_id", "unrecorded"), name,
                              self.flagged.made_from.get("model_id", "unrecorded"),
                              f"flags {self.flagged.made_from.get('flags', '')}".strip())

  @property
  def confirmed(self) -> int:
    return 0 if self.reviewed is None else int((self.reviewed.scores > 0.5).sum())

  @property
  def rejected(self) -> int:
    return 0 if self.reviewed is None else self.reviewed.count - self.confirmed

  def describe(self) -> str:
    """What the run trains on, for its log line."""
    labels = ("labels propagated up the ontology" if self.ontology is not None
              else "the labels as given")
    if self.reviewed is not None:
      labels += (f", {self.confirmed} reviewed entries confirmed present and "
                 f"{self.rejected} absent")
    if self.added_positives is not None:
      labels += f", {self.added_positives.count} missing labels added back"
    if self.flagged is None:
      return labels
    if self.percent:
      return (f"{labels}, {self.treatment.label} on {self.percent:g}% of each class's "
              f"implicit negatives ({self.flagged.count} entries)")
    return f"{labels}, {self.treatment.label} on {self.flagged.count} given entries"

  def record(self) -> dict:
    """What result.json (and a backup's recipe) says the run was told."""
    return dict(treatment=self.treatment.label if self.flagged is not None else None,
                discard_percent=self.percent,
                masked_entries=self.flagged.count if self.flagged is not None else 0,
                added_positives=(self.added_positives.count
                                 if self.added_positives is not None else 0),
                flags=self.flagged.made_from if self.flagged is not None else None,
                ontology=self.ontology.path if self.ontology is not None else None,
                verdicts=None if self.reviewed is None else dict(
                    file=self.reviewed.made_from.get("flags", "")[len("verdicts "):],
                    confirmed=self.confirmed, rejected=self.rejected, id=self.verdicts_id))

  @property
  def verdicts_id(self) -> Optional[str]:
    """The verdicts' answers id (review/verdicts.py), None without verdicts."""
    return None if self.reviewed is None else self.reviewed.made_from.get("verdicts_id")


def read(flags_path: Optional[str] = None, percent: float = 0.0,
         treatment: Treatment = Treatment(), teacher_scores=None, ontology: str = "",
         mids=None, flags: Optional["flagging.Flags"] = None,
         reviewed: str = "") -> Targets:
  """A student's (or a teacher's) Targets from files: the flags at `percent` (from
  flags_path, or `flags` already read), with their scores when the treatment needs them;
  the teacher's scores (scoring.Scores, read by the caller when
  treatment.needs_teacher_scores); the ontology (its path, with the class map's mids) to
  propagate labels; a listening test's verdicts file (review/verdicts.py; with the class
  map's mids)."""
  if percent > 0 and not (flags_path or flags is not None):
    raise errors.BadValue("a discard percentage needs the teacher's flags (--teacher_flags)")
  flagged = None
  if percent > 0:
    with_scores = treatment.needs_flag_scores
    flagged = (flags.entries(percent, with_scores) if flags is not None
               else flagging.load_entries(flags_path, percent, with_scores))
  onto = ontology_lib.read_ontology(ontology, mids) if ontology else None
  answered = None
  if reviewed:
    from tf_skeptical.review import verdicts
    clip_ids = flags.clip_ids if flags is not None else None
    answered = verdicts.answered(reviewed, mids, clip_ids)
  return Targets(treatment, flagged, percent,
                 teacher_scores if treatment.needs_teacher_scores else None, ontology=onto,
                 reviewed=answered)
