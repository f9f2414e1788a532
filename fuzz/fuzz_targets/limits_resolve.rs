//! Fuzz target: the limits resolver on any valid `ContainerLifecyclePolicy` the fuzzer finds,
//! for any user, origin and time: no panic, the same inputs give the same limits, and a
//! user's own `idleTimeout` always wins (unless an exemption in force lifts it) and names
//! `users.<name>` as its source.
//!
//! Input layout: `user \n origin \n seconds \n` followed by the policy YAML.
#![no_main]

use std::collections::HashMap;

use ds01_spec::{
    Source, SpecBody, parse_sources,
    resolve::{self, LimitSource, Subject},
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = text.splitn(4, '\n');
    let (Some(user), Some(origin), Some(seconds), Some(policy)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return;
    };
    let Ok(parsed) = parse_sources(&[Source {
        name: "fuzz.yaml".to_owned(),
        text: policy.to_owned(),
    }]) else {
        return;
    };
    let now = seconds
        .trim()
        .parse::<i64>()
        .ok()
        .and_then(|seconds| jiff::Timestamp::from_second(seconds).ok())
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    // Group members from `membersFile`: give every group the fuzzed user, to reach that path.
    for resource in parsed {
        let SpecBody::ContainerLifecyclePolicy(policy) = &resource.resource.spec else {
            continue;
        };
        let file_members: HashMap<String, Vec<String>> = policy
            .groups
            .keys()
            .map(|group| (group.clone(), vec![user.to_owned()]))
            .collect();
        for members in [HashMap::new(), file_members] {
            let subject = || Subject { user, origin };
            let first = resolve::resolve(policy, subject(), &members, now);
            let second = resolve::resolve(policy, subject(), &members, now);
            assert_eq!(first, second, "resolution is a function of its inputs");
            let own = policy
                .users
                .get(user)
                .and_then(|limits| limits.idle_timeout.as_ref());
            if own.is_some() && user != resolve::UNKNOWN_OWNER {
                // Only an exemption in force may lift it (and then says so).
                let source = &first.idle_timeout.source;
                assert!(
                    matches!(source, LimitSource::User(name) if name == user)
                        || matches!(source, LimitSource::Exemption(_)),
                    "a user's own idleTimeout names users.<name>, not {source:?}"
                );
            }
        }
    }
});
