r"""The listening test: answer the teacher's flagged candidates in a local web page, one at a
time (Present / Absent / Unsure / Back, also on the keys P, A, U, B), into a verdicts file
that training reads (--reviewed) and that hands back a cleaned dataset (--export).

  tfsk_review --flags=flags --verdicts=verdicts.csv
  tfsk_review --flags=flags --verdicts=verdicts.csv --simulate_from=data/train_missing_labels.csv --budget=20
  tfsk_review --flags=flags --verdicts=verdicts.csv --export=cleaned

The first serves the page at the printed address (this machine only, no network needed)
until Ctrl-C; each answer is on disk before the page moves on, and a restart resumes at
the first unanswered candidate. The second answers the first --budget candidates from a
truth file, as a careful listener would (experiments with known missing labels). The third
writes cleaned/train_segments.csv (AudioSet layout, confirmed labels added, rejected ones as
explicit negatives) and cleaned/changes.csv.
"""

from absl import flags, logging

from tf_skeptical import errors
from tf_skeptical.review import cleaned, queue, simulated
from tf_skeptical.review import session as review_session
from tf_skeptical_bin import checks, cli

FLAGS_DIR = flags.DEFINE_string("flags", None, "The flags directory (tfsk_flag's output) or "
                                "its flags.npz.")
VERDICTS = flags.DEFINE_string(
    "verdicts", None, "The verdicts file: started if new, appended to (never rewritten) "
    "otherwise; refused if it answers other flags.")
EXAMPLES = flags.DEFINE_string(
    "examples", None, "The train examples the flags were scored from (default: as the "
    "flags record); their manifest names the segments CSV and the audio folder.")
PERCENT = flags.DEFINE_float(
    "percent", 0.0, "The candidates: the entries flagged at this p (0: every flag the file "
    "holds, up to its --max_percent).")
ORDER = flags.DEFINE_enum(
    "order", queue.TEACHER, list(queue.ORDERS) + [simulated.RANDOM],
    "teacher: highest teacher score first, whatever the class; round_robin: each class's "
    "best, then each class's second, ...; boundary: the scores closest to 0.5 first; "
    "random (with --simulate_from only): entries drawn from all implicit negatives.")
MAX_CANDIDATES = flags.DEFINE_integer(
    "max_candidates", review_session.ReviewConfig.max_candidates,
    "The page takes at most this many candidates, in --order (their log-mel is held in "
    "memory).")
ONTOLOGY = flags.DEFINE_string("ontology", "", "ontology.json, to show each class's path.")
HOST = flags.DEFINE_string("host", "127.0.0.1", "Address to serve on (127.0.0.1: this "
                           "machine only).")
PORT = flags.DEFINE_integer("port", 8000, "Port to serve on (0: any free port).")
EXPORT = flags.DEFINE_string(
    "export", None, "Instead of serving: write the cleaned train segments and the changes "
    "to this directory.")
SIMULATE_FROM = flags.DEFINE_string(
    "simulate_from", None, "Instead of serving: answer --budget candidates from this truth "
    "file (clip_id, mid: the known missing labels).")
BUDGET = flags.DEFINE_integer("budget", 100, "With --simulate_from: how many to answer.")
SEED = flags.DEFINE_integer("seed", 0, "With --simulate_from --order=random: the draw.")
checks.percent(PERCENT)
checks.positive(MAX_CANDIDATES, BUDGET)
checks.in_range(PORT, low=0, high=65535)
flags.mark_flags_as_required(["flags", "verdicts"])


def main(argv):
  del argv
  if EXPORT.value:
    flags_path = review_session.flags_file(FLAGS_DIR.value)
    from tf_skeptical import flagging
    examples_dir = EXAMPLES.value or flagging.read_flags(flags_path).made_from["examples"]
    counts = cleaned.export(VERDICTS.value, examples_dir, EXPORT.value)
    logging.info("%d labels added, %d entries confirmed absent: %s", counts["present"],
                 counts["absent"], EXPORT.value)
    return
  if SIMULATE_FROM.value:
    done = simulated.review(FLAGS_DIR.value, SIMULATE_FROM.value, VERDICTS.value,
                            BUDGET.value, ORDER.value, PERCENT.value, SEED.value,
                            EXAMPLES.value or "")
    logging.info("answered %d candidates (%d present, %d absent) into %s", done["answered"],
                 done["present"], done["absent"], VERDICTS.value)
    return
  if ORDER.value == simulated.RANDOM:
    raise errors.BadValue("flag --order=random: only with --simulate_from (a person answers "
                          "the flags in the teacher's, round-robin or boundary order)")
  review = review_session.Session(
      FLAGS_DIR.value, VERDICTS.value,
      review_session.ReviewConfig(PERCENT.value, ORDER.value, MAX_CANDIDATES.value,
                                  ONTOLOGY.value), EXAMPLES.value)

  def ready(address):
    print(f"tfsk_review: {review_session.describe(review.counts())}", flush=True)
    print(f"tfsk_review: open {address} (Ctrl-C stops; answers are saved as you go)",
          flush=True)

  from tf_skeptical.review import server
  server.serve(review, HOST.value, PORT.value, ready)


def run():
  cli.run(main)


if __name__ == "__main__":
  run()
