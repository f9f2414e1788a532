//! `ds01ctl completion SHELL` and `ds01ctl man`: generated from the clap definitions.

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

/// Prints the man page (roff), generated from the same definitions.
pub fn man() -> ExitStatus {
    let page = clap_mangen::Man::new(Cli::command());
    let mut roff = Vec::new();
    if page.render(&mut roff).is_err() {
        return ExitStatus::Failure;
    }
    crate::printer::data(&String::from_utf8_lossy(&roff));
    ExitStatus::Success
}
