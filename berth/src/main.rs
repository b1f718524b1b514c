//! The `berth` command line: one binary for the API server and, later, the
//! agent and the cluster tools. It only parses flags and calls the crates.

mod server;

use clap::{Parser, Subcommand};

/// berth: a Kubernetes-compatible cluster in one binary.
#[derive(Parser)]
#[command(name = "berth", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the API server (with its embedded SQLite store by default).
    Server(server::ServerArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    berth_observability::init_logging("info");
    let cli = Cli::parse();
    match cli.command {
        Command::Server(args) => server::run(args).await,
    }
}
