use std::collections::BTreeMap;

use ds01_host::{ContainerState, GpuAccess, Mount};

use super::*;

type Labels = &'static [(&'static str, &'static str)];

fn container(name: &str, labels: &[(&str, &str)], mounts: &[&str]) -> ContainerInfo {
    ContainerInfo {
        id: "a".repeat(64),
        name: name.to_owned(),
        image: "img".to_owned(),
        labels: labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<BTreeMap<_, _>>(),
        state: ContainerState::Running,
        pid: Some(1),
        created_at: None,
        started_at: None,
        finished_at: None,
        exit_code: None,
        user: None,
        mounts: mounts
            .iter()
            .map(|source| Mount {
                source: (*source).to_owned(),
                destination: "/w".to_owned(),
                kind: "bind".to_owned(),
            })
            .collect(),
        gpu: GpuAccess::default(),
        cgroup_parent: None,
    }
}

#[test]
fn origin_follows_the_documented_order() {
    let cases: [(&str, Labels, &str); 9] = [
        (
            "jobs-1",
            &[("ds01.interface", "api"), ("ds01.managed", "true")],
            "api",
        ),
        (
            "x",
            &[("ds01.container_type", "orchestration")],
            "orchestration",
        ),
        (
            "x",
            &[
                ("devcontainer.local_folder", "/home/a/p"),
                ("ds01.managed", "true"),
            ],
            "devcontainer",
        ),
        ("vsc-project-abc", &[], "devcontainer"),
        (
            "x",
            &[
                ("com.docker.compose.project", "p"),
                ("ds01.managed", "true"),
            ],
            "compose",
        ),
        ("x", &[("ds01.monitoring", "true")], "infrastructure"),
        ("x", &[("ds01.managed", "true")], "ds01-managed"),
        ("x", &[("ds01.managed", "false")], "docker"),
        ("x", &[], "docker"),
    ];
    for (name, labels, expected) in cases {
        assert_eq!(
            origin(&container(name, labels, &[])),
            expected,
            "{name} {labels:?}"
        );
        let named = labels
            .iter()
            .any(|(key, _)| ["ds01.interface", "ds01.container_type"].contains(key));
        assert!(
            named || BUILT_IN_ORIGINS.contains(&expected),
            "{expected} is not in BUILT_IN_ORIGINS"
        );
    }
}

#[test]
fn owner_follows_the_documented_chain() {
    let names = |uid: u32| format!("user{uid}");
    type Case = (
        &'static str,
        Labels,
        &'static [&'static str],
        Option<u32>,
        &'static str,
        &'static str,
    );
    let cases: [Case; 8] = [
        (
            "x",
            &[("ds01.user", "alice"), ("aime.mlc.USER", "bob")],
            &[],
            Some(0),
            "alice",
            "label:ds01.user",
        ),
        (
            "x",
            &[("aime.mlc.USER", "bob")],
            &[],
            None,
            "bob",
            "label:aime.mlc.USER",
        ),
        (
            "train._.1001",
            &[],
            &["/home/carol/x"],
            None,
            "user1001",
            "name-suffix",
        ),
        (
            "x",
            &[("devcontainer.local_folder", "/home/dave/proj")],
            &[],
            None,
            "dave",
            "devcontainer-folder",
        ),
        (
            "x",
            &[],
            &["/data/shared", "/home/erin/work"],
            Some(0),
            "erin",
            "bind-mount",
        ),
        ("x", &[], &[], Some(1002), "user1002", "init-process"),
        ("x", &[], &[], Some(0), "unknown", "none"),
        ("x", &[], &["/var/lib/x"], None, "unknown", "none"),
    ];
    for (name, labels, mounts, uid, user, source) in cases {
        let found = owner(&container(name, labels, mounts), uid, names);
        assert_eq!(
            (found.user.as_str(), found.source),
            (user, source),
            "{name} {labels:?} {mounts:?}"
        );
    }
}

#[test]
fn kernel_evidence_beats_an_owner_label_and_the_conflict_is_kept() {
    let names = |uid: u32| {
        if uid == 1001 {
            "bob".to_owned()
        } else {
            format!("user{uid}")
        }
    };
    let labelled = |parent: Option<&str>| {
        let mut info = container("x", &[("ds01.user", "alice")], &[]);
        info.cgroup_parent = parent.map(str::to_owned);
        info
    };
    // The init process runs as another (non-root) user: the uid wins.
    let by_uid = owner(&labelled(None), Some(1001), names);
    assert_eq!(
        (by_uid.user.as_str(), by_uid.source),
        ("bob", "init-process")
    );
    // The kernel vouches for an owner only through a non-root init process.
    assert!(by_uid.verified);
    let conflict = by_uid.conflict.expect("a conflict");
    assert_eq!(
        (
            conflict.claimed.as_str(),
            conflict.claimed_by,
            conflict.observed.as_str()
        ),
        ("alice", "label:ds01.user", "uid 1001")
    );
    // A per-user slice naming someone else: the slice wins (init runs as root).
    let by_slice = owner(&labelled(Some("ds01-student-carol.slice")), Some(0), names);
    assert_eq!(
        (by_slice.user.as_str(), by_slice.source),
        ("carol", "cgroup-parent")
    );
    assert!(
        !by_slice.verified,
        "root init: the slice is evidence, not proof"
    );
    assert_eq!(
        by_slice.conflict.map(|conflict| conflict.observed),
        Some("cgroup parent ds01-student-carol.slice".to_owned())
    );
    // Agreeing evidence (the slice holds the sanitized name) and no evidence: no conflict.
    for (parent, uid, label) in [
        (Some("ds01-student-alice.slice"), Some(0), "alice"),
        (
            Some("/ds01.slice/ds01-researcher-jane-doe.slice"),
            None,
            "jane.doe",
        ),
        (Some("ds01.slice"), None, "alice"),
        (None, Some(0), "alice"),
        (None, None, "alice"),
    ] {
        let mut info = container("x", &[("ds01.user", label)], &[]);
        info.cgroup_parent = parent.map(str::to_owned);
        let found = owner(&info, uid, names);
        assert_eq!(
            (found.user.as_str(), found.source, found.conflict),
            (label, "label:ds01.user", None),
            "{parent:?}"
        );
    }
    // Without a label there is nothing to contradict.
    let unlabelled = owner(&container("x", &[], &[]), Some(1001), names);
    assert_eq!(unlabelled.conflict, None);
}

#[test]
fn per_user_slices_name_their_user() {
    assert_eq!(slice_user("ds01-student-alice.slice"), Some("alice"));
    assert_eq!(
        slice_user("/ds01.slice/ds01-student.slice/ds01-student-jane-doe.slice"),
        Some("jane-doe")
    );
    for parent in [
        "ds01.slice",
        "ds01-student.slice",
        "/docker",
        "user-1000.slice",
        "",
    ] {
        assert_eq!(slice_user(parent), None, "{parent}");
    }
    assert_eq!(slice_form("jane.doe@lab.org"), "jane-doe-at-lab-org");
}
