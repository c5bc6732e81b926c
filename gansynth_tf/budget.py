"""A wall-clock budget for one training run (--time_budget_minutes).

The same recipe runs 2-3x slower on one 2-core machine than on another (AVX2 vs AVX-512,
float32 vs bfloat16), so a schedule in images cannot promise a time. With a budget the run
measures what one training image costs at each stage on this machine, before its first
step (:func:`measure_seconds_per_image`: a throwaway GAN of the run's own network and loss,
a few steps per stage on one random batch), and :func:`make_plan` scales every phase of the
configured schedule, and the total, by one factor (never above 1) so that the predicted
steps fit the time left. The plan is written to ``budget.json`` and read back on resume.
The final stage then trains until :class:`BudgetStop` sees the budget's training time
spent (or --total_images reached): a machine slower than measured loses final-stage
images, not the deadline, and a faster one uses its time.
"""

import dataclasses
import json
import os
import time

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from gansynth_tf import cli, heap, progressive, rundir

BUDGET_FILE = "budget.json"
# Kept back from the budget for what follows the last step (the final checkpoint, the
# last audio summary and the SavedModel export): this, or a tenth of a shorter budget.
FINISH_RESERVE_SECONDS = 120.0
# The calibration times train steps alone; the input pipeline shares the cores, and stage
# changes retrace, summaries and checkpoints cost time too: the plan aims below the
# deadline by this share, and BudgetStop holds the deadline itself.
PLAN_MARGIN = 0.9
# Below this factor the run still fits, but with so few images per phase that the model
# will be much weaker than the recipe's: said at start-up.
WEAK_FACTOR = 0.25


def finish_reserve_seconds(minutes):
    return min(FINISH_RESERVE_SECONDS, 6.0 * minutes)


class BudgetError(ValueError):
    """A budget that cannot hold the run; the message names the flag and what to do."""


def images_per_stage(schedule, total_images):
    """Images trained at each stage when a run of `schedule` stops at `total_images`.

    Returns a list with one int per stage; images past the schedule's end count at the
    final stage (training goes on there at alpha 1).
    """
    counts = [0] * schedule.num_stages
    for phase in schedule.phases():
        counts[phase.stage] += max(0, min(phase.end, total_images) - phase.start)
    counts[-1] += max(0, total_images - schedule.total_images)
    return counts


def predicted_seconds(schedule, total_images, seconds_per_image):
    """Seconds of train steps for the run (sum over stages of images x cost per image)."""
    counts = images_per_stage(schedule, total_images)
    return float(sum(n * c for n, c in zip(counts, seconds_per_image)))


@dataclasses.dataclass
class BudgetPlan:
    """The schedule a budgeted run trains, how it was derived, and the time it has used.

    minutes: the budget; configured: the flags' stable_images / transition_images /
    total_images; factor: the scale applied to them (<= 1); stable_images,
    transition_images, total_images: the scaled values the run trains;
    seconds_per_image: measured cost per stage; predicted_seconds: the scaled plan's train
    steps at those costs; seconds_used: wall-clock spent by this run's earlier processes
    (a killed run resumes with the rest).
    """

    minutes: float
    configured: dict
    factor: float
    stable_images: int
    transition_images: int
    total_images: int
    seconds_per_image: list
    predicted_seconds: float
    seconds_used: float = 0.0

    def scaled_total(self, total_images, batch_size):
        """The run's total for the flags' `total_images`: the planned one, or (if the
        flag changed on a resume) that total scaled by the plan's factor."""
        if int(total_images) == self.configured["total_images"]:
            return self.total_images
        return max(batch_size, int(round(total_images * self.factor / batch_size)) * batch_size)

    def schedule(self, resolutions):
        return progressive.ProgressiveSchedule(resolutions, self.stable_images,
                                               self.transition_images)

    def save(self, train_dir):
        cli.write_json(os.path.join(train_dir, BUDGET_FILE), dataclasses.asdict(self),
                       indent=2)

    @classmethod
    def load(cls, train_dir):
        """The run's plan, or None for a run without a budget."""
        path = os.path.join(train_dir, BUDGET_FILE)
        if not os.path.exists(path):
            return None
        with open(path) as f:
            return cls(**json.load(f))


