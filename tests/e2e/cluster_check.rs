//! `berth cluster check` as a user runs it: the example files pass with a
//! summary of what would be built; a broken file exits 1 with one line naming
//! the file, line, column and field.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn berth() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_berth"))
}

fn check(file: &Path) -> Output {
    Command::new(berth())
        .args(["cluster", "check", "-f"])
        .arg(file)
        .output()
        .expect("running berth")
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

#[test]
fn example_files_pass_with_a_summary() {
    let output = check(&examples().join("cluster-ha.toml"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.starts_with("cluster \"prod\": 3 master(s) on etcd, 2 pool(s), 5 node(s)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("taints: nvidia.com/gpu=present:NoSchedule"),
        "{stdout}"
    );
    assert!(
        stdout.trim_end().ends_with("cluster-ha.toml: OK"),
        "{stdout}"
    );
    assert!(check(&examples().join("cluster-single.toml"))
        .status
        .success());
    let aws = check(&examples().join("cluster-aws.toml"));
    let stdout = String::from_utf8_lossy(&aws.stdout);
    assert!(aws.status.success(), "{stdout}");
    assert!(
        stdout.contains("prod-master-1, prod-master-2, prod-master-3: EC2 instances"),
        "{stdout}"
    );
}

#[test]
fn a_broken_file_exits_1_naming_line_column_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "name = \"lab\"\n[masters]\nmachines = [{ host = \"10.0.0.1\" }]\n[[pools]]\nname = \"cpu\"\nmachines = [{ host = \"10.0.1.1\" }]\ntaints = [\"a=b:Sometimes\"]\n",
            "cluster.toml:7:11: pools[0].taints[0]: invalid taint effect: Sometimes, unsupported taint effect (allowed: NoSchedule, PreferNoSchedule, NoExecute)\n",
        ),
        (
            "name = \"lab\"\nbinary = \"/nonexistent/berth\"\n[masters]\nmachines = [{ host = \"10.0.0.1\" }]\n",
            "cluster.toml: binary: /nonexistent/berth is not a file; set binary = \"self\" or the path of a berth executable\n",
        ),
    ];
    for (text, want) in cases {
        std::fs::write(dir.path().join("cluster.toml"), text).unwrap();
        let output = Command::new(berth())
            .args(["cluster", "check", "-f", "cluster.toml"])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1));
        assert_eq!(String::from_utf8_lossy(&output.stderr), want);
        assert!(output.stdout.is_empty());
    }
}
