//! `ds01ctl notices [--all] [--quiet]`: the warnings and notices the controller sent you
//! (found by who you are on the socket), oldest first; those shown are then marked seen, so
//! the next call (e.g. at your next login) shows only newer ones.

use ds01_spec::api::{NoticeList, NoticeView, NoticesSeenRequest};
use hyper::{Method, StatusCode};
use jiff::tz::TimeZone;

use super::{api_call, cell, decode, get_bytes, report_error_body};
use crate::{
    cli::{NoticesArgs, OutputFormat},
    exit::ExitStatus,
    printer,
};

fn line(notice: &NoticeView) -> String {
    let at = notice
        .at
        .0
        .to_zoned(TimeZone::system())
        .strftime("%Y-%m-%d %H:%M:%S %Z");
    let seen = if notice.seen { " (seen)" } else { "" };
    format!("{at}{seen}  {}", cell(&notice.message))
}

/// Shows the caller's notices, then marks the unseen ones seen.
pub async fn notices(
    args: &NoticesArgs,
    socket: &std::path::Path,
    output: OutputFormat,
) -> anyhow::Result<ExitStatus> {
    let path = if args.all {
        "/v1/notices?all=true"
    } else {
        "/v1/notices"
    };
    let bytes = match get_bytes(socket, path).await {
        Ok(bytes) => bytes,
        Err(status) => return Ok(status),
    };
    let list: NoticeList = match decode(&bytes) {
        Ok(list) => list,
        Err(status) => return Ok(status),
    };
    if matches!(output, OutputFormat::Json | OutputFormat::Yaml) {
        printer::structured(&serde_json::to_value(&list)?, output);
    } else if list.notices.is_empty() {
        if !args.quiet {
            printer::data(if args.all {
                "No notices kept for you."
            } else {
                "No new notices."
            });
        }
    } else {
        let unseen = list.notices.iter().filter(|notice| !notice.seen).count();
        printer::data(&format!(
            "ds01: {unseen} new notice(s) for {} (oldest first):",
            cell(&list.user)
        ));
        for notice in &list.notices {
            printer::data(&line(notice));
        }
    }
    let Some(up_to) = list
        .notices
        .iter()
        .filter(|notice| !notice.seen)
        .map(|notice| notice.id)
        .max()
    else {
        return Ok(ExitStatus::Success);
    };
    let body = serde_json::to_vec(&NoticesSeenRequest { up_to })?;
    let Some((status, bytes)) =
        api_call(socket, Method::POST, "/v1/notices/seen", Some(body)).await
    else {
        return Ok(ExitStatus::Failure);
    };
    if status != StatusCode::OK {
        return Ok(report_error_body(status, &bytes));
    }
    Ok(ExitStatus::Success)
}
