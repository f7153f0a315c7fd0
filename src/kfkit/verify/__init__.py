"""The verification suite: run it (:mod:`.suite`), the helpers its steps call (:mod:`.jobs`),
and the Kubeflow pipeline that runs it (:mod:`.pipeline`)."""

from kfkit.verify.jobs import (
    JobPlan,
    JobRun,
    Settings,
    attach_metrics,
    cleanup_job,
    final_accuracy,
    final_loss,
    metrics_from_logs,
    plan_job,
    run_job,
    submit_job,
    wait_replicas_ended,
)
from kfkit.verify.suite import (
    TARGETS,
    NoScenariosError,
    Verification,
    find_suite_dir,
    tag_expression,
    verify,
)

__all__ = [
    "TARGETS",
    "JobPlan",
    "JobRun",
    "NoScenariosError",
    "Settings",
    "Verification",
    "attach_metrics",
    "cleanup_job",
    "final_accuracy",
    "final_loss",
    "find_suite_dir",
    "metrics_from_logs",
    "plan_job",
    "run_job",
    "submit_job",
    "tag_expression",
    "verify",
    "wait_replicas_ended",
]
