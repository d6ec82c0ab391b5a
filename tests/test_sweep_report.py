"""The sweep's report: the results table's reference lines against a hand-worked table."""


def _row(p, d_prime, lwlrap, gain=None, lwlrap_gain=None):
  from tf_skeptical import sweep
  runs = [dict(eval=dict(d_prime=d_prime, lwlrap=lwlrap, mAP=0.5, AUC=0.9))]
  verdict_row = None if gain is None else dict(
      paired_runs=1, gain=gain, gain_seed_low=float("nan"), gain_seed_high=float("nan"),
      gain_clip_low=gain - 0.01, gain_clip_high=gain + 0.01, significant=True,
      lwlrap_gain=lwlrap_gain, lwlrap_gain_seed_low=float("nan"),
      lwlrap_gain_seed_high=float("nan"), lwlrap_gain_clip_low=lwlrap_gain - 0.001,
      lwlrap_gain_clip_high=lwlrap_gain + 0.001, lwlrap_significant=True)
  return sweep.report.table_row(p, runs, {}, verdict_row, 1, "the teacher")


def test_results_give_the_best_p_share_of_each_reference_hand_worked(tmp_path):
  """Best p gains 0.03 d' and 0.004 lwlrap; complete labels 0.12 and 0.016, the perfect mask
  0.06 and 0.008: 25% of the cost and 50% of the perfect mask's gain, which itself recovers
  50%, by both metrics. Without references, no such line."""
  from tf_skeptical import sweep
  table = [_row(0.0, 2.0, 0.8), _row(2.0, 2.03, 0.804, 0.03, 0.004),
           _row(4.0, 1.99, 0.801, -0.01, 0.001)]
  ref = lambda g, lg: dict(d_prime=2.0 + g, lwlrap=0.8 + lg, missing_labels=7,  # noqa: E731
                           **{k: v for k, v in _row(1.0, 0, 0, g, lg).items()
                              if "gain" in k or "significant" in k or k == "paired_runs"})
  text = sweep.write_table(table, str(tmp_path), {sweep.COMPLETE: ref(0.12, 0.016),
                                                  sweep.PERFECT_MASK: ref(0.06, 0.008)})
  for metric in ("d'", "lwlrap"):
    assert (f"By {metric}, the best p (2%) recovers 25% of what the missing labels cost; 50% "
            "of what a perfect mask gains; a perfect mask itself recovers 50% of the cost."
            in text)
  assert "Complete labels (the 7 missing ones" in text and "Perfect mask (exactly the 7" in text
  assert "By d'" not in sweep.write_table(table, str(tmp_path))
