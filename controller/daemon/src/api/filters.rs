//! Query filters of `GET /v1/containers` and `GET /v1/processes`: `user=U`, `gpu=UUID|index`
//! (a GPU's UUID or index also selects its MIG devices), `label=key=value` (repeatable; every
//! one must match). Unknown parameters are refused, so a typo never silently lists everything.

use std::collections::BTreeMap;

use axum::http::StatusCode;

use super::failure::Failure;
use crate::inventory::{ContainerRecord, Inventory};

/// The filters of one request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkloadFilter {
    /// Owner.
    pub user: Option<String>,
    /// GPU UUID, MIG UUID or GPU index, as given.
    pub gpu: Option<String>,
    /// Labels that must all be set to these values.
    pub labels: Vec<(String, String)>,
}

impl WorkloadFilter {
    /// Reads the raw query string.
    ///
    /// # Errors
    /// 400 for an unknown parameter or a label without `=`.
    pub fn parse(query: Option<&str>) -> Result<Self, Failure> {
        let mut filter = WorkloadFilter::default();
        let bad = |message: String| Failure::new(StatusCode::BAD_REQUEST, "bad_request", message);
        for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            match key.as_ref() {
                "user" => filter.user = Some(value.into_owned()),
                "gpu" => filter.gpu = Some(value.into_owned()),
                "label" => {
                    let (name, wanted) = value
                        .split_once('=')
                        .ok_or_else(|| bad(format!("label filter `{value}` must be key=value")))?;
                    filter.labels.push((name.to_owned(), wanted.to_owned()));
                }
                other => {
                    return Err(bad(format!(
                        "unknown query parameter `{other}` (known: user, gpu, label)"
                    )));
                }
            }
        }
        Ok(filter)
    }

    /// The device UUIDs the `gpu` filter selects (`None`: no GPU filter).
    #[must_use]
    pub fn devices(&self, inventory: &Inventory) -> Option<Vec<String>> {
        let wanted = self.gpu.as_deref()?;
        let by_index = wanted.parse::<u32>().ok();
        let gpu = inventory
            .gpus
            .gpus
            .iter()
            .find(|gpu| by_index.map_or(gpu.uuid == wanted, |index| gpu.index == index));
        Some(match gpu {
            Some(gpu) => std::iter::once(gpu.uuid.clone())
                .chain(gpu.mig_devices.iter().map(|mig| mig.uuid.clone()))
                .collect(),
            None if by_index.is_some() => Vec::new(),
            None => vec![wanted.to_owned()],
        })
    }

    /// Whether `user` passes the user filter.
    #[must_use]
    pub fn user_matches(&self, user: &str) -> bool {
        self.user.as_deref().is_none_or(|wanted| wanted == user)
    }

    /// Whether labels pass the label filters.
    #[must_use]
    pub fn labels_match(&self, labels: Option<&BTreeMap<String, String>>) -> bool {
        self.labels.iter().all(|(key, value)| {
            labels
                .and_then(|labels| labels.get(key))
                .is_some_and(|actual| actual == value)
        })
    }

    /// Whether a container passes every filter.
    #[must_use]
    pub fn container_matches(&self, record: &ContainerRecord, devices: Option<&[String]>) -> bool {
        self.user_matches(&record.user)
            && devices
                .is_none_or(|devices| record.gpu_uuids.iter().any(|held| devices.contains(held)))
            && self.labels_match(Some(&record.info.labels))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_read_and_unknown_ones_refused() {
        let filter =
            WorkloadFilter::parse(Some("user=alice&gpu=1&label=team%3Dvision&label=tier=gold"))
                .expect("valid");
        assert_eq!(filter.user.as_deref(), Some("alice"));
        assert_eq!(filter.gpu.as_deref(), Some("1"));
        assert_eq!(
            filter.labels,
            [
                ("team".to_owned(), "vision".to_owned()),
                ("tier".to_owned(), "gold".to_owned())
            ]
        );
        assert!(WorkloadFilter::parse(Some("usr=alice")).is_err());
        assert!(WorkloadFilter::parse(Some("label=novalue")).is_err());
        assert_eq!(
            WorkloadFilter::parse(None).expect("empty"),
            WorkloadFilter::default()
        );
    }

    #[test]
    fn every_label_must_match() {
        let filter = WorkloadFilter::parse(Some("label=a=1&label=b=2")).expect("valid");
        let labels: BTreeMap<String, String> = [("a", "1"), ("b", "2"), ("c", "3")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        assert!(filter.labels_match(Some(&labels)));
        let mut partial = labels.clone();
        partial.insert("b".into(), "9".into());
        assert!(!filter.labels_match(Some(&partial)));
        assert!(!filter.labels_match(None));
    }
}
