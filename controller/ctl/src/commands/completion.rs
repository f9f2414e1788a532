//! `ds01ctl completion SHELL`: generated from the clap definitions.

use clap::CommandFactory;

use crate::{
    cli::{Cli, CompletionArgs},
    exit::ExitStatus,
};

/// Prints the completion script for the shell.
pub fn completion(args: &CompletionArgs) -> ExitStatus {
    let mut command = Cli::command();
    clap_complete::generate(args.shell, &mut command, "ds01ctl", &mut std::io::stdout());
    ExitStatus::Success
}
