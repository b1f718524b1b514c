//! Putting a node's Service rules into the kernel with the least
//! disruption. Changes are made in place in the live table. A whole
//! rewrite (at start-up, or after a failed write) is loaded under the
//! node's other table name beside the live table, unhooked and in parallel
//! parts for large tables, then swapped in with one transaction: packets
//! always meet a complete table, and 10,000 Services load in under a second.

use super::rules::Rules;
use crate::network::nft::{self, NftError};

/// Below this many elements, one nft process loads the table faster than
/// several would.
const PARALLEL_FROM_ELEMENTS: usize = 10_000;
/// The most nft processes a load runs at once.
const MOST_LOADERS: usize = 4;

/// The two table names a node's rules alternate between.
pub fn table_names(node: &str) -> [String; 2] {
    let base = format!("berth_{:08x}", crate::config::name_hash(node));
    [base.clone(), format!("{base}_b")]
}

/// Writes [`Rules`] for one node, remembering which table is live and what
/// it holds.
pub struct TableWriter {
    names: [String; 2],
    /// Index into `names` of the hooked table, if any.
    live: Option<usize>,
    /// What the live table holds, when known exactly.
    applied: Option<Rules>,
    /// nft processes a large load may use.
    loaders: usize,
}

impl TableWriter {
    /// A writer for node `node`'s tables; finds which one is live (an agent
    /// restarting leaves its table working), so the first write loads the
    /// other one.
    pub async fn new(node: &str) -> Self {
        let names = table_names(node);
        let mut live = None;
        for (index, name) in names.iter().enumerate() {
            if nft::exists(&format!("chain ip {name} prerouting")).await {
                live = Some(index);
            }
        }
        let loaders = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .min(MOST_LOADERS);
        Self {
            names,
            live,
            applied: None,
            loaders,
        }
    }

    /// The live table's name, if one is hooked in.
    pub fn live_table(&self) -> Option<&str> {
        self.live.map(|index| self.names[index].as_str())
    }

    /// Brings the kernel to `wanted`: in place when the live table's content
    /// is known, else (at start-up, after a failed write) by a whole
    /// rewrite. Returns whether anything was written.
    pub async fn write(&mut self, wanted: Rules) -> Result<bool, NftError> {
        let delta = match (self.live_table(), self.applied.as_ref()) {
            (Some(live), Some(applied)) => Some(wanted.delta(live, applied)),
            _ => None,
        };
        match delta {
            Some(delta) if delta.is_empty() => Ok(false),
            Some(delta) => match nft::apply(&delta).await {
                Ok(()) => {
                    self.applied = Some(wanted);
                    Ok(true)
                }
                Err(e) => {
                    // Whatever the table holds now, the next write replaces it whole.
                    self.applied = None;
                    Err(e)
                }
            },
            None => self.rewrite(wanted).await.map(|()| true),
        }
    }

    /// Loads `wanted` as the other table and swaps it in, whatever the live
    /// table holds.
    pub async fn rewrite(&mut self, wanted: Rules) -> Result<(), NftError> {
        self.applied = None;
        let next = self.live.map_or(0, |live| 1 - live);
        let (table, old) = (&self.names[next], &self.names[1 - next]);
        let loaders = if wanted.element_count() >= PARALLEL_FROM_ELEMENTS {
            self.loaders
        } else {
            1
        };
        let replacement = wanted.replacement(table, Some(old), loaders);
        let loaded = if replacement.batches.len() <= 1 {
            nft::apply(&replacement.single()).await
        } else {
            load_in_parts(
                &replacement.skeleton,
                &replacement.batches,
                &replacement.swap,
            )
            .await
        };
        match loaded {
            Ok(()) => {
                self.live = Some(next);
                self.applied = Some(wanted);
                Ok(())
            }
            Err(e) => {
                // Never hooked: drop what was loaded so far.
                let _ =
                    nft::apply(&format!("table ip {table} {{}}\ndelete table ip {table}\n")).await;
                Err(e)
            }
        }
    }
}

