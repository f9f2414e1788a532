//! `POST /v1/apply`, `DELETE /v1/specs/{kind}/{name}`, `GET /v1/specs`. A dry run parses on a
//! blocking thread, holds the spec store only to compare, and for a lifecycle policy previews
//! what it would do: `membersFile`s are read (regular files only, size-capped, off the async
//! workers) for admins and never read for anyone else.

use std::{collections::HashMap, sync::Arc, time::Duration};

use axum::{
    Json,
    body::Bytes,
    extract::{ConnectInfo, Path, State, rejection::BytesRejection},
    http::StatusCode,
};
use ds01_host::safe_read::{self, SafeReadError};
use ds01_spec::{
    ContainerLifecyclePolicySpec, Diagnostic, Kind, ParsedResource, Source, SpecBody,
    api::{ApplyRequest, ApplyResponse, ApplyResult},
};
use serde_json::{Value, json};

use super::{
    ApiState, Peer,
    failure::{Failure, body_bytes, forbidden},
    gate::{Gate, Pass},
};
use crate::spec_store::{ApplyOutcome, SpecStoreError};
use ds01_spec::EventType;

/// Dry runs by non-admins: one per user, two users at once (parsing and previewing a spec set
/// costs memory in proportion to it). Admins' are not counted.
static NON_ADMIN_DRY_RUNS: Gate = Gate::new(2);
/// How long a non-admin dry run waits for its turn.
const DRY_RUN_WAIT: Duration = Duration::from_secs(5);

/// Largest `membersFile` a preview reads.
pub const MAX_MEMBERS_FILE_BYTES: u64 = 1 << 20;
/// How long a preview waits for the file system to answer about one `membersFile`.
const MEMBERS_FILE_TIMEOUT: Duration = Duration::from_secs(2);

fn invalid(error: SpecStoreError) -> Failure {
    match error {
        SpecStoreError::Invalid(diagnostics) => Failure::invalid(diagnostics.0),
        other => Failure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            crate::inventory::docker_watch::error_chain(&other),
        ),
    }
}

/// `POST /v1/apply`.
pub async fn apply(
    State(state): State<Arc<ApiState>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<ApplyResponse>, Failure> {
    let body = body_bytes(body)?;
    let turn = if peer.admin {
        None
    } else {
        Some(
            NON_ADMIN_DRY_RUNS
                .enter(peer.uid, DRY_RUN_WAIT)
                .await
                .ok_or_else(|| {
                    Failure::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "busy",
                        format!(
                            "a dry run of this user's is running already, or {} other users' are; \
                             retry shortly",
                            NON_ADMIN_DRY_RUNS.permits()
                        ),
                    )
                })?,
        )
    };
    let request: ApplyRequest = serde_json::from_slice(&body).map_err(|error| {
        Failure::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("the body is not an apply request: {error}"),
        )
    })?;
    drop(body);
    if !request.dry_run && !peer.admin {
        return Err(forbidden(&peer, &state.admin));
    }
    let sources: Vec<Source> = request
        .files
        .into_iter()
        .map(|file| Source {
            name: file.name,
            text: file.text,
        })
        .collect();
    if request.dry_run {
        return dry_run(&state, &peer, sources, turn).await.map(Json);
    }
    let (outcomes, generations) = {
        let mut store = state.store.lock().await;
        // The store writes (and fsyncs) every changed file under its lock, all or nothing;
        // off the async workers.
        let outcomes =
            tokio::task::block_in_place(|| store.apply(&sources, jiff::Timestamp::now()))
                .map_err(invalid)?;
        let generations: Vec<u64> = outcomes
            .iter()
            .map(|(reference, _)| current_generation(&store, reference))
            .collect();
        (outcomes, generations)
    };
    let mut results = Vec::new();
    for ((reference, outcome), generation) in outcomes.into_iter().zip(generations) {
        if outcome != ApplyOutcome::Unchanged {
            if let Some((kind, name)) = split_reference(&reference) {
                (state.notify)(kind, name);
            }
            state.recorder.emit(
                EventType::SpecApplied,
                Some(&peer.name),
                json!({ "resource": reference, "outcome": outcome, "generation": generation }),
            );
        }
        results.push(result(reference, outcome, generation));
    }
    Ok(Json(ApplyResponse {
        results,
        dry_run: false,
        preview: Vec::new(),
        preview_notes: Vec::new(),
    }))
}

