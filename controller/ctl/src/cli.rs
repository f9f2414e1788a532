//! The command-line definition of `ds01ctl` (clap derive); the `///` docs are the help text.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// ds01ctl — submit desired state to the ds01 controller and see what it sees and does.
#[derive(Debug, Parser)]
#[command(
    name = "ds01ctl",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Controller socket.
    #[arg(
        long,
        global = true,
        env = "DS01_SOCKET",
        default_value = "/run/ds01/controller.sock"
    )]
    pub socket: PathBuf,

    /// Output format.
    #[arg(short, long, global = true, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// How results are printed on standard output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Human-readable, fits 80 columns.
    Table,
    /// Human-readable with more columns.
    Wide,
    /// JSON, for scripts.
    Json,
    /// YAML.
    Yaml,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check spec files offline (no controller needed); exit 1 if any is invalid.
    Validate(ValidateArgs),
    /// Print the JSON Schema of every kind, or of one kind.
    Schema(SchemaArgs),
    /// Print a shell completion script.
    Completion(CompletionArgs),
    /// Submit specs (files, directories, `-`); all or nothing.
    Apply(ApplyArgs),
    /// Delete an applied resource (what it already did stays done).
    Delete(DeleteArgs),
    /// Show controller health and every resource's conditions.
    Status,
    /// Show what the controller did and saw: the event log, rotated files included.
    Events(EventsArgs),
    /// List specs, containers, GPUs or GPU processes.
    Get(GetArgs),
    /// Show what applying would change (exit 0 none, 1 changes, 2 error).
    Diff(DiffArgs),
    /// Wait until a resource's condition holds (exit 1 at the timeout).
    Wait(WaitArgs),
    /// Show everything the controller knows about one container.
    Describe(DescribeArgs),
    /// Stop a container (admins): SIGTERM, its grace period, SIGKILL; its owner is told why.
    Stop(StopArgs),
    /// Show the warnings and notices sent to you that you have not seen, then mark them seen.
    Notices(NoticesArgs),
    /// Print the man page (roff).
    Man,
    /// Convert the incumbent's resource-limits.yaml (and companions) into specs.
    ImportLegacy(ImportLegacyArgs),
    /// Show the lifecycle limits a user's containers get, and where each comes from.
    Limits(LimitsArgs),
}

/// Arguments of `limits`.
#[derive(Debug, clap::Args)]
pub struct LimitsArgs {
    /// The user.
    #[arg(long)]
    pub user: String,
    /// Container type (origin): `orchestration` (the lab's own tools), `atomic`, `docker`,
    /// `compose`, `devcontainer`, `api`, …
    #[arg(long = "type", default_value = ds01_spec::limits_view::DEFAULT_CONTAINER_TYPE)]
    pub container_type: String,
    /// Resolve as of this time (RFC 3339; decides which exemptions are in force); now by default.
    #[arg(long)]
    pub at: Option<jiff::Timestamp>,
    /// Resolve offline from these spec files or directories instead of asking the controller.
    #[arg(short = 'f', long = "filename", num_args = 1..)]
    pub paths: Vec<PathBuf>,
    /// The ContainerLifecyclePolicy to ask when there are several.
    #[arg(long)]
    pub policy: Option<String>,
}

/// Arguments of `import-legacy`.
#[derive(Debug, clap::Args)]
pub struct ImportLegacyArgs {
    /// The incumbent's config/runtime/resource-limits.yaml; its companions are read from
    /// beside it, as the incumbent does, unless given below.
    pub resource_limits: PathBuf,
    /// Its lifecycle-exemptions.yaml [default: beside resource-limits.yaml, if there].
    #[arg(long)]
    pub exemptions: Option<PathBuf>,
    /// Directory with `<group>.members` files [default: groups/ beside resource-limits.yaml].
    #[arg(long)]
    pub groups_dir: Option<PathBuf>,
    /// Its user-overrides.yaml [default: beside resource-limits.yaml, if there].
    #[arg(long)]
    pub user_overrides: Option<PathBuf>,
    /// Its monitoring/docker-compose.yaml: adds a DcgmExporter like its dcgm-exporter service.
    #[arg(long)]
    pub compose: Option<PathBuf>,
    /// Let users' blocks layer on their group (the controller's rule) instead of replacing it
    /// (the incumbent's); prints the users whose limits that changes.
    #[arg(long)]
    pub layer_overrides: bool,
    /// Copy the members files' names into `members` instead of naming the files in
    /// `membersFile` (which the controller re-reads, so the incumbent's daily group sync keeps
    /// working).
    #[arg(long)]
    pub inline_members: bool,
    /// metadata.name of the lifecycle policy.
    #[arg(long, default_value = "imported-lifecycle")]
    pub name: String,
}

/// Arguments of `stop`.
#[derive(Debug, clap::Args)]
pub struct StopArgs {
    /// Container name or id (a prefix of at least 4 characters works).
    pub container: String,
    /// Why, in words the owner reads in the notice and the event log keeps (required).
    #[arg(long)]
    pub reason: String,
    /// Stop it even when a protected label (`protectedLabels`) matches.
    #[arg(long)]
    pub force: bool,
}

/// Arguments of `notices`.
#[derive(Debug, clap::Args)]
pub struct NoticesArgs {
    /// Show the notices already seen too (the controller keeps the last 50).
    #[arg(long)]
    pub all: bool,
    /// Print nothing when there is nothing to show (for login scripts).
    #[arg(short, long)]
    pub quiet: bool,
}

