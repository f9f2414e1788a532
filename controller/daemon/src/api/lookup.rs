//! Finding one container by what a user typed: its name (with or without the leading `/`),
//! its full id, or a prefix of at least 4 characters of its id — exactly one, or a failure
//! that says why (404 none, 400 ambiguous).

use std::sync::Arc;

use axum::http::StatusCode;

use super::failure::Failure;
use crate::inventory::{ContainerRecord, Inventory};

/// The one container `wanted` names.
///
/// # Errors
/// 404 when none matches, 400 when several do.
pub(super) fn container(
    inventory: &Inventory,
    wanted: &str,
) -> Result<Arc<ContainerRecord>, Failure> {
    let wanted_name = wanted.trim_start_matches('/');
    let matches: Vec<&Arc<ContainerRecord>> = inventory
        .containers
        .values()
        .filter(|record| {
            record.info.name == wanted_name
                || record.info.id == wanted
                || (wanted.len() >= 4 && record.info.id.starts_with(wanted))
        })
        .collect();
    match matches.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(Failure::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no container named or with id `{wanted}`"),
        )),
        _ => Err(Failure::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!(
                "`{wanted}` matches {} containers; give more of the id",
                matches.len()
            ),
        )),
    }
}
