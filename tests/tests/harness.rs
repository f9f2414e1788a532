//! The harness itself, against the real engine: the test image runs busybox, containers carry
//! the scope label, and a failing test still leaves nothing behind.

use bollard::query_parameters::WaitContainerOptionsBuilder;
use ds01_tests::{ContainerRequest, TEST_LABEL, TESTBOX_IMAGE, TestScope};
use futures::StreamExt;

#[tokio::test]
async fn labelled_containers_run_the_local_busybox_image() {
    let scope = TestScope::new("harness-run").await;
    let sleeper = scope
        .container(ContainerRequest::sleeper("sleeper").label("ds01.user", "alice"))
        .await;
    let inspected = scope
        .docker
        .inspect_container(&sleeper, None)
        .await
        .expect("inspect");
    assert_eq!(inspected.state.and_then(|s| s.running), Some(true));
    let labels = inspected.config.and_then(|c| c.labels).unwrap_or_default();
    assert_eq!(labels.get(TEST_LABEL), Some(&scope.id));
    assert_eq!(labels.get("ds01.user").map(String::as_str), Some("alice"));

    // busybox applets work inside: the script exits with the status it computes.
    let script = "test -x /bin/httpd && test -d /workspace && grep -q alice /etc/passwd && exit 7";
    let job = scope
        .container(ContainerRequest::sleeper("job").shell(script))
        .await;
    let mut wait = scope
        .docker
        .wait_container(&job, Some(WaitContainerOptionsBuilder::new().build()));
    let status = match wait.next().await {
        Some(Ok(response)) => response.status_code,
        Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => code,
        other => panic!("waiting for {TESTBOX_IMAGE} job failed: {other:?}"),
    };
    assert_eq!(
        status, 7,
        "the busybox script did not run to its own exit status"
    );
}

#[tokio::test]
async fn a_failing_test_still_removes_everything_it_created() {
    let scope_id = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let recorded = scope_id.clone();
    // A "test" that creates containers and then fails, on its own thread and runtime.
    let outcome = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let scope = TestScope::new("harness-fail").await;
            *recorded.lock().expect("lock") = scope.id.clone();
            scope.container(ContainerRequest::sleeper("running")).await;
            scope
                .container(ContainerRequest::sleeper("created").created_only())
                .await;
            assert_eq!(scope.remaining().await.len(), 2);
            panic!("simulated test failure");
        });
    })
    .join();
    assert!(outcome.is_err(), "the simulated test should have failed");

    let checker = TestScope::new("harness-check").await;
    let failed_scope = scope_id.lock().expect("lock").clone();
    assert!(!failed_scope.is_empty());
    let filters = std::collections::HashMap::from([(
        "label".to_owned(),
        vec![format!("{TEST_LABEL}={failed_scope}")],
    )]);
    let options = bollard::query_parameters::ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    let left = checker
        .docker
        .list_containers(Some(options))
        .await
        .expect("list");
    assert!(
        left.is_empty(),
        "containers left behind by a failed test: {left:?}"
    );
}
