"""Steps of the verification suite (radish-bdd 0.18.4); the features are in features/.

Every step only says what the scenario wants and hands it to kfkit: jobs are
loaded, validated and run by kfkit's job model and backends (through the
helpers in ``kfkit.verify``), exactly as ``kfkit run`` would. A step never
builds a manifest or a command of its own.

The target comes from radish user data (``-u target=local|kubernetes``);
``kfkit verify`` passes it, together with the suite and work directories.
"""

from __future__ import annotations

from radish import after, before, given, then, when, world

from kfkit import verify
from kfkit.report import evidence
from kfkit.verify import interrupt, measure, platform


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


@given("the replicas run as podman containers of the job's images")
def given_container_runtime(step):
    from kfkit.verify import containers

    containers.prepare(step.context.plan.manifest, settings().backend().config.home)
    step.context.previous_runtime = containers.use_container_runtime()


@when("the job runs to completion within {seconds:d} seconds")
def when_job_runs(step, seconds):
    step.context.run = verify.run_job(settings(), step.context.plan, timeout=seconds)
    verify.attach_metrics(step, step.context.run)
    measure.attach_run(settings(), step, step.context.run)


@when("the job is started")
def when_job_started(step):
    verify.submit_job(settings(), step.context.plan)


@when("{victim} is killed once {watched} has logged {count:d} training steps")
def when_replica_killed(step, victim, watched, count):
    plan = step.context.plan
    verify.wait_for_log_lines(settings(), plan, watched, "Train Epoch", count, timeout=300)
    verify.kill_replica(settings(), plan, victim)
    measure.attach_kill(settings(), step, plan, victim, watched, count)


@then("the job succeeded")
def then_job_succeeded(step):
    run = step.context.run
    assert run.status.succeeded, f"{run.plan.name} did not succeed: {run.describe_failure()}"


@then("every replica ended within {seconds:d} seconds without failure")
def then_replicas_ended(step, seconds):
    statuses = measure.check_replicas_ended(settings(), step, step.context.run, seconds)
    failed = {kind: s.get("failed") for kind, s in statuses.items() if s.get("failed")}
    measure.check(step, step.context.run, "failed replicas", sum(failed.values()), "<=", 0)


@then("the job restarted a replica")
def then_restarted(step):
    measure.check_restarted(step, step.context.run)


@then("training resumed from a checkpoint")
def then_resumed(step):
    measure.check_resumed(step, step.context.run)


@then("every replica ended within {seconds:d} seconds")
def then_replicas_stopped(step, seconds):
    measure.check_replicas_ended(settings(), step, step.context.run, seconds)


@then("the test accuracy is at least {threshold:g}")
def then_accuracy(step, threshold):
    run = step.context.run
    measure.check(
        step, run, "test accuracy", measure.metric(run, "final_accuracy"), ">=", threshold
    )


@then("the validation loss is below {threshold:g}")
def then_loss(step, threshold):
    run = step.context.run
    loss = measure.metric(run, "final_loss")
    measure.check(step, run, "validation cross-entropy", loss, "<", threshold)


# --- the chart -----------------------------------------------------------------------------


@given('the chart setting "{assignment}"')
def given_chart_setting(step, assignment):
    step.context.__dict__.setdefault("chart_sets", []).append(assignment)


@when("the platform chart is rendered")
def when_chart_rendered(step):
    step.context.objects = platform.render_chart(step.context.__dict__.get("chart_sets", []))


@when("the platform chart is upgraded on the cluster")
def when_chart_upgraded(step):
    sets = step.context.__dict__.get("chart_sets", [])
    step.context.objects = platform.upgrade_chart(sets, settings().extra.get("kubeconfig"))


@then("every component container has these resources")
def then_component_resources(step):
    expected = platform.resources_from_table(step.table)
    found = platform.container_resources(step.context.objects)
    assert found, "the chart has no component containers"
    wrong = {where: got for where, got in found.items() if got != expected}
    assert not wrong, f"expected {expected} everywhere, but: {wrong}"


