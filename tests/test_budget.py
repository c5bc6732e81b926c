"""--time_budget_minutes: the plan's maths, the stop at the deadline, and a budgeted run."""
import json
import os
import time

import keras
import numpy as np
import pytest
from test_train import TINY, run_training

from gansynth_tf import budget, gan, networks, progressive, rundir

SCHEDULE = progressive.ProgressiveSchedule(((2, 4), (4, 8), (8, 16)), 10, 6)


def test_images_per_stage_follow_the_phases_and_the_rest_goes_to_the_final_stage():
    # stable 0 [0, 10), fade 1 [10, 16), stable 1 [16, 26), fade 2 [26, 32), stable 2 [32, 42)
    assert SCHEDULE.total_images == 42
    assert budget.images_per_stage(SCHEDULE, 42) == [10, 16, 16]
    assert budget.images_per_stage(SCHEDULE, 50) == [10, 16, 24]
    assert budget.images_per_stage(SCHEDULE, 20) == [10, 10, 0]
    assert budget.predicted_seconds(SCHEDULE, 50, [1.0, 2.0, 3.0]) == 10 + 32 + 72


def test_a_plan_that_fits_keeps_the_schedule():
    plan = budget.make_plan(SCHEDULE, 50, [0.01, 0.02, 0.03], 100.0, 2, 5)
    assert plan.factor == 1.0
    assert (plan.stable_images, plan.transition_images, plan.total_images) == (10, 6, 50)
    assert plan.predicted_seconds == pytest.approx(1.14)


def test_a_plan_that_does_not_fit_scales_every_phase_by_one_factor():
    schedule = progressive.ProgressiveSchedule(((2, 4), (4, 8), (8, 16)), 4000, 4000)
    costs = [0.001, 0.01, 0.1]
    full = budget.predicted_seconds(schedule, 66000, costs)
    plan = budget.make_plan(schedule, 66000, costs, full / 4, 8, 85)
    assert plan.factor == pytest.approx(0.25)
    assert (plan.stable_images, plan.transition_images) == (1000, 1000)
    assert abs(plan.total_images - 66000 / 4) <= 8
    for n in (plan.stable_images, plan.transition_images, plan.total_images):
        assert n % 8 == 0
    # Rounding to whole batches moves the prediction by well under a batch per phase.
    assert plan.predicted_seconds == pytest.approx(full / 4, rel=0.01)
    assert plan.configured == {"stable_images": 4000, "transition_images": 4000,
                               "total_images": 66000}
    scaled = plan.schedule(schedule.resolutions)
    assert (scaled.stable_images, scaled.transition_images) == (1000, 1000)


def test_a_tiny_budget_keeps_one_batch_per_phase_and_no_time_at_all_is_an_error():
    plan = budget.make_plan(SCHEDULE, 50, [1.0, 1.0, 1.0], 1e-6, 4, 1)
    assert (plan.stable_images, plan.transition_images, plan.total_images) == (4, 4, 4)
    with pytest.raises(budget.BudgetError, match="--time_budget_minutes=2 leaves no time"):
        budget.make_plan(SCHEDULE, 50, [1.0, 1.0, 1.0], -30.0, 4, 2)


def test_the_plan_round_trips_through_budget_json_and_rescales_a_changed_total(tmp_path):
    assert budget.BudgetPlan.load(str(tmp_path)) is None
    plan = budget.make_plan(SCHEDULE, 400, [0.5, 0.5, 0.5], 50.0, 2, 3)
    plan.seconds_used = 12.5
    plan.save(str(tmp_path))
    loaded = budget.BudgetPlan.load(str(tmp_path))
    assert loaded == plan
    assert loaded.scaled_total(400, 2) == plan.total_images
    assert loaded.scaled_total(800, 2) == pytest.approx(800 * plan.factor, abs=2)


class _Model:
    def __init__(self, stage):
        self.stage, self.stop_training = stage, False


def test_budget_stop_ends_only_the_final_stage_once_the_deadline_passes():
    now = [100.0]
    records = []
    stop = budget.BudgetStop(deadline=110.0, final_stage=2, record=lambda: records.append(1),
                             clock=lambda: now[0])
    model = _Model(stage=1)
    stop.set_model(model)
    stop.on_train_batch_end(0)
    assert not model.stop_training and not stop.spent()
    now[0] = 111.0
    stop.on_train_batch_end(1)
    assert not model.stop_training, "an earlier stage is never cut: export needs the last"
    model.stage = 2
    stop.on_train_batch_end(2)
    assert model.stop_training and stop.stopped and stop.spent()
    stop.on_epoch_end(0)
    assert records == [1]


