//! The ContainerLifecyclePolicy controller on real containers with limits of seconds. Each test
//! gives its limits to a user name of its own, so it only ever acts on its own containers.

use std::time::{Duration, Instant};

use ds01_tests::{
    ContainerRequest, Daemon, DaemonOptions, TestScope,
    lifecycle_fixtures::{
        WAIT, alerts_dir, apply, at, events_for, gone, issued, policy, started, with_alerts,
    },
};

#[tokio::test]
async fn an_idle_gpu_container_is_warned_twice_then_stopped_and_removed_at_its_timeout() {
    let scope = TestScope::new("life-idle").await;
    let user = format!("idle{}", std::process::id());
    let alerts = alerts_dir();
    let daemon = started();
    apply(
        &daemon,
        &policy(
            alerts.path(),
            &user,
            "idleTimeout: 6s, onIdle: stopAndRemove, warnAt: {idle: [50, 75]}",
            "",
        ),
    );
    let id = scope
        .container(with_alerts(
            ContainerRequest::sleeper("idle").label("ds01.user", &user),
            &alerts,
        ))
        .await;
    let stop = daemon.wait_for_event(WAIT, "lifecycle.idle_stop", |event| {
        event["event_type"] == "lifecycle.idle_stop" && event["details"]["container_id"] == id[..12]
    });
    let warnings = events_for(&daemon, &id, "lifecycle.idle_warning");
    assert_eq!(warnings.len(), 2, "{warnings:#?}");
    assert_eq!(
        (
            warnings[0]["details"]["percent"].as_u64(),
            warnings[1]["details"]["percent"].as_u64()
        ),
        (Some(50), Some(75))
    );
    // The first warning came at 50% of the timeout: the episode began 3 s before it.
    let episode_start = at(&warnings[0])
        .checked_sub(jiff::SignedDuration::from_secs(3))
        .expect("time");
    let late = issued(&stop).duration_since(episode_start).as_secs_f64() - 6.0;
    assert!(late.abs() <= 1.0, "stopped {late:.2}s off the idle timeout");
    assert_eq!(stop["details"]["outcome"], "stopped and removed");
    assert_eq!(stop["details"]["source"], format!("users.{user}"));
    let alert_file =
        std::fs::read_to_string(alerts.path().join("ds01-alerts")).expect("alert file written");
    let lines: Vec<&str> = alert_file.lines().collect();
    assert_eq!(
        lines.len(),
        3,
        "two warnings and the notice of the stop: {alert_file}"
    );
    assert!(
        lines[..2]
            .iter()
            .all(|line| line.contains("will be stopped and removed")
                && line.contains(&format!("users.{user}"))
                && line.contains("keep-alive")),
        "{alert_file}"
    );
    assert!(
        lines[2].contains("was stopped and removed") && lines[2].contains("idle"),
        "{alert_file}"
    );
    let started = Instant::now();
    while !gone(&scope, &id).await {
        assert!(started.elapsed() < WAIT, "not removed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn busy_cpu_network_kept_alive_and_protected_containers_are_not_stopped() {
    let scope = TestScope::new("life-busy").await;
    let user = format!("busy{}", std::process::id());
    let alerts = alerts_dir();
    let workspace = tempfile::tempdir().expect("workspace");
    std::fs::write(workspace.path().join(".keep-alive"), "").expect("keep-alive");
    let daemon = started();
    apply(
        &daemon,
        &policy(
            alerts.path(),
            &user,
            // cpuBelow 50: the traffic container's own CPU use is not what keeps it active.
            "idleTimeout: 3s, onIdle: stopAndRemove, idle: {cpuBelow: 50}",
            "  protectedLabels: [\"ds01.protected=true\"]\n",
        ),
    );
    // About 2.6 MB/s in and out over the bridge: above networkBelow (1MiB per 1 s interval).
    let chatty = scope
        .container(ContainerRequest::sleeper("chatty").label("ds01.user", &user).shell(
            "while :; do ping -c 100 -s 65000 -i 0.05 172.17.0.1 >/dev/null 2>&1 || sleep 0.1; done",
        ))
        .await;
    let busy = scope
        .container(
            ContainerRequest::sleeper("busy")
                .label("ds01.user", &user)
                .shell("while :; do :; done"),
        )
        .await;
    let mut kept = ContainerRequest::sleeper("kept").label("ds01.user", &user);
    kept.binds
        .push(format!("{}:/workspace", workspace.path().display()));
    let kept = scope.container(kept).await;
    let protected = scope
        .container(
            ContainerRequest::sleeper("protected")
                .label("ds01.user", &user)
                .label("ds01.protected", "true"),
        )
        .await;
    let idle = scope
        .container(with_alerts(
            ContainerRequest::sleeper("control").label("ds01.user", &user),
            &alerts,
        ))
        .await;
    daemon.wait_for_event(WAIT, "the control container's stop", |event| {
        event["event_type"] == "lifecycle.idle_stop"
            && event["details"]["container_id"] == idle[..12]
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    for (id, what) in [
        (&busy, "busy"),
        (&chatty, "network-active"),
        (&kept, "kept alive"),
        (&protected, "protected"),
    ] {
        assert_eq!(
            scope.running(id).await,
            Some(true),
            "the {what} container was stopped"
        );
        assert!(
            events_for(&daemon, id, "lifecycle.idle_stop").is_empty(),
            "{what}"
        );
    }
}

#[tokio::test]
async fn max_runtime_stops_at_the_deadline() {
    let scope = TestScope::new("life-runtime").await;
    let user = format!("runtime{}", std::process::id());
    let alerts = alerts_dir();
    let daemon = started();
    apply(
        &daemon,
        &policy(
            alerts.path(),
            &user,
            "maxRuntime: 5s, warnAt: {runtime: [60]}",
            "",
        ),
    );
    let id = scope
        .container(with_alerts(
            ContainerRequest::sleeper("long")
                .label("ds01.user", &user)
                .shell("while :; do :; done"),
            &alerts,
        ))
        .await;
    let stop = daemon.wait_for_event(WAIT, "lifecycle.runtime_stop", |event| {
        event["event_type"] == "lifecycle.runtime_stop"
            && event["details"]["container_id"] == id[..12]
    });
    let started_at: jiff::Timestamp = scope
        .docker
        .inspect_container(&id, None)
        .await
        .expect("inspect")
        .state
        .and_then(|state| state.started_at)
        .and_then(|text| text.parse().ok())
        .expect("started");
    let late = issued(&stop).duration_since(started_at).as_secs_f64() - 5.0;
    assert!(
        late.abs() <= 1.0,
        "runtime stop {late:.2}s off the deadline"
    );
    assert_eq!(
        events_for(&daemon, &id, "lifecycle.runtime_warning").len(),
        1
    );
    let state = scope
        .docker
        .inspect_container(&id, None)
        .await
        .expect("a runtime stop does not remove")
        .state;
    assert_eq!(state.and_then(|state| state.running), Some(false));
}

#[tokio::test]
async fn exited_and_never_started_containers_are_removed_after_their_holds() {
    let scope = TestScope::new("life-cleanup").await;
    let user = format!("cleanup{}", std::process::id());
    let alerts = alerts_dir();
    let daemon = started();
    apply(
        &daemon,
        &policy(
            alerts.path(),
            &user,
            "removeAfterStop: 2s, createdTimeout: 3s",
            "",
        ),
    );
    let exited = scope
        .container(
            ContainerRequest::sleeper("exits")
                .label("ds01.user", &user)
                .shell("exit 0"),
        )
        .await;
    let created = scope
        .container(
            ContainerRequest::sleeper("never")
                .label("ds01.user", &user)
                .created_only(),
        )
        .await;
    for (id, reason) in [(&exited, "removeAfterStop"), (&created, "createdTimeout")] {
        let removed = daemon.wait_for_event(WAIT, reason, |event| {
            event["event_type"] == "lifecycle.removed"
                && event["details"]["container_id"] == id[..12]
        });
        assert_eq!(removed["details"]["reason"], reason);
        assert!(gone(&scope, id).await, "{reason}: still there");
    }
}

#[tokio::test]
async fn a_killed_controller_keeps_the_idle_deadline_and_repeats_no_warning() {
    let scope = TestScope::new("life-restart").await;
    let user = format!("restart{}", std::process::id());
    let alerts = alerts_dir();
    let mut daemon = started();
    apply(
        &daemon,
        &policy(
            alerts.path(),
            &user,
            "idleTimeout: 8s, onIdle: stop, warnAt: {idle: [25]}",
            "",
        ),
    );
    let id = scope
        .container(with_alerts(
            ContainerRequest::sleeper("idle").label("ds01.user", &user),
            &alerts,
        ))
        .await;
    let warning = daemon.wait_for_event(WAIT, "the idle warning", |event| {
        event["event_type"] == "lifecycle.idle_warning"
            && event["details"]["container_id"] == id[..12]
    });
    let _ = daemon.child.kill();
    let _ = daemon.child.wait();
    let directory = daemon.stop_keeping_state();
    let daemon = Daemon::start_in(directory, DaemonOptions::default());
    daemon.wait_for_socket(WAIT);
    let stop = daemon.wait_for_event(WAIT, "the idle stop after the restart", |event| {
        event["event_type"] == "lifecycle.idle_stop" && event["details"]["container_id"] == id[..12]
    });
    // The warning was at 25% (2 s into the episode): the stop belongs 6 s after it.
    let late = issued(&stop).duration_since(at(&warning)).as_secs_f64() - 6.0;
    assert!(
        late.abs() <= 1.0,
        "the stop moved {late:.2}s after the restart"
    );
    assert_eq!(
        events_for(&daemon, &id, "lifecycle.idle_warning").len(),
        1,
        "a warning was repeated"
    );
}

#[tokio::test]
async fn dry_run_stops_nothing_and_says_what_it_would_do() {
    let scope = TestScope::new("life-dry").await;
    let user = format!("dry{}", std::process::id());
    let alerts = alerts_dir();
    let daemon = started();
    apply(
        &daemon,
        &policy(
            alerts.path(),
            &user,
            "idleTimeout: 2s, onIdle: stopAndRemove",
            "  mode: dryRun\n",
        ),
    );
    let id = scope
        .container(with_alerts(
            ContainerRequest::sleeper("idle").label("ds01.user", &user),
            &alerts,
        ))
        .await;
    let would = daemon.wait_for_event(WAIT, "a dry-run stop", |event| {
        event["event_type"] == "lifecycle.idle_stop" && event["details"]["container_id"] == id[..12]
    });
    assert_eq!(would["details"]["dry_run"], true);
    let running = scope
        .docker
        .inspect_container(&id, None)
        .await
        .expect("exists")
        .state
        .and_then(|state| state.running);
    assert_eq!(running, Some(true));
    assert!(
        !alerts.path().join("ds01-alerts").exists(),
        "dry run notified the user"
    );
}

#[tokio::test]
async fn busy_gpus_exempt_users_and_out_of_scope_containers_are_untouched_but_label_impostors_are_not()
 {
    // GPUs are granted as the toolkit grants them (`--gpus`), which needs the lab's engine.
    let engine = ds01_tests::private_engine::PrivateEngine::start_lab("life-gpu").await;
    let scope = TestScope::on(engine.docker(), "life-gpu").await;
    let user = format!("gpu{}", std::process::id());
    // The exempt user is a real account and the container runs as its uid (the owner the
    // kernel vouches for, shown as verified).
    let account = ds01_tests::accounts::TestAccount::create("lucky").expect("useradd (needs root)");
    let lucky = account.user.clone();
    let alerts = alerts_dir();
    let nvml = "gpus:\n  - uuid: GPU-55555555-0000-4000-8000-000000000000\n    name: A100\n    utilizationGpu: 80\n  - uuid: GPU-55555555-0000-4000-8000-000000000001\n    name: A100\n    utilizationGpu: 0\n";
    let daemon = Daemon::start(DaemonOptions {
        docker_host: Some(engine.host()),
        nvml_state: Some(nvml.to_owned()),
        ..DaemonOptions::default()
    });
    daemon.wait_for_socket(WAIT);
    let path = alerts.path().join("lifecycle.yaml");
    std::fs::write(
        &path,
        format!(
            "apiVersion: ds01.io/v1alpha1\nkind: ContainerLifecyclePolicy\nmetadata: {{name: lab}}\nspec:\n  sampleInterval: 1s\n  scope: gpu\n  defaults: {{idleTimeout: null, maxRuntime: null, removeAfterStop: null, gpuHoldAfterStop: null, createdTimeout: null}}\n  users:\n    {user}: {{startupGrace: 0s, stopGracePeriod: 1s, idleTimeout: 3s, onIdle: stop}}\n    {lucky}: {{startupGrace: 0s, stopGracePeriod: 1s, idleTimeout: 3s}}\n  exemptions:\n    - {{user: {lucky}, exemptFrom: [idle], reason: deadline week}}\n  notify: {{tty: false, containerFile: /alerts/ds01-alerts}}\n"
        ),
    )
    .expect("policy");
    let path = path.display().to_string();
    apply(&daemon, &path);
    let gpu_label = |uuid: &str, name: &str, owner: &str| {
        with_alerts(
            ContainerRequest::sleeper(name)
                .label("ds01.user", owner)
                .gpus(0, &[uuid]),
            &alerts,
        )
    };
    let busy = scope
        .container(gpu_label(
            "GPU-55555555-0000-4000-8000-000000000000",
            "busy-gpu",
            &user,
        ))
        .await;
    let exempt = scope
        .container(
            gpu_label("GPU-55555555-0000-4000-8000-000000000001", "exempt", &lucky)
                .run_as(account.uid()),
        )
        .await;
    let no_gpu = scope
        .container(ContainerRequest::sleeper("no-gpu").label("ds01.user", &user))
        .await;
    // The controller's label on a user's container does not make it the controller's own.
    let impostor = scope
        .container(
            gpu_label(
                "GPU-55555555-0000-4000-8000-000000000001",
                "impostor",
                &user,
            )
            .label("ds01.managed_by", "ds01-controller"),
        )
        .await;
    let idle = scope
        .container(gpu_label(
            "GPU-55555555-0000-4000-8000-000000000001",
            "idle-gpu",
            &user,
        ))
        .await;
    daemon.wait_for_event(WAIT, "the idle GPU container's stop", |event| {
        event["event_type"] == "lifecycle.idle_stop"
            && event["details"]["container_id"] == idle[..12]
    });
    daemon.wait_for_event(WAIT, "the impostor's stop", |event| {
        event["event_type"] == "lifecycle.idle_stop"
            && event["details"]["container_id"] == impostor[..12]
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    for (id, what) in [
        (&busy, "busy GPU"),
        (&exempt, "exempt"),
        (&no_gpu, "out of scope"),
    ] {
        let running = scope
            .docker
            .inspect_container(id, None)
            .await
            .expect("exists")
            .state
            .and_then(|state| state.running);
        assert_eq!(running, Some(true), "the {what} container was stopped");
    }
    assert_eq!(
        events_for(&daemon, &exempt, "lifecycle.exempt").len(),
        1,
        "lifecycle.exempt once"
    );
}
