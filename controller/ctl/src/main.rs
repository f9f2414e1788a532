//! `ds01ctl`: parses the command line, runs one command, maps the outcome to an exit status.

mod cli;
mod client;
mod commands;
mod exit;
mod printer;
mod yaml_out;

use std::process::ExitCode;

use clap::Parser;

use crate::{cli::Cli, exit::ExitStatus};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let status = if error.use_stderr() {
                ExitStatus::Usage
            } else {
                ExitStatus::Success
            };
            // clap formats and colours its own message; printing cannot meaningfully fail here.
            let _ = error.print();
            return status.into();
        }
    };
    match commands::run(cli) {
        Ok(status) => status.into(),
        Err(error) => {
            printer::error(&format!("{error:#}"));
            ExitStatus::Failure.into()
        }
    }
}
