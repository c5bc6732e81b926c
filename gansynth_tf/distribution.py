"""Which tf.distribute strategy a run uses, and each process's part in a multi-worker run.

How to launch a cluster: docs/distributed.md.
"""

import dataclasses
import json
import os

import tensorflow as tf

KINDS = ("none", "mirrored", "multiworker")


def make_strategy(kind):
    """``kind`` from :data:`KINDS`: one device, local GPUs, or machines from TF_CONFIG."""
    if kind == "mirrored":
        return tf.distribute.MirroredStrategy()
    if kind == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def multi_worker(strategy):
    """Whether `strategy` spans several worker processes."""
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and (
        strategy.extended._in_multi_worker_mode()  # pylint: disable=protected-access
    )


def barrier(strategy):
    """Returns once every worker of `strategy` has called it (a tiny all-reduce)."""
    if multi_worker(strategy):
        one = strategy.run(tf.function(lambda: tf.constant(1.0)))
        strategy.reduce(tf.distribute.ReduceOp.SUM, one, axis=None).numpy()


@dataclasses.dataclass(frozen=True)
class WorkerRole:
    """Which process of a multi-worker run this is (TF_CONFIG's task), and whether it is
    the chief: the one process that writes the run.

    The chief is the task of type "chief" if the cluster has one, else worker 0; a run that
    is not multi-worker (or has no TF_CONFIG) is its own chief.
    """

    chief: bool = True
    task_type: str = None
    task_id: int = None

    @classmethod
    def from_tf_config(cls, kind, environ=None):
        """The role under ``--distribution=kind``; raises ValueError for a TF_CONFIG that
        is not JSON."""
        if kind != "multiworker":
            return cls()
        environ = os.environ if environ is None else environ
        try:
            tf_config = json.loads(environ.get("TF_CONFIG") or "{}")
        except ValueError as e:
            raise ValueError(f"--distribution=multiworker: TF_CONFIG is not JSON ({e})") from None
        cluster, task = tf_config.get("cluster") or {}, tf_config.get("task") or {}
        if not task:
            return cls()
        task_type, task_id = task.get("type"), int(task.get("index", 0))
        chief = task_type == "chief" or (task_type == "worker" and task_id == 0
                                         and "chief" not in cluster)
        return cls(chief, task_type, task_id)

    @property
    def name(self):
        return "the only worker" if self.task_type is None else \
            f"{self.task_type} {self.task_id}"