def make_plan(schedule, total_images, seconds_per_image, available_seconds, batch_size,
              minutes):
    """The largest factor <= 1 whose scaled schedule's steps fit `available_seconds`.

    schedule: the configured ProgressiveSchedule; total_images: the configured total.
    Phases are rounded to whole batches (at least one). Raises BudgetError when no time
    is left for training at all.
    """
    if available_seconds <= 0:
        raise BudgetError(
            f"--time_budget_minutes={minutes:g} leaves no time for training after the "
            f"start-up ({-available_seconds:.0f} s short): give a larger budget")
    full = predicted_seconds(schedule, total_images, seconds_per_image)
    factor = min(1.0, available_seconds / full) if full > 0 else 1.0

    def scaled(images):
        return max(batch_size, int(round(images * factor / batch_size)) * batch_size)

    stable, transition = scaled(schedule.stable_images), scaled(schedule.transition_images)
    total = scaled(total_images)
    new = progressive.ProgressiveSchedule(schedule.resolutions, stable, transition)
    return BudgetPlan(
        minutes=float(minutes),
        configured={"stable_images": schedule.stable_images,
                    "transition_images": schedule.transition_images,
                    "total_images": int(total_images)},
        factor=float(factor), stable_images=stable, transition_images=transition,
        total_images=total, seconds_per_image=[float(c) for c in seconds_per_image],
        predicted_seconds=predicted_seconds(new, total, seconds_per_image))


def keep_schedule(schedule, total_images, minutes):
    """The plan of a run that got its budget on a resume: its schedule as it is."""
    return BudgetPlan(
        minutes=float(minutes),
        configured={"stable_images": schedule.stable_images,
                    "transition_images": schedule.transition_images,
                    "total_images": int(total_images)},
        factor=1.0, stable_images=schedule.stable_images,
        transition_images=schedule.transition_images, total_images=int(total_images),
        seconds_per_image=[], predicted_seconds=0.0)


