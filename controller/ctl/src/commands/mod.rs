//! One module per subcommand; `run` dispatches.

mod apply;
mod completion;
mod describe;
mod diff;
mod events;
mod get;
mod import_legacy;
mod limits;
mod man_page;
mod notices;
mod schema;
mod status;
mod stop;
mod validate;
mod wait;

use hyper::{Method, StatusCode, body::Bytes};

use crate::{
    cli::{Cli, Command},
    client,
    exit::ExitStatus,
    printer,
};

/// Runs the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<ExitStatus> {
    match cli.command {
        Command::Validate(args) => validate::validate(&args, cli.output),
        Command::Schema(args) => schema::schema(&args),
        Command::Completion(args) => Ok(completion::completion(&args)),
        Command::Apply(args) => block_on(apply::apply(&args, &cli.socket, cli.output)),
        Command::Delete(args) => block_on(apply::delete(&args, &cli.socket)),
        Command::Status => block_on(status::status(&cli.socket, cli.output)),
        Command::Events(args) => block_on(events::events(&args, &cli.socket, cli.output)),
        Command::Get(args) => block_on(get::get(&args, &cli.socket, cli.output)),
        Command::Diff(args) => block_on(diff::diff(&args, &cli.socket)),
        Command::Describe(args) => block_on(describe::describe(&args, &cli.socket, cli.output)),
        Command::Man => Ok(man_page::man()),
        Command::ImportLegacy(args) => import_legacy::import_legacy(&args),
        Command::Limits(args) => block_on(limits::limits(&args, &cli.socket, cli.output)),
        Command::Wait(args) => block_on(wait::wait(&args, &cli.socket)),
        Command::Stop(args) => block_on(stop::stop(&args, &cli.socket, cli.output)),
        Command::Notices(args) => block_on(notices::notices(&args, &cli.socket, cli.output)),
    }
}

fn block_on<T>(future: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(future)
}

/// One API request; on failure to reach the controller prints a one-line hint and returns
/// `None` (exit 2).
async fn api_call(
    socket: &std::path::Path,
    method: Method,
    path: &str,
    body: Option<Vec<u8>>,
) -> Option<(StatusCode, Bytes)> {
    match client::request(socket, method, path, body).await {
        Ok(answer) => Some(answer),
        Err(error) => {
            unreachable_hint(socket, &anyhow::Error::from(error));
            None
        }
    }
}

/// The one-line diagnosis and hint for a controller that cannot be reached.
fn unreachable_hint(socket: &std::path::Path, error: &anyhow::Error) {
    printer::error(&format!("{error:#}"));
    printer::hint(&format!(
        "is ds01-controller running (systemctl status ds01-controller)? socket tried: {} (set --socket or DS01_SOCKET)",
        socket.display()
    ));
}

/// A JSON value as table text: strings bare, null as `-`, unsafe characters escaped.
fn text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => cell(text),
        serde_json::Value::Null => "-".to_owned(),
        other => cell(&other.to_string()),
    }
}

/// Text from the controller as one table cell or value: unsafe characters escaped.
fn cell(text: &str) -> String {
    printer::clean(text).into_owned()
}

/// An optional value as a cell, `-` when absent.
fn cell_or_dash<T: std::fmt::Display>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |value| cell(&value.to_string()))
}

/// `GET path`'s body; `Err(status)` when the request failed (already reported).
async fn get_bytes(socket: &std::path::Path, path: &str) -> Result<Bytes, ExitStatus> {
    let Some((status, bytes)) = api_call(socket, Method::GET, path, None).await else {
        return Err(ExitStatus::Failure);
    };
    if status != StatusCode::OK {
        return Err(report_error_body(status, &bytes));
    }
    Ok(bytes)
}

/// A body as `T` (a typed view, or `serde_json::Value` to print it as the controller sent it).
fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ExitStatus> {
    serde_json::from_slice(bytes).map_err(|error| {
        printer::error(&format!(
            "the controller sent something this ds01ctl cannot read: {error}"
        ));
        ExitStatus::Failure
    })
}

/// Percent-encodes a query parameter's value.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
                (byte as char).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}

/// `path?key=value&…` with the values encoded (no `?` without parameters).
fn with_query(path: &str, parameters: &[(&str, String)]) -> String {
    if parameters.is_empty() {
        return path.to_owned();
    }
    let query: Vec<String> = parameters
        .iter()
        .map(|(key, value)| format!("{key}={}", encode(value)))
        .collect();
    format!("{path}?{}", query.join("&"))
}

/// Prints an API error body; maps it to an exit status (1 for the user's mistakes).
fn report_error_body(status: StatusCode, bytes: &[u8]) -> ExitStatus {
    match serde_json::from_slice::<ds01_spec::api::ErrorBody>(bytes) {
        Ok(body) => {
            for diagnostic in &body.error.diagnostics {
                printer::error(&diagnostic.to_string());
            }
            printer::error(&body.error.message);
        }
        Err(_) => printer::error(&format!(
            "the controller answered {status}: {}",
            String::from_utf8_lossy(bytes)
        )),
    }
    if status.is_client_error() {
        ExitStatus::UserError
    } else {
        ExitStatus::Failure
    }
}