/// Arguments of `describe`.
#[derive(Debug, clap::Args)]
pub struct DescribeArgs {
    /// What to describe.
    #[arg(value_enum)]
    pub target: DescribeTarget,
    /// Container name or id (a prefix of at least 4 characters works).
    pub name: String,
}

/// What `describe` describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DescribeTarget {
    /// A container.
    Container,
}

/// Arguments of `diff`.
#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// Spec files or directories; `-` reads standard input.
    #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
    pub paths: Vec<PathBuf>,
}

/// Arguments of `wait`.
#[derive(Debug, clap::Args)]
pub struct WaitArgs {
    /// `condition=TYPE` (status True) or `condition=TYPE=STATUS`.
    #[arg(long = "for")]
    pub condition: String,
    /// KIND/NAME, e.g. `dcgmexporter/dcgm-exporter`.
    pub resource: String,
    /// Longest wait.
    #[arg(long, default_value = "30s")]
    pub timeout: ds01_spec::Duration,
}

/// Arguments of `get`.
#[derive(Debug, clap::Args)]
pub struct GetArgs {
    /// What to list.
    #[arg(value_enum)]
    pub resource: Resource,
    /// Only containers or processes of this user.
    #[arg(long)]
    pub user: Option<String>,
    /// Only containers or processes on this GPU (UUID or index; a GPU includes its MIG
    /// devices) or MIG device (UUID).
    #[arg(long)]
    pub gpu: Option<String>,
    /// Only containers (or processes in containers) with this label; repeat to require several.
    #[arg(short = 'l', long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
}

/// What `get` lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Resource {
    /// Applied specs.
    Specs,
    /// Containers with owner, origin, state and GPUs.
    Containers,
    /// GPUs and MIG devices with holders and processes by class.
    Gpus,
    /// GPU processes with owner, container and class.
    Processes,
}

/// Arguments of `events`.
#[derive(Debug, clap::Args)]
pub struct EventsArgs {
    /// Keep running and print new events as they happen.
    #[arg(long, conflicts_with = "summary")]
    pub follow: bool,
    /// Only event types starting with this (`lifecycle.`, `gpu.orphan`).
    #[arg(long = "type")]
    pub event_type: Option<String>,
    /// Only events about this user.
    #[arg(long)]
    pub user: Option<String>,
    /// Only events about this container (name, or a prefix of 4+ characters of its id).
    #[arg(long)]
    pub container: Option<String>,
    /// Only events from then on: a time ago (`30m`, `1h`, `7d`) or RFC 3339 (`2026-01-31T12:00:00Z`).
    #[arg(long)]
    pub since: Option<PointInTime>,
    /// Only events before then: a time ago or RFC 3339.
    #[arg(long)]
    pub until: Option<PointInTime>,
    /// Show at most this many, the newest (the controller allows up to 10000).
    #[arg(long, default_value_t = 1000)]
    pub limit: usize,
    /// Count the matching events per type and per user instead of listing them.
    #[arg(long)]
    pub summary: bool,
}

/// A time given as a duration ago or as an RFC 3339 timestamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PointInTime {
    /// This long before now.
    Ago(ds01_spec::Duration),
    /// This moment.
    At(jiff::Timestamp),
}

impl PointInTime {
    /// The moment, taking `now` for "ago".
    #[must_use]
    pub fn resolve(self, now: jiff::Timestamp) -> jiff::Timestamp {
        match self {
            PointInTime::At(at) => at,
            PointInTime::Ago(duration) => jiff::SignedDuration::try_from(duration.std())
                .ok()
                .and_then(|back| now.checked_sub(back).ok())
                .unwrap_or(jiff::Timestamp::MIN),
        }
    }
}

impl std::str::FromStr for PointInTime {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Ok(at) = text.parse::<jiff::Timestamp>() {
            return Ok(PointInTime::At(at));
        }
        text.parse::<ds01_spec::Duration>()
            .map(PointInTime::Ago)
            .map_err(|_| {
                format!("`{text}` is neither a duration (30m, 1h, 7d) nor an RFC 3339 time")
            })
    }
}

/// Arguments of `apply`.
#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// Spec files or directories (every *.yaml/*.yml inside); `-` reads standard input.
    #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
    pub paths: Vec<PathBuf>,
    /// Validate on the controller and show what would change, without storing anything.
    #[arg(long)]
    pub dry_run: bool,
}

/// Arguments of `delete`.
#[derive(Debug, clap::Args)]
pub struct DeleteArgs {
    /// Kind (DcgmExporter, GpuOrphanPolicy, ContainerLifecyclePolicy, or a short name).
    pub kind: String,
    /// Name.
    pub name: String,
}

/// Arguments of `validate`.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// Spec files or directories (every *.yaml/*.yml inside); `-` reads standard input.
    #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
    pub paths: Vec<PathBuf>,
}

/// Arguments of `schema`.
#[derive(Debug, clap::Args)]
pub struct SchemaArgs {
    /// DcgmExporter, GpuOrphanPolicy or ContainerLifecyclePolicy; all kinds when omitted.
    pub kind: Option<String>,
}

/// Arguments of `completion`.
#[derive(Debug, clap::Args)]
pub struct CompletionArgs {
    /// Shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}
