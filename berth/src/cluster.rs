//! `berth cluster …`: clusters built from a `cluster.toml`. Thin: parses
//! flags, calls `berth-provisioner`, prints. Only `check` exists so far.

use std::path::PathBuf;

use berth_provisioner::config::{self, Binary};
use clap::{Args, Subcommand};

/// `berth cluster` and its subcommands.
#[derive(Args, Debug)]
pub struct ClusterArgs {
    #[command(subcommand)]
    command: ClusterCommand,
}

#[derive(Subcommand, Debug)]
enum ClusterCommand {
    /// Check a cluster.toml and print what would be built; exits 1 with the
    /// first problem (file:line:column: field: what is allowed) otherwise.
    Check(CheckArgs),
}

#[derive(Args, Debug)]
struct CheckArgs {
    /// The cluster description.
    #[arg(short = 'f', long = "file", default_value = "cluster.toml")]
    file: PathBuf,
}

/// Runs a `berth cluster` subcommand.
pub fn run(args: ClusterArgs) -> anyhow::Result<()> {
    match args.command {
        ClusterCommand::Check(check) => {
            if let Err(problem) = self::check(&check) {
                eprintln!("{problem}");
                std::process::exit(1);
            }
            Ok(())
        }
    }
}

fn check(args: &CheckArgs) -> Result<(), String> {
    let cluster = config::load(&args.file).map_err(|e| e.to_string())?;
    if let Binary::Path(path) = &cluster.binary {
        if !path.is_file() {
            return Err(format!(
                "{}: binary: {} is not a file; set binary = \"self\" or the path of a berth executable",
                args.file.display(),
                path.display()
            ));
        }
    }
    print!("{}", config::summary(&cluster));
    println!("{}: OK", args.file.display());
    Ok(())
}
