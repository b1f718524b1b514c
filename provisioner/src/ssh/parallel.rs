//! Doing the same work on many machines at once: one progress line per
//! machine (indicatif on a terminal, plain `machine: step` lines otherwise)
//! and a summary of what was done where. The work runs concurrently inside
//! the caller's task; nothing is spawned.

use std::fmt;
use std::future::Future;
use std::io::IsTerminal as _;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Reports the steps of the work on one machine.
#[derive(Debug, Clone)]
pub struct Progress {
    machine: String,
    bar: Option<ProgressBar>,
}

impl Progress {
    /// Says what the work on this machine is doing now.
    pub fn step(&self, message: impl Into<String>) {
        let message = message.into();
        tracing::info!(machine = %self.machine, step = %message);
        match &self.bar {
            Some(bar) => bar.set_message(message),
            None => eprintln!("{}: {message}", self.machine),
        }
    }

    fn finish(&self, outcome: &Outcome) {
        match &self.bar {
            Some(bar) => bar.finish_with_message(outcome.to_string()),
            None => eprintln!("{}: {outcome}", self.machine),
        }
    }
}

/// How the work on one machine ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It finished.
    Done,
    /// It failed; the error's text.
    Failed(String),
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Done => f.write_str("done"),
            Outcome::Failed(why) => write!(f, "failed: {why}"),
        }
    }
}

/// What happened on each machine, in the order the machines were given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Machine name and outcome.
    pub outcomes: Vec<(String, Outcome)>,
}

impl Summary {
    /// Whether every machine is done.
    pub fn all_done(&self) -> bool {
        self.outcomes.iter().all(|(_, o)| *o == Outcome::Done)
    }

    /// The machines that failed, with why.
    pub fn failures(&self) -> impl Iterator<Item = (&str, &str)> {
        self.outcomes.iter().filter_map(|(m, o)| match o {
            Outcome::Failed(why) => Some((m.as_str(), why.as_str())),
            Outcome::Done => None,
        })
    }
}

impl fmt::Display for Summary {
    /// One line per machine, names padded to line up the outcomes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self
            .outcomes
            .iter()
            .map(|(m, _)| m.len())
            .max()
            .unwrap_or(0);
        for (machine, outcome) in &self.outcomes {
            writeln!(f, "{machine:<width$}  {outcome}")?;
        }
        Ok(())
    }
}

/// Runs `work` on every machine concurrently, with a progress line each,
/// and returns what happened where. `name` gives each machine's name
/// (`user@host:port` or the cluster's name for it).
pub async fn for_each<T, E, F, Fut>(machines: &[T], name: impl Fn(&T) -> String, work: F) -> Summary
where
    E: fmt::Display,
    F: Fn(&T, Progress) -> Fut,
    Fut: Future<Output = Result<(), E>>,
{
    let bars = std::io::stderr()
        .is_terminal()
        .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
    let width = machines.iter().map(|m| name(m).len()).max().unwrap_or(0);
    let runs = machines.iter().map(|machine| {
        let machine_name = name(machine);
        let bar = bars.as_ref().map(|bars| {
            let bar = bars.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template(&format!(
                    "{{prefix:<{width}}} {{spinner}} {{wide_msg}}"
                ))
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_prefix(machine_name.clone());
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        let progress = Progress {
            machine: machine_name.clone(),
            bar,
        };
        let work = &work;
        async move {
            progress.step("starting");
            let outcome = match work(machine, progress.clone()).await {
                Ok(()) => Outcome::Done,
                Err(e) => Outcome::Failed(e.to_string()),
            };
            progress.finish(&outcome);
            (machine_name, outcome)
        }
    });
    Summary {
        outcomes: futures::future::join_all(runs).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_lines_up_machines() {
        let summary = Summary {
            outcomes: vec![
                ("root@10.0.0.1:22".into(), Outcome::Done),
                ("a@b:2".into(), Outcome::Failed("refused".into())),
            ],
        };
        assert_eq!(
            summary.to_string(),
            "root@10.0.0.1:22  done\na@b:2             failed: refused\n"
        );
        assert!(!summary.all_done());
        assert_eq!(
            summary.failures().collect::<Vec<_>>(),
            [("a@b:2", "refused")]
        );
    }

    #[tokio::test]
    async fn every_machine_gets_an_outcome_in_order() {
        let machines = [1u32, 2, 3, 4];
        let summary = for_each(
            &machines,
            |m| format!("m{m}"),
            |m, progress| {
                let m = *m;
                async move {
                    progress.step("working");
                    tokio::time::sleep(Duration::from_millis(u64::from(40 - m * 10))).await;
                    if m % 2 == 0 {
                        Err(format!("even {m}"))
                    } else {
                        Ok(())
                    }
                }
            },
        )
        .await;
        assert_eq!(
            summary.outcomes,
            vec![
                ("m1".to_string(), Outcome::Done),
                ("m2".to_string(), Outcome::Failed("even 2".into())),
                ("m3".to_string(), Outcome::Done),
                ("m4".to_string(), Outcome::Failed("even 4".into())),
            ]
        );
    }
}
