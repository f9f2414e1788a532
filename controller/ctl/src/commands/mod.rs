//! One module per subcommand; `run` dispatches.

mod completion;
mod schema;
mod validate;

use crate::{
    cli::{Cli, Command},
    exit::ExitStatus,
};

/// Runs the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<ExitStatus> {
    match cli.command {
        Command::Validate(args) => validate::validate(&args, cli.output),
        Command::Schema(args) => schema::schema(&args),
        Command::Completion(args) => Ok(completion::completion(&args)),
    }
}
