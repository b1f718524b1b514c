//! `berth cluster create` from bare machines to every Node Ready, for
//! 1 master + 2 nodes (sqlite) and 3 masters on etcd + 2 nodes, split into
//! the phases `create --timings` prints (SSH connect, upload, etcd
//! formation, API ready, node join), beside the floor: copying the berth
//! binary to every machine over SSH in the same run. The machines are
//! network namespaces (`tests/hosts/hosts.sh`, prefix `bbn`, subnet 10.87)
//! each running OpenSSH; everything is torn down on exit, also on failure.
//! Needs root, Debian's openssh-server, etcd-server and containerd.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use berth_bench::ssh_lab::{copy_binary, Lab};
use berth_provisioner::create::{parse_timings, Phase};
use clap::Parser;

const PREFIX: &str = "bbn";
const SUBNET: &str = "10.87";
const MACHINES: usize = 5;

/// Times `berth cluster create` against copying the binary to the same machines.
#[derive(Parser, Debug)]
#[command(name = "cluster-create-bench")]
struct Args {
    /// The berth binary installed on the machines (default: `berth` beside this benchmark).
    #[arg(long)]
    berth: Option<PathBuf>,
    /// Runs per shape; the fastest run of each is printed.
    #[arg(long, default_value_t = 1)]
    runs: usize,
    /// Seconds `create` may wait for the API and for the Nodes.
    #[arg(long, default_value_t = 180)]
    ready_timeout: u64,
}

/// A cluster of `masters` + `nodes` machines of the lab, named after its shape.
fn cluster_toml(dir: &Path, lab: &Lab, berth: &Path, masters: usize, nodes: usize) -> String {
    let name = format!("bench{masters}x{nodes}");
    let machine = |i: usize, role: &str| {
        format!(
            "{{ host = \"{}\", name = \"{role}{}\", data_dir = \"{}/{name}/machines/{role}{}\" }}",
            lab.addresses[i],
            i + 1,
            dir.display(),
            i + 1
        )
    };
    let masters_list: Vec<String> = (0..masters).map(|i| machine(i, "m")).collect();
    let nodes_list: Vec<String> = (masters..masters + nodes)
        .map(|i| machine(i, "n"))
        .collect();
    format!(
        "name = \"{name}\"\nbinary = \"{berth}\"\ndatastore = \"{datastore}\"\n\
         cluster_cidr = \"10.187.0.0/16\"\nservice_cidr = \"10.47.0.0/16\"\n\n\
         [ssh]\nkey_file = \"{dir}/id\"\nknown_hosts = \"{dir}/known_hosts\"\n\n\
         [masters]\nmachines = [{masters_list}]\n\n\
         [[pools]]\nname = \"cpu\"\nmachines = [{nodes_list}]\n",
        berth = berth.display(),
        datastore = if masters == 1 { "sqlite" } else { "etcd" },
        dir = dir.display(),
        masters_list = masters_list.join(", "),
        nodes_list = nodes_list.join(", "),
    )
}

fn berth_cluster(berth: &Path, args: &[&str], file: &Path, state: &Path) -> anyhow::Result<String> {
    let output = Command::new(berth)
        .arg("cluster")
        .args(args)
        .arg("-f")
        .arg(file)
        .arg("--state-dir")
        .arg(state)
        .output()?;
    anyhow::ensure!(
        output.status.success(),
        "berth cluster {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// One run of one shape.
struct Run {
    /// Copying the binary to every machine.
    floor: Duration,
    /// `cluster create` to every Node Ready.
    create: Duration,
    /// Seconds per phase, as `create --timings` printed them.
    phases: Vec<(String, f64)>,
}

async fn run_once(
    dir: &Path,
    lab: &Lab,
    berth: &Path,
    (masters, nodes): (usize, usize),
    ready_timeout: u64,
) -> anyhow::Result<Run> {
    let file = dir.join(format!("cluster-{masters}x{nodes}.toml"));
    std::fs::write(&file, cluster_toml(dir, lab, berth, masters, nodes))?;
    let state = dir.join(format!("state-{masters}x{nodes}"));
    let floor = copy_binary(dir, &lab.addresses[..masters + nodes], berth).await?;
    let started = Instant::now();
    let timeout = format!("{ready_timeout}s");
    let created = berth_cluster(
        berth,
        &["create", "--timings", "--ready-timeout", &timeout],
        &file,
        &state,
    );
    let took = started.elapsed();
    let deleted = berth_cluster(berth, &["delete"], &file, &state);
    let created = created?;
    deleted?;
    Ok(Run {
        floor,
        create: took,
        phases: parse_timings(&created),
    })
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let berth = match args.berth {
        Some(path) => path,
        None => std::env::current_exe()?.with_file_name("berth"),
    };
    anyhow::ensure!(
        berth.is_file(),
        "{} is not a file; build it (cargo build -p berth) or pass --berth",
        berth.display()
    );
    let dir = tempfile::tempdir()?;
    let lab = Lab::up(dir.path(), PREFIX, SUBNET, MACHINES)?;
    let runtime = tokio::runtime::Runtime::new()?;
    println!(
        "cluster-create: {} ({} MiB), best of {} run(s) per shape",
        berth.display(),
        std::fs::metadata(&berth)?.len() / (1024 * 1024),
        args.runs
    );
    let phases: Vec<&str> = Phase::ALL.iter().map(|p| p.name()).collect();
    println!(
        "{:<8} {:>9} {:>9} {:>7} | {}",
        "shape",
        "create s",
        "copy s",
        "ratio",
        phases
            .iter()
            .map(|p| format!("{p:>14}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    for shape in [(1, 2), (3, 2)] {
        let mut best: Option<Run> = None;
        for _ in 0..args.runs.max(1) {
            let run = runtime.block_on(run_once(
                dir.path(),
                &lab,
                &berth,
                shape,
                args.ready_timeout,
            ))?;
            if best.as_ref().is_none_or(|b| run.create < b.create) {
                best = Some(run);
            }
        }
        let Run {
            floor,
            create: took,
            phases: timings,
        } = best.context("no run")?;
        let seconds = |phase: &str| {
            timings
                .iter()
                .find(|(name, _)| name == phase)
                .map_or(0.0, |(_, s)| *s)
        };
        println!(
            "{:<8} {:>9.2} {:>9.2} {:>6.1}x | {}",
            format!("{}+{}", shape.0, shape.1),
            took.as_secs_f64(),
            floor.as_secs_f64(),
            took.as_secs_f64() / floor.as_secs_f64(),
            phases
                .iter()
                .map(|p| format!("{:>14.2}", seconds(p)))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    println!(
        "ratio = create to all Nodes Ready / copying the binary to the same machines over SSH"
    );
    Ok(())
}