# --- notebooks and PodDefaults --------------------------------------------------------------


@given('the notebook "{manifest}"')
def given_notebook(step, manifest):
    step.context.notebook = manifest


@given('the PodDefaults in "{directory}"')
def given_poddefaults(step, directory):
    step.context.poddefaults = directory


@when("the notebook pod is admitted")
def when_notebook_admitted(step):
    context = step.context
    context.pod = platform.notebook_pod(settings(), context.notebook, context.poddefaults)


@when("the notebook is started on the cluster")
def when_notebook_started(step):
    context = step.context
    context.cluster_notebook, context.pod = platform.notebook_pod_on_cluster(
        settings(), context.notebook, context.poddefaults, timeout=600
    )


@then('its container has {name:w} set to "{value}"')
def then_env_value(step, name, value):
    env = platform.container_env(step.context.pod)
    assert env.get(name) == value, f"{name} is {env.get(name)!r}; the environment: {env}"


@then('its container has {name:w} from the secret "{secret}" key "{key}"')
def then_env_secret(step, name, secret, key):
    env = platform.container_env(step.context.pod)
    assert env.get(name) == f"secret:{secret}/{key}", f"{name}: {env.get(name)!r}"


@then('its container mounts "{path}"')
def then_mounts(step, path):
    mounts = platform.container_mounts(step.context.pod)
    assert path in mounts, f"{path} is not mounted; mounts: {mounts}"


# --- the container builder ------------------------------------------------------------------


@given('the build source "{source}"')
def given_build_source(step, source):
    step.context.build_source = source


@when('the image "{image}" is built without a cluster')
def when_built_locally(step, image):
    step.context.build = platform.build_image(
        settings(), step.context.build_source, image, on_cluster=False
    )


@when('the image named by the user data "{key}" is built on the cluster')
def when_built_on_cluster(step, key):
    image = platform.required_user_data(settings(), key)
    step.context.build = platform.build_image(
        settings(), step.context.build_source, image, on_cluster=True
    )


@then("the build context has a Dockerfile")
def then_build_context(step):
    context = step.context.build.context_path
    assert context is not None and (context / "Dockerfile").is_file(), f"no Dockerfile in {context}"


@then('the Kaniko Job builds "{image}" from that context')
def then_kaniko_job(step, image):
    build = step.context.build
    args = platform.kaniko_args(build.job_manifest)
    assert f"--destination={image}" in args, args
    assert any(
        a.startswith("--context=dir://") and a.endswith(build.context_path.name) for a in args
    )


@then("the build succeeded")
def then_build_succeeded(step):
    build = step.context.build
    assert build.succeeded and build.digest, f"build of {build.destination}: {build.message}"


# --- hooks ----------------------------------------------------------------------------------


@before.all
def handle_ctrl_c(features, marker):
    """Ctrl-C stops the running step and skips the rest, so radish still writes its report."""
    interrupt.install()


@before.each_step
def skip_after_interrupt(step):
    interrupt.skip_if_interrupted(step)


@before.each_scenario
def name_outline_rows(scenario):
    """Outline rows are named by their example values (``(workers=2, ...)``), not "row 1"."""
    evidence.name_example_row(scenario)


@after.each_step
def keep_failure_details(step):
    """A failed step keeps its exception type and traceback in the cucumber JSON."""
    evidence.attach_failure(step)


@after.each_scenario
def remove_jobs(scenario):
    """Delete the scenario's jobs (their logs and metrics stay in the report's work dir)."""
    for plan in scenario.context.__dict__.get("plans", []):
        verify.cleanup_job(settings(), plan)
    if scenario.context.__dict__.get("cluster_notebook"):
        platform.delete_notebook_on_cluster(settings(), scenario.context.cluster_notebook)
    if "previous_runtime" in scenario.context.__dict__:
        from kfkit.verify import containers

        containers.restore_runtime(scenario.context.previous_runtime)
