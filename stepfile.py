"""Steps of the verification suite (radish-bdd 0.18.4); the features are in features/.

Every step only says what the scenario wants and hands it to kfkit: jobs are
loaded, validated and run by kfkit's job model and backends (through the
helpers in ``kfkit.verify``), exactly as ``kfkit run`` would. A step never
builds a manifest or a command of its own.

The target comes from radish user data (``-u target=local|kubernetes``);
``kfkit verify`` passes it, together with the suite and work directories.
"""

from __future__ import annotations

from radish import after, given, then, when, world

from kfkit import verify


def settings() -> verify.Settings:
    return verify.Settings.from_user_data(getattr(world.config, "user_data", None))


def _remember(step, plan: verify.JobPlan) -> verify.JobPlan:
    """Keep every planned job of the scenario, so the hook below can remove it."""
    step.context.plan = plan
    step.context.__dict__.setdefault("plans", []).append(plan)
    return plan


# --- jobs -----------------------------------------------------------------------------------


@given('the job "{manifest}"')
def given_job(step, manifest):
    _remember(step, verify.plan_job(settings(), manifest))


@given('the training job "{manifest}"')
def given_training_job(step, manifest):
    _remember(step, verify.plan_job(settings(), manifest, trainer=True))


@given("the job has {count:d} {replica_type:w} replicas")
def given_replicas(step, count, replica_type):
    step.context.plan.set_replicas(replica_type, count)


@given('the trainer arguments "{arguments}"')
def given_trainer_arguments(step, arguments):
    step.context.plan.add_args(arguments)


@given('the run policy {policy_field:w} is "{value}"')
def given_run_policy(step, policy_field, value):
    step.context.plan.set_run_policy(policy_field, value)


@when("the job runs to completion within {seconds:d} seconds")
def when_job_runs(step, seconds):
    step.context.run = verify.run_job(settings(), step.context.plan, timeout=seconds)
    verify.attach_metrics(step, step.context.run)


@then("the job succeeded")
def then_job_succeeded(step):
    run = step.context.run
    assert run.status.succeeded, f"{run.plan.name} did not succeed: {run.describe_failure()}"


@then("every replica ended within {seconds:d} seconds without failure")
def then_replicas_ended(step, seconds):
    statuses = verify.wait_replicas_ended(settings(), step.context.run, timeout=seconds)
    failed = {kind: s.get("failed") for kind, s in statuses.items() if s.get("failed")}
    assert not failed, f"failed replicas: {failed}"


@then("the test accuracy is at least {threshold:g}")
def then_accuracy(step, threshold):
    accuracy = verify.final_accuracy(step.context.run)
    assert accuracy >= threshold, f"test accuracy {accuracy:.4f} is below {threshold}"


@then("the validation loss is below {threshold:g}")
def then_loss(step, threshold):
    loss = verify.final_loss(step.context.run)
    assert loss < threshold, f"validation cross-entropy {loss:.4f} is not below {threshold}"


# --- hooks ----------------------------------------------------------------------------------


@after.each_scenario
def remove_jobs(scenario):
    """Delete the scenario's jobs (their logs and metrics stay in the report's work dir)."""
    for plan in scenario.context.__dict__.get("plans", []):
        verify.cleanup_job(settings(), plan)