fn split_reference(reference: &str) -> Option<(Kind, &str)> {
    reference
        .split_once('/')
        .and_then(|(kind, name)| Some((kind.parse::<Kind>().ok()?, name)))
}

fn current_generation(store: &crate::spec_store::SpecStore, reference: &str) -> u64 {
    split_reference(reference)
        .and_then(|(kind, name)| store.get(kind, name))
        .map_or(0, |spec| spec.generation)
}

fn result(resource: String, outcome: ApplyOutcome, generation: u64) -> ApplyResult {
    let outcome = serde_json::to_value(outcome)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_default();
    ApplyResult {
        resource,
        outcome,
        generation,
    }
}

/// A dry run; `turn` (a non-admin's place at the gate) is held by the parse itself, which
/// goes on if the client hangs up, and then by the preview.
async fn dry_run(
    state: &ApiState,
    peer: &Peer,
    sources: Vec<Source>,
    turn: Option<Pass>,
) -> Result<ApplyResponse, Failure> {
    let (parsed, _turn) =
        tokio::task::spawn_blocking(move || (ds01_spec::parse_sources(&sources), turn))
            .await
            .map_err(|_| {
                Failure::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "the parser failed",
                )
            })?;
    let parsed = parsed.map_err(|diagnostics| Failure::invalid(diagnostics.0))?;
    let planned: Vec<(ParsedResource, ApplyOutcome, u64)> = {
        let store = state.store.lock().await;
        store
            .outcomes(parsed)
            .into_iter()
            .map(|(item, outcome)| {
                let current = current_generation(&store, &item.resource.reference());
                (item, outcome, current)
            })
            .collect()
    };
    let mut preview = Vec::new();
    let mut notes = Vec::new();
    let inventory = state
        .inventory
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    for (item, _, _) in &planned {
        if let SpecBody::ContainerLifecyclePolicy(spec) = &item.resource.spec {
            let members = members_for_preview(item, spec, peer.admin, &mut notes).await?;
            let membership = crate::controllers::lifecycle::members::Membership {
                by_group: members,
                ..Default::default()
            };
            preview.extend(crate::controllers::lifecycle::preview::preview(
                &item.resource.reference(),
                &item.resource.metadata.name,
                spec,
                &inventory,
                &state.lifecycle_preview,
                &membership,
                jiff::Timestamp::now(),
            ));
        }
    }
    let results = planned
        .into_iter()
        .map(|(item, outcome, current)| {
            let generation = if outcome == ApplyOutcome::Unchanged {
                current
            } else {
                current + 1
            };
            result(item.resource.reference(), outcome, generation)
        })
        .collect();
    Ok(ApplyResponse {
        results,
        dry_run: true,
        preview,
        preview_notes: notes,
    })
}

