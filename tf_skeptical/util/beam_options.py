"""Beam pipeline options: pass every user option through, with local defaults.

The same job runs locally and on Dataflow, Flink or Spark with `--runner=...` and that
runner's own options after the binary's flags. The local default is Beam's FnApiRunner:
what DirectRunner runs these pipelines on in the end, minus DirectRunner's first attempt
to download the Prism runner binary, which fails (slowly) on offline machines.
"""

from typing import Sequence

from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions


def pipeline_options(beam_args: Sequence[str], local_workers: int = 1) -> PipelineOptions:
  """Options from the command line's unparsed arguments.

  With no --runner, FnApiRunner; local_workers > 1 runs that many worker processes.
  """
  args = list(beam_args)
  named = {a.split("=")[0] for a in args if a.startswith("--")}
  if "--default_sdk_harness_log_level" not in named:
    args.append("--default_sdk_harness_log_level=WARNING")  # workers' per-bundle INFO lines
  if "--runner" not in named:
    args.append("--runner=FnApiRunner")
    if local_workers > 1 and "--direct_num_workers" not in named:
      args += [f"--direct_num_workers={local_workers}",
               "--direct_running_mode=multi_processing"]
  return PipelineOptions(args)


def counter(result, name: str) -> int:
  """A Beam counter's committed value (attempted where the runner has no committed ones)."""
  found = result.metrics().query(MetricsFilter().with_name(name))["counters"]
  total = 0
  for c in found:
    total += c.committed if c.committed is not None else c.attempted
  return total
