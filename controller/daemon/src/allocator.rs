//! glibc's allocator set for a long-running daemon with a few threads: two arenas instead of
//! eight per core, and a fixed mmap threshold so that large buffers (a relist, a lifecycle pass
//! over every container) go back to the system when freed instead of raising the heap for
//! good. glibc reads these settings (`GLIBC_TUNABLES`) when the process starts, so the
//! controller sets them and executes itself again, once, keeping its pid. Measured with
//! `ds01-bench steady` at 1000 containers: RSS median 40.8 → 28.8 MiB, peak 42.2 → 31.0 MiB
//! (docs/decisions.md D49).

use std::os::unix::process::CommandExt;

/// What the controller asks of glibc.
const TUNABLES: &str = "glibc.malloc.arena_max=2:glibc.malloc.mmap_threshold=131072";

/// Starts the controller again with [`TUNABLES`] when the environment names no tunables of its
/// own (an admin's `GLIBC_TUNABLES` wins). Returns only when that is not needed or not
/// possible; the controller then runs with glibc's defaults.
pub fn tune() {
    if !cfg!(all(target_os = "linux", target_env = "gnu"))
        || std::env::var_os("GLIBC_TUNABLES").is_some()
    {
        return;
    }
    let Ok(program) = std::env::current_exe() else {
        return;
    };
    let error = std::process::Command::new(program)
        .args(std::env::args_os().skip(1))
        .env("GLIBC_TUNABLES", TUNABLES)
        .exec();
    eprintln!(
        "ds01-controller: could not restart with allocator settings ({error}); going on without them"
    );
}
