"""distribution.WorkerRole: which process of a cluster is the chief (the one that writes)."""
import json

import pytest

from gansynth_tf import distribution


def _env(cluster, task_type, index):
    return {"TF_CONFIG": json.dumps({"cluster": cluster,
                                     "task": {"type": task_type, "index": index}})}


WORKERS = {"worker": ["a:1", "b:1", "c:1"]}
WITH_CHIEF = {"chief": ["c:1"], "worker": ["a:1", "b:1"]}


@pytest.mark.parametrize("cluster, task_type, index, chief", [
    (WORKERS, "worker", 0, True),
    (WORKERS, "worker", 1, False),
    (WORKERS, "worker", 2, False),
    (WITH_CHIEF, "chief", 0, True),
    (WITH_CHIEF, "worker", 0, False),   # a cluster with a chief: worker 0 is not it
    (WITH_CHIEF, "worker", 1, False),
])
def test_the_chief_is_the_chief_task_or_else_worker_0(cluster, task_type, index, chief):
    role = distribution.WorkerRole.from_tf_config("multiworker", _env(cluster, task_type,
                                                                      index))
    assert role.chief is chief
    assert (role.task_type, role.task_id) == (task_type, index)
    assert role.name == f"{task_type} {index}"


@pytest.mark.parametrize("kind, environ", [
    ("none", _env(WORKERS, "worker", 1)),       # TF_CONFIG ignored without multiworker
    ("mirrored", _env(WORKERS, "worker", 1)),
    ("multiworker", {}),                        # no TF_CONFIG: a cluster of one
    ("multiworker", {"TF_CONFIG": json.dumps({"cluster": WORKERS})}),
])
def test_a_single_process_run_is_its_own_chief(kind, environ):
    role = distribution.WorkerRole.from_tf_config(kind, environ)
    assert role.chief and role.task_type is None and role.name == "the only worker"


def test_a_tf_config_that_is_not_json_is_a_clear_error():
    with pytest.raises(ValueError, match="TF_CONFIG is not JSON"):
        distribution.WorkerRole.from_tf_config("multiworker", {"TF_CONFIG": "{worker: a}"})


def test_strategies_by_kind():
    import tensorflow as tf

    assert distribution.make_strategy("none") is tf.distribute.get_strategy()
    mirrored = distribution.make_strategy("mirrored")
    assert isinstance(mirrored, tf.distribute.MirroredStrategy)
    assert not distribution.multi_worker(mirrored)
    distribution.barrier(mirrored)  # a no-op outside a cluster: returns at once
