//! `ds01-controller`: parse flags (exit 64 on bad ones), start logging, run.

mod allocator;
mod api;
mod app;
mod config;
mod connections;
mod controllers;
mod daemon;
mod gpu_health;
mod health;
mod instance_lock;
mod inventory;
mod man_page;
mod metrics;
mod once;
mod recorder;
mod spec_store;
mod startup;
mod state_file;
mod systemd;
mod telemetry;
mod write_stall;

use std::process::ExitCode;

use clap::Parser;

const EX_USAGE: u8 = 64;

fn main() -> ExitCode {
    allocator::tune();
    // Nothing the controller creates is world-readable (state 0600, inventory and events 0640
    // set explicitly; this covers everything else). The socket is made 0666 on purpose.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o027));
    let flags = match config::Flags::try_parse() {
        Ok(flags) => flags,
        Err(error) => {
            let code = if error.use_stderr() { EX_USAGE } else { 0 };
            let _ = error.print();
            return ExitCode::from(code);
        }
    };
    if flags.man {
        return match man_page::render() {
            Ok(page) => {
                // A closed pipe (`| head`) is not worth reporting.
                let _ = std::io::Write::write_all(&mut std::io::stdout(), page.as_bytes());
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("error: cannot render the manual page: {error}");
                ExitCode::from(2)
            }
        };
    }
    if let Err(message) = flags.check() {
        eprintln!("error: {message}");
        return ExitCode::from(EX_USAGE);
    }
    telemetry::init(flags.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(2);
        }
    };
    let outcome = runtime.block_on(app::run(flags));
    // A blocking call that never returns (a hung NVML driver) must not hold the exit: the
    // drain has already waited its deadline for everything that matters.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match outcome {
        Ok(code) => code,
        Err(error) => {
            tracing::error!(error = %format!("{error:#}"), "controller failed");
            ExitCode::from(2)
        }
    }
}
