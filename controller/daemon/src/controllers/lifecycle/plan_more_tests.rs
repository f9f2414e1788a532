//! More lifecycle planner cases: untouchable containers and exemptions, the high-demand
//! factor, unknown signals holding an episode.

use super::{
    super::plan::{Memory, Sample, Step, plan},
    tests::{at, limits, quiet, run, running},
};

#[test]
fn untouchable_containers_get_nothing_and_exemptions_are_reported_once() {
    let mut protected = running(false);
    protected.untouchable = Some("label ds01.protected=true".into());
    assert!(run(&protected, &limits(Some(10), Some(10)), |_| quiet(), 0, 100).is_empty());
    let mut exempt = limits(None, None);
    exempt.exemptions.push(ds01_spec::Exemption {
        user: "rita".into(),
        exempt_from: vec![ds01_spec::ExemptFrom::Idle],
        reason: "thesis".into(),
        expires: None,
    });
    let steps = run(&running(false), &exempt, |_| quiet(), 0, 50);
    assert_eq!(steps, [(0, Step::ReportExempt)]);
}

#[test]
fn high_demand_shortens_the_idle_timeout() {
    let limits = limits(Some(100), None);
    let mut memory = Memory::default();
    let mut stopped_at = None;
    for second in 0..=60 {
        let plan = plan(&running(false), &limits, &quiet(), &memory, 0.5, at(second));
        if plan
            .steps
            .iter()
            .any(|step| matches!(step, Step::Stop { .. }))
        {
            stopped_at = Some(second);
            break;
        }
        memory = plan.memory;
    }
    assert_eq!(stopped_at, Some(50));
}

#[test]
fn unknown_signals_hold_an_episode_without_ending_or_advancing_it() {
    let limits = limits(Some(100), None);
    let first = plan(
        &running(false),
        &limits,
        &quiet(),
        &Memory::default(),
        1.0,
        at(10),
    );
    assert_eq!(first.memory.idle_since, Some(at(10)));
    // After a controller restart the counters are unknown for one sample.
    let unknown = Sample {
        cpu: None,
        network: None,
        ..quiet()
    };
    let held = plan(
        &running(false),
        &limits,
        &unknown,
        &first.memory,
        1.0,
        at(200),
    );
    assert!(
        held.steps.is_empty(),
        "no action on missing data, even past the deadline"
    );
    assert_eq!(held.memory.idle_since, Some(at(10)), "the episode is kept");
    let resumed = plan(
        &running(false),
        &limits,
        &quiet(),
        &held.memory,
        1.0,
        at(201),
    );
    assert!(
        resumed
            .steps
            .iter()
            .any(|step| matches!(step, Step::Stop { .. }))
    );
}
