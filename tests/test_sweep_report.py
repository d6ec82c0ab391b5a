"""The sweep's report: the results table's reference lines against a hand-worked table."""


def _row(p, d_prime, lwlrap, gain=None, lwlrap_gain=None, noise=0.01):
  """A table row whose gains' clip intervals are gain -+ noise (d') and -+ noise / 10
  (lwlrap), significant where they exclude 0."""
  from tf_skeptical import sweep
  runs = [dict(eval=dict(d_prime=d_prime, lwlrap=lwlrap, mAP=0.5, AUC=0.9))]
  verdict_row = None if gain is None else dict(
      paired_runs=1, gain=gain, gain_seed_low=float("nan"), gain_seed_high=float("nan"),
      gain_clip_low=gain - noise, gain_clip_high=gain + noise, significant=abs(gain) > noise,
      lwlrap_gain=lwlrap_gain, lwlrap_gain_seed_low=float("nan"),
      lwlrap_gain_seed_high=float("nan"), lwlrap_gain_clip_low=lwlrap_gain - noise / 10,
      lwlrap_gain_clip_high=lwlrap_gain + noise / 10,
      lwlrap_significant=abs(lwlrap_gain) > noise / 10)
  return sweep.report.table_row(p, runs, {}, verdict_row, 1, "the teacher")


def _reference(gain, lwlrap_gain, noise=0.01):
  return dict(d_prime=2.0 + gain, lwlrap=0.8 + lwlrap_gain, missing_labels=7,
              **{k: v for k, v in _row(1.0, 0, 0, gain, lwlrap_gain, noise).items()
                 if "gain" in k or "significant" in k or k == "paired_runs"})


def test_results_give_the_best_p_share_of_each_reference_hand_worked(tmp_path):
  """Best p gains 0.03 d' and 0.004 lwlrap; complete labels 0.12 and 0.016, the perfect mask
  0.06 and 0.008: 25% of the cost and 50% of the perfect mask's gain, which itself recovers
  50%, by both metrics. Without references, no such line."""
  from tf_skeptical import sweep
  table = [_row(0.0, 2.0, 0.8), _row(2.0, 2.03, 0.804, 0.03, 0.004),
           _row(4.0, 1.99, 0.801, -0.01, 0.001)]
  text = sweep.write_table(table, str(tmp_path), {sweep.COMPLETE: _reference(0.12, 0.016),
                                                  sweep.PERFECT_MASK: _reference(0.06, 0.008)})
  for metric in ("d'", "lwlrap"):
    assert (f"By {metric}, the best p (2%) recovers 25% of what the missing labels cost; 50% "
            "of what a perfect mask gains; a perfect mask itself recovers 50% of the cost."
            in text)
  assert "Complete labels (the 7 missing ones" in text and "Perfect mask (exactly the 7" in text
  assert "By d'" not in sweep.write_table(table, str(tmp_path))


def test_shares_of_noise_are_not_claimed_and_shares_over_100_percent_are_said(tmp_path):
  """A best gain inside its noise gets no share; a reference gain inside its noise is not
  divided by; a share above 100% says so (hand-made rows: d' gains 0.005 -+ 0.01 for the
  best p, lwlrap 0.004 -+ 0.001; the complete labels 0.02 -+ 0.03 d' and 0.002 -+ 0.003
  lwlrap, both noise; the perfect mask 0.05 and 0.003, whose lwlrap is 150% of the cost's
  0.002, but the cost is noise)."""
  from tf_skeptical import sweep
  table = [_row(0.0, 2.0, 0.8), _row(2.0, 2.005, 0.804, 0.005, 0.004)]
  text = sweep.write_table(table, str(tmp_path), {
      sweep.COMPLETE: _reference(0.02, 0.002, noise=0.03),
      sweep.PERFECT_MASK: _reference(0.05, 0.003)})
  assert ("By d', the best p (2%) gains +0.005, within noise (an interval includes 0): no "
          "share of the references' gains is claimed." in text)
  assert ("By lwlrap, the best p (2%) recovers none of what the missing labels cost, which is "
          "within noise (+0.002, an interval includes 0); 133% of what a perfect mask gains "
          "(over 100%: more than the reference itself gained); a perfect mask itself "
          "recovers none of the cost, which is within noise (+0.002, an interval includes "
          "0)." in text)
  assert "-0%" not in text and "143%" not in text