/// The members each `membersFile` group of `spec` has for a preview. An admin's files are read
/// safely; a non-admin's are only looked at (type and size, never opened) and count as empty.
/// A path that is not a regular file, or too large, fails the dry run (422) either way.
async fn members_for_preview(
    item: &ParsedResource,
    spec: &ContainerLifecyclePolicySpec,
    admin: bool,
    notes: &mut Vec<String>,
) -> Result<HashMap<String, Vec<String>>, Failure> {
    let mut members = HashMap::new();
    let mut problems = Vec::new();
    for (group, group_spec) in &spec.groups {
        let Some(path) = group_spec.members_file.clone() else {
            continue;
        };
        let field = format!("spec.groups.{group}.membersFile");
        let looked_at = if admin {
            tokio::time::timeout(
                MEMBERS_FILE_TIMEOUT,
                safe_read::read_regular_file_off_thread(
                    path.clone().into(),
                    MAX_MEMBERS_FILE_BYTES,
                ),
            )
            .await
            .map(|read| read.map(Some))
        } else {
            let checked = path.clone();
            tokio::time::timeout(
                MEMBERS_FILE_TIMEOUT,
                tokio::task::spawn_blocking(move || {
                    safe_read::check_regular_file(checked.as_ref(), MAX_MEMBERS_FILE_BYTES)
                }),
            )
            .await
            .map(|checked| {
                checked
                    .unwrap_or(Err(SafeReadError::Thread {
                        path: path.clone().into(),
                    }))
                    .map(|_| None)
            })
        };
        match looked_at {
            Err(_) => notes.push(format!(
                "{field} ({path}) did not answer within {} s: previewed as listing nobody",
                MEMBERS_FILE_TIMEOUT.as_secs()
            )),
            Ok(Ok(Some(content))) => {
                members.insert(group.clone(), crate::controllers::lifecycle::members::member_lines(&String::from_utf8_lossy(&content)));
            }
            Ok(Ok(None)) => notes.push(format!(
                "{field} ({path}) was not read: a dry run by a non-admin reads no server file, \
                 so the users it lists are previewed as not in group {group}"
            )),
            Ok(Err(SafeReadError::Unreadable { .. })) if !admin => notes.push(format!(
                "{field} ({path}) was not read: a dry run by a non-admin reads no server file, \
                 so the users it lists are previewed as not in group {group}"
            )),
            Ok(Err(error @ SafeReadError::Unreadable { .. })) => notes.push(format!(
                "{field}: {:#}; previewed as listing nobody (enforcement reports the policy \
                 Degraded)",
                anyhow::Error::from(error)
            )),
            Ok(Err(error)) => problems.push(Diagnostic {
                file: item.file.clone(),
                position: None,
                document: item.document,
                resource: Some(item.resource.reference()),
                path: field,
                message: format!(
                    "{error}; a membersFile must be a regular file of at most {MAX_MEMBERS_FILE_BYTES} bytes"
                ),
            }),
        }
    }
    if problems.is_empty() {
        Ok(members)
    } else {
        Err(Failure::invalid(problems))
    }
}

/// `DELETE /v1/specs/{kind}/{name}`.
pub async fn delete_spec(
    State(state): State<Arc<ApiState>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    Path((kind, name)): Path<(String, String)>,
) -> Result<Json<Value>, Failure> {
    if !peer.admin {
        return Err(forbidden(&peer, &state.admin));
    }
    let kind: Kind = kind
        .parse()
        .map_err(|message: String| Failure::new(StatusCode::BAD_REQUEST, "bad_request", message))?;
    let deleted = {
        let mut store = state.store.lock().await;
        tokio::task::block_in_place(|| store.delete(kind, &name))
    }
    .map_err(|error| {
        Failure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            crate::inventory::docker_watch::error_chain(&error),
        )
    })?;
    let reference = format!("{}/{name}", kind.lowercase());
    if !deleted {
        return Err(Failure::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{reference} is not applied"),
        ));
    }
    state.recorder.emit(
        EventType::SpecDeleted,
        Some(&peer.name),
        json!({ "resource": reference }),
    );
    Ok(Json(json!({ "resource": reference, "deleted": true })))
}

/// `GET /v1/specs`.
pub async fn list_specs(State(state): State<Arc<ApiState>>) -> Json<Value> {
    let store = state.store.lock().await;
    let specs: Vec<Value> = store
        .all()
        .map(|spec| {
            json!({
                "kind": spec.resource.kind().as_str(),
                "name": spec.resource.metadata.name,
                "generation": spec.generation,
                "appliedAt": format!("{:.3}", spec.applied_at),
                "document": spec.written,
                "resolved": spec.resource.to_json(),
            })
        })
        .collect();
    Json(json!({ "specs": specs }))
}