def test_progress_shows_the_time_budget_once_it_is_nearer_its_end_than_the_images():
    from types import SimpleNamespace

    from gansynth_tf.train_callbacks import ProgressLog

    now = [1000.0]
    stop = budget.BudgetStop(deadline=1600.0, final_stage=2, clock=lambda: now[0],
                             total_seconds=1000.0)  # 400 s of the 1000 used
    config = SimpleNamespace(resolutions=SCHEDULE.resolutions, num_stages=3)
    progress = ProgressLog(SCHEDULE, config, batch_size=2, target_steps=50, every_steps=1,
                           verbose=1, budget=stop, clock=lambda: now[0])
    progress.set_model(SimpleNamespace(stage=2, alpha=keras.ops.convert_to_tensor(1.0)))
    # 10 of 100 images but 40% of the time: the budget will end the run first.
    line = progress.line(10)
    assert line.startswith("[########............] 10 images (40% of the time budget)  "
                           "stage 3/3 (8x16) alpha 1.00"), line
    assert line.endswith("time budget left 10m00s"), line
    # Once the rate is known it decides: 90 images at 0.1/s outlast the 600 s left ...
    progress._rate = 0.1
    assert progress.line(10).endswith("0.1 images/s  time budget left 10m00s")
    # ... and at 1/s they do not: the usual count and ETA, though 40% > 10%.
    progress._rate = 1.0
    line = progress.line(10)
    assert "] 10/100 images (10%)  " in line and line.endswith("1.0 images/s  ETA 1m30s"), line
    # Without a rate yet, the larger share decides: 80% of the images against 40%.
    progress._rate = None
    line = progress.line(80)
    assert "80/100 images (80%)" in line and line.endswith("ETA --"), line
    now[0] = 1700.0  # past the deadline: full, never over
    assert "(100% of the time budget)" in progress.line(10)
    assert "time budget left 0s" in progress.line(10)


def test_each_stage_of_a_compiled_gan_is_timed():
    config = networks.NetworkConfig(((2, 8), (4, 16)), (8, 4), (8, 4), num_genres=3,
                                    latent_dim=8)
    model = gan.build_gan(config, seed=0)
    d_opt, g_opt = gan.make_optimizers()
    model.compile(d_opt, g_opt)
    rng = np.random.default_rng(0)
    example = (rng.uniform(-1, 1, (4, 4, 16, 2)).astype(np.float32),
               np.eye(3, dtype=np.float32)[[0, 1, 2, 0]])
    costs = budget.measure_seconds_per_image(model, example, 4, warmup_steps=1,
                                             timed_steps=2)
    assert len(costs) == 2 and all(0 < c < 5 for c in costs)
    assert int(model.step_counter.numpy()) == 6
    keras.backend.clear_session()


def test_a_budgeted_run_scales_its_schedule_stops_in_time_exports_and_resumes(tmp_path):
    train_dir = str(tmp_path / "run")
    args = [f"--train_dir={train_dir}", *[a for a in TINY if "export_at_end" not in a],
            "--stable_images=400", "--transition_images=400", "--total_images=400000",
            "--steps_per_epoch=20", "--summary_every_steps=20",
            "--audio_summary_every_steps=0", "--time_budget_minutes=1"]
    start = time.time()
    result = run_training(args, timeout=240)
    elapsed = time.time() - start
    assert result.returncode == 0, result.stderr[-3000:]
    with open(os.path.join(train_dir, budget.BUDGET_FILE)) as f:
        plan = json.load(f)
    assert plan["configured"] == {"stable_images": 400, "transition_images": 400,
                                  "total_images": 400000}
    assert 0 < plan["factor"] < 0.1 and len(plan["seconds_per_image"]) == 3
    # The deadline holds unless the machine ran slower than measured before the final
    # stage (a loaded machine), which the run says.
    behind = "the time budget is spent before the final stage" in result.stderr.lower()
    assert behind or 0 < plan["seconds_used"] <= 60 + 5, plan["seconds_used"]
    schedule = rundir.load_schedule(train_dir)
    assert schedule.stable_images == plan["stable_images"] < 400
    assert "stopped by --time_budget_minutes=1 at the final stage" in result.stderr
    assert "Time budget 1 min: measured images/s per stage" in result.stderr
    # The progress ends on the step the budget stopped at, not on the last report before.
    done = result.stderr[result.stderr.index("Done: ") + 6:].split(" of ")[0]
    last = [ln for ln in result.stdout.splitlines() if ln.startswith("[")][-1]
    assert f"] {done} images (" in last and "time budget left" in last, (done, last)
    assert os.path.exists(os.path.join(train_dir, "export", "saved_model.pb"))
    # The process starts (imports) before the budget's clock and exports after its
    # deadline, both slower on a loaded machine (a CI run saw 104.8 s of wall-clock in all).
    # The bound only has to catch a run that trains past its deadline, and this schedule's
    # 400k images would take hours.
    assert elapsed < 60 + 90, elapsed

    # Run again: the budget is spent, so it trains no further and exports again.
    step = int(rundir.latest_checkpoint(train_dir).rsplit("-", 1)[1])
    result = run_training(args, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "of this run is spent: no more training" in result.stderr
    assert int(rundir.latest_checkpoint(train_dir).rsplit("-", 1)[1]) == step

    # A resume compares the schedule the flags ask for, not the scaled one.
    result = run_training([*args, "--stable_images=300"], timeout=120)
    assert result.returncode == 2
    (line,) = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert "--stable_images=400 there, --stable_images=300 now" in line
