//! Voluntary disruption of NodePool machines (Karpenter's semantics):
//! consolidation of autoscaled pools (empty or underutilized nodes, after
//! `consolidateAfter`, never below `minReplicas`), replacement of drifted
//! and expired machines (replacement first, old claim deleted once it is
//! Ready), all within the pool's disruption budgets and held by
//! PodDisruptionBudgets and `berth.dev/do-not-disrupt`. The decisions are
//! pure (`decide`, `budget`, `fit`, `drift`, `blockers`, `marks`,
//! `settings`); `reconcile` is the one loop that observes and acts.

pub mod blockers;
pub mod budget;
pub mod decide;
pub mod drift;
pub mod fit;
pub mod marks;
pub mod reconcile;
pub mod settings;

pub use reconcile::run;
