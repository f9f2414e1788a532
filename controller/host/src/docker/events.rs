//! The Docker event stream, reduced to container events.

use std::collections::HashMap;

use bollard::{models::EventMessageTypeEnum, query_parameters::EventsOptionsBuilder};
use futures::StreamExt;

use super::{DockerClient, DockerError};

/// One container event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerEvent {
    /// Container id.
    pub id: String,
    /// Action without arguments: `exec_create: ls` becomes `exec_create`, `health_status:
    /// healthy` becomes `health_status`.
    pub action: String,
    /// The daemon's timestamp, nanoseconds since the epoch.
    pub time_nanos: i64,
    /// Actor attributes (labels, `name`, `image`, `exitCode`, `signal`).
    pub attributes: HashMap<String, String>,
}

impl ContainerEvent {
    /// Whether the event can change what an inspect returns (state, config). Exec, top,
    /// attach, resize and similar do not.
    #[must_use]
    pub fn changes_container(&self) -> bool {
        !matches!(
            self.action.as_str(),
            "exec_create"
                | "exec_start"
                | "exec_die"
                | "exec_detach"
                | "top"
                | "attach"
                | "detach"
                | "resize"
                | "commit"
                | "copy"
                | "archive-path"
                | "extract-to-dir"
                | "export"
                | "health_status"
        )
    }
}

/// Container events from `since` (seconds since the epoch; the daemon replays at most 256
/// older ones) or from now, until the connection drops (the stream then ends or errs).
pub fn container_events(
    client: &DockerClient,
    since: Option<i64>,
) -> futures::stream::BoxStream<'static, Result<ContainerEvent, DockerError>> {
    let filters = HashMap::from([("type".to_owned(), vec!["container".to_owned()])]);
    let mut options = EventsOptionsBuilder::new().filters(&filters);
    if let Some(since) = since {
        options = options.since(&since.to_string());
    }
    let options = options.build();
    let docker = match client.raw() {
        Ok(docker) => docker.clone(),
        Err(error) => return futures::stream::once(async move { Err(error) }).boxed(),
    };
    docker
        .events(Some(options))
        .filter_map(|message| async move {
            match message {
                Err(source) => Some(Err(DockerError::Request {
                    operation: "events".to_owned(),
                    source,
                })),
                Ok(message) => {
                    if message
                        .typ
                        .is_some_and(|kind| kind != EventMessageTypeEnum::CONTAINER)
                    {
                        return None;
                    }
                    let actor = message.actor?;
                    let action = message.action?;
                    // Some actions carry arguments after a colon: match by prefix.
                    let action = action
                        .split(':')
                        .next()
                        .unwrap_or_default()
                        .trim()
                        .to_owned();
                    Some(Ok(ContainerEvent {
                        id: actor.id?,
                        action,
                        time_nanos: message.time_nano.unwrap_or_else(|| {
                            message.time.unwrap_or(0).saturating_mul(1_000_000_000)
                        }),
                        attributes: actor.attributes.unwrap_or_default(),
                    }))
                }
            }
        })
        .boxed()
}
