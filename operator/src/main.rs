//! `trimtab`: the operator and its tools.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use trimtab::cli;

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
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match args.command {
        Command::Run(run) => cli::run::run(*run).map_err(Into::into),
        Command::Crd => cli::crd::run(),
        Command::Decide(decide) => cli::decide::run(&decide),
        Command::Simulate(simulate) => cli::simulate::run(&simulate).map_err(Into::into),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
