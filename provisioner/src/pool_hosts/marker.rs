//! The marker file that ties a bare machine to a NodeClaim: the "tag" of a
//! cloud instance, as `key=value` lines naming cluster, pool and claim.

/// Who holds a host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Marker {
    /// The cluster (the controller's `--nodepool-ssh-cluster`).
    pub cluster: String,
    /// The NodePool.
    pub pool: String,
    /// The NodeClaim.
    pub claim: String,
}

impl Marker {
    /// The file's text.
    pub fn to_text(&self) -> String {
        format!(
            "cluster={}\npool={}\nclaim={}\n",
            self.cluster, self.pool, self.claim
        )
    }

    /// Reads the file's text; unknown keys are ignored, missing ones empty
    /// (a marker caught mid-write holds the host for nobody we know).
    pub fn parse(text: &str) -> Self {
        let mut marker = Self::default();
        for line in text.lines() {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let slot = match key.trim() {
                "cluster" => &mut marker.cluster,
                "pool" => &mut marker.pool,
                "claim" => &mut marker.claim,
                _ => continue,
            };
            *slot = value.trim().to_owned();
        }
        marker
    }

    /// Whether it was written by `cluster` for `pool`.
    pub fn belongs_to(&self, cluster: &str, pool: &str) -> bool {
        self.cluster == cluster && self.pool == pool
    }
}

/// What the marker scripts print: `held` then the marker, or nothing when
/// the host holds none.
pub(crate) fn held(stdout: &str) -> Option<Marker> {
    let rest = stdout
        .strip_prefix("held\n")
        .or_else(|| (stdout.trim() == "held").then_some(""))?;
    Some(Marker::parse(rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_round_trip_and_tolerate_partial_files() {
        let marker = Marker {
            cluster: "prod".into(),
            pool: "gpu".into(),
            claim: "gpu-abcde".into(),
        };
        assert_eq!(Marker::parse(&marker.to_text()), marker);
        assert!(marker.belongs_to("prod", "gpu"));
        assert!(!marker.belongs_to("prod", "cpu"));
        assert_eq!(
            Marker::parse("cluster=prod\npo"),
            Marker {
                cluster: "prod".into(),
                ..Marker::default()
            }
        );
        assert_eq!(held(""), None);
        assert_eq!(held("held\n"), Some(Marker::default()));
        assert_eq!(held(&format!("held\n{}", marker.to_text())), Some(marker));
    }
}
