//! The `batch` group's kinds: Jobs and CronJobs, with the Job spec rules both
//! share and the cron schedule grammar CronJobs are checked against.

pub mod cron;
pub mod cronjob;
pub mod job;
pub mod spec;
