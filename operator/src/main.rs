//! `trimtab`: the operator and its tools.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use trimtab::cli;

/// jemalloc, not glibc's malloc: the operator's memory is many small objects decoded on whichever
/// worker thread a watch event arrives, and glibc's per-thread arenas held on to about twice the
/// live heap as resident memory (docs/scale.md has the figures).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(name = "trimtab", version, about = "Kubernetes autoscaling for service-level objectives, on a budget, on spot")]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the operator: reconcile every ScalingPolicy in the cluster.
    Run(Box<cli::run::RunArgs>),
    /// Print every CustomResourceDefinition Trimtab owns, as YAML.
    Crd,
    /// Explain one decision: read a situation (policy, observations, history) and print the decision as JSON.
    Decide(cli::decide::DecideArgs),
    /// Replay a load trace through a policy against a model of the service, beside HPA and static
    /// provisioning; write summary.json, timeline.csv and a report (SVG and PNG).
    Simulate(Box<cli::simulate::SimulateArgs>),
    /// Run a policy's queries against Prometheus before applying it: each objective's value or
    /// absence, its series, what it proposes, warnings naming the field to fix, and the decision.
    /// Exits 0 when every objective has a usable value, 1 when one has not, 2 on bad input.
    Check(Box<cli::check::CheckArgs>),
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Command::Check(check) = &args.command {
        return match cli::check::run(check) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::from(1),
            Err(error) => {
                eprintln!("error: {error}");
                ExitCode::from(2) // bad input, as clap's usage errors
            }
        };
    }
    let result = match args.command {
        Command::Run(run) => cli::run::run(*run).map_err(Into::into),
        Command::Crd => cli::crd::run(),
        Command::Decide(decide) => cli::decide::run(&decide),
        Command::Simulate(simulate) => cli::simulate::run(&simulate).map_err(Into::into),
        Command::Check(_) => Ok(()), // handled above, for its own exit codes
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