/// The skeleton, then every batch at once, then the swap.
async fn load_in_parts(skeleton: &str, batches: &[String], swap: &str) -> Result<(), NftError> {
    nft::apply(skeleton).await?;
    let loads = batches.iter().map(|batch| nft::apply(batch));
    for result in futures::future::join_all(loads).await {
        result?;
    }
    nft::apply(swap).await
}

#[cfg(test)]
mod tests {
    use super::super::endpoints::service_ports;
    use super::super::rules::rules;
    use super::*;
    use serde_json::json;

    fn wanted(endpoints: &[&str], affinity: bool) -> Rules {
        let service = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"clusterIP": "10.43.0.10", "ports": [{"port": 80, "protocol": "TCP"}],
                     "sessionAffinity": if affinity { "ClientIP" } else { "None" }}
        }))
        .unwrap();
        let endpoints: Vec<_> = endpoints
            .iter()
            .map(|ip| json!({"addresses": [ip], "conditions": {"ready": true}}))
            .collect();
        let slice = serde_json::from_value(json!({
            "metadata": {"name": "web-1", "namespace": "default", "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4", "ports": [{"port": 8080, "protocol": "TCP"}], "endpoints": endpoints
        }))
        .unwrap();
        rules(&service_ports(&[service], &[slice], "n1"), None)
    }

    async fn tables() -> String {
        let output = tokio::process::Command::new("nft")
            .args(["list", "tables", "ip"])
            .output()
            .await
            .unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    async fn changes_in_place_and_swaps_whole_rewrites() {
        let [first, second] = table_names("n1");
        let mut writer = TableWriter::new("n1").await;
        assert_eq!(writer.live_table(), None);
        assert!(writer.write(wanted(&["10.42.0.5"], false)).await.unwrap());
        assert_eq!(writer.live_table(), Some(first.as_str()));
        // Nothing changed: nothing written.
        assert!(!writer.write(wanted(&["10.42.0.5"], false)).await.unwrap());
        // An endpoint moved: the live table changes in place.
        assert!(writer.write(wanted(&["10.42.0.6"], false)).await.unwrap());
        assert_eq!(writer.live_table(), Some(first.as_str()));
        // New chains and sets are made in place too.
        assert!(writer.write(wanted(&["10.42.0.6"], true)).await.unwrap());
        assert!(writer
            .write(wanted(&["10.42.0.6", "10.42.0.8"], true))
            .await
            .unwrap());
        assert_eq!(writer.live_table(), Some(first.as_str()));
        // A whole rewrite loads the other table and swaps it in, the old one gone.
        writer.rewrite(wanted(&["10.42.0.6"], true)).await.unwrap();
        assert_eq!(writer.live_table(), Some(second.as_str()));
        let listed = tables().await;
        assert!(
            listed.contains(&format!("table ip {second}\n"))
                && !listed.contains(&format!("table ip {first}\n")),
            "{listed}"
        );
        // An agent starting again finds the live table and loads beside it.
        let mut restarted = TableWriter::new("n1").await;
        assert_eq!(restarted.live_table(), Some(second.as_str()));
        restarted
            .rewrite(wanted(&["10.42.0.7"], true))
            .await
            .unwrap();
        assert_eq!(restarted.live_table(), Some(first.as_str()));
        let table = tokio::process::Command::new("nft")
            .args(["list", "table", "ip", &first])
            .output()
            .await
            .unwrap();
        let listed = String::from_utf8_lossy(&table.stdout);
        assert!(listed.contains("dnat to 10.42.0.7:8080"), "{listed}");
    }

    #[test]
    fn tables_alternate_in_a_network_namespace_of_the_tests_own() {
        // Needs root and nft; the namespace is this thread's alone.
        let root = unsafe { libc::geteuid() } == 0;
        if !root
            || std::process::Command::new("nft")
                .arg("--version")
                .output()
                .is_err()
        {
            eprintln!("skipped: needs root and nft");
            return;
        }
        std::thread::spawn(|| {
            // SAFETY: unshare changes this new thread's namespaces only.
            assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWNET) }, 0);
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(changes_in_place_and_swaps_whole_rewrites());
        })
        .join()
        .unwrap();
    }
}