class StepTimer(keras.callbacks.Callback):
    """Wall-clock seconds of each train step of a fit (`.seconds`)."""

    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_train_batch_begin(self, batch, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if logs and "d_loss" in logs:
            float(logs["d_loss"])  # the step's result is in hand: it has run
        self.seconds.append(time.perf_counter() - self._start)


def measure_seconds_per_image(gan, example, batch_size, warmup_steps=2, timed_steps=3):
    """Median seconds per training image at each stage of a compiled GAN.

    gan: a compiled GANSynthGAN (a throwaway: its weights are trained on noise). example:
    one batch `(inputs, one_hot_genres)` as the run's train step takes it. Each stage
    traces its train function in `warmup_steps` untimed steps, then times `timed_steps`.
    """
    data = tf.data.Dataset.from_tensors(example).repeat()
    costs = []
    for stage in range(gan.generator.config.num_stages):
        gan.set_stage(stage, 1.0)
        gan.fit(data, steps_per_epoch=warmup_steps, epochs=1, verbose=0, shuffle=False)
        timer = StepTimer()
        gan.fit(data, steps_per_epoch=timed_steps, epochs=1, verbose=0, shuffle=False,
                callbacks=[timer])
        costs.append(float(np.median(timer.seconds)) / batch_size)
    return costs


def describe(plan, schedule_before):
    """One log line: the measured costs, and what the plan changed."""
    costs = ", ".join(f"{1.0 / c:.1f}" if c > 0 else "inf" for c in plan.seconds_per_image)
    full = predicted_seconds(schedule_before, plan.configured["total_images"],
                             plan.seconds_per_image)
    head = (f"Time budget {plan.minutes:g} min: measured images/s per stage {costs}; "
            f"the configured schedule's steps would take {full / 60:.1f} min")
    if plan.factor >= 1.0:
        return head + "; it is kept as configured"
    line = (f"{head}; every phase scaled by {plan.factor:.2f}: stable {plan.stable_images:,}, "
            f"transition {plan.transition_images:,} images, and the final stage trains until "
            f"the budget is spent (about {plan.total_images:,} images in all, steps "
            f"predicted at {plan.predicted_seconds / 60:.1f} min)")
    if plan.factor < WEAK_FACTOR:
        line += (f"; under {WEAK_FACTOR:g} of the recipe's images the model will be much "
                 "weaker: a longer budget or a faster machine (GPU) would train more")
    return line


class BudgetStop(keras.callbacks.Callback):
    """Ends training at the final stage once `deadline` (a time.time() value) has passed;
    `total_seconds` is the training time of the whole run, resumes included.

    Earlier stages are never cut (an export needs the final stage): a run that reaches
    the deadline before it is logged as behind its plan and stops as soon as the final
    stage has taken one step. `record()` (no arguments) is called at every epoch end, so
    that the plan on disk knows the time used (stop_run's record writes seconds_used).
    """

    def __init__(self, deadline, final_stage, record=None, clock=time.time,
                 total_seconds=None):
        super().__init__()
        self.deadline, self.final_stage = deadline, final_stage
        self.total_seconds = total_seconds  # the whole run's training time, for progress
        self.record, self.clock = record, clock
        self.stopped = False
        self._warned = False

    def spent(self):
        return self.clock() >= self.deadline

    def on_train_batch_end(self, batch, logs=None):
        if not self.spent():
            return
        if self.model.stage >= self.final_stage:
            self.model.stop_training = True
            self.stopped = True
        elif not self._warned:
            self._warned = True
            logging.warning("The time budget is spent before the final stage (stage %d of "
                            "%d): the machine ran slower than measured at start-up; the "
                            "run stops after the final stage's first step",
                            self.model.stage + 1, self.final_stage + 1)

    def on_epoch_end(self, epoch, logs=None):
        if self.record is not None:
            self.record()


def plan_run(train_dir, schedule, total_images, minutes, batch_size, build_compiled_gan,
             example, started, seed=0):
    """(plan, schedule, seconds used before this process) of a training run.

    A resumed run reads its plan back; one that started without a budget and resumes with
    one gets a plan that keeps its schedule; without a budget: (None, schedule, 0). A new
    run measures each stage on `build_compiled_gan()` (a throwaway, fed `example`), scales
    `schedule` and `total_images` to the `minutes` left since `started` (a time.time()), and
    saves the plan and the scaled schedule. Raises BudgetError when no time is left.
    """
    plan = BudgetPlan.load(train_dir)
    if plan is not None:
        return plan, plan.schedule(schedule.resolutions), plan.seconds_used
    if minutes <= 0:
        return None, schedule, 0.0
    if rundir.latest_checkpoint(train_dir) is not None:
        plan = keep_schedule(schedule, total_images, minutes)
        plan.save(train_dir)
        return plan, schedule, 0.0
    logging.info("Measuring each stage's training cost for --time_budget_minutes=%g", minutes)
    probe = build_compiled_gan()
    costs = measure_seconds_per_image(probe, example, batch_size)
    del probe
    heap.release_free_memory()
    keras.utils.set_random_seed(seed)  # the run's GAN starts as it would unbudgeted
    available = minutes * 60 - (time.time() - started) - finish_reserve_seconds(minutes)
    plan = make_plan(schedule, total_images, costs, PLAN_MARGIN * available, batch_size,
                     minutes)
    logging.info("%s", describe(plan, schedule))
    plan.seconds_used = time.time() - started
    plan.save(train_dir)
    schedule = plan.schedule(schedule.resolutions)
    rundir.save_schedule(train_dir, schedule)
    return plan, schedule, 0.0


def stop_run(train_dir, plan, minutes, final_stage, started, used_before):
    """The BudgetStop of this process: its deadline is `minutes` less the time earlier
    processes of the run used (`used_before`), less the reserve for the export; it keeps
    budget.json's seconds_used up to date."""
    if plan.minutes != minutes:
        logging.info("Time budget now %g min (the run started with %g)", minutes,
                     plan.minutes)
        plan.minutes = float(minutes)
    deadline = started + minutes * 60 - used_before - finish_reserve_seconds(minutes)

    def record():
        plan.seconds_used = used_before + (time.time() - started)
        plan.save(train_dir)

    return BudgetStop(deadline, final_stage, record,
                      total_seconds=minutes * 60 - finish_reserve_seconds(minutes))
