//! The GPUs' telemetry on the agent's `/metrics`, under the names and
//! labels dcgm-exporter gives them (its default counters), so dashboards
//! and alerts written for dcgm-exporter work unchanged. Read from NVML at
//! every scrape; the pod, namespace and container labels name the
//! container the GPU was given to, as dcgm-exporter's pod mapping does.
//! A scrape only reads; a failed reading drops its row, never the scrape.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;

use crate::gpu::{Gpu, GpuMonitor, Sample};
use crate::lock;
use crate::pods::gpus::GpuOwners;

/// One metric: dcgm-exporter's name, its help text, and the value a
/// reading gives (none: no row for that GPU).
type Field = (&'static str, &'static str, fn(&Reading) -> Option<f64>);

/// A GPU's reading at one scrape.
struct Reading {
    sample: Sample,
    last_xid: Option<u64>,
}

const MIB: f64 = 1024.0 * 1024.0;

/// dcgm-exporter's default counters that NVML can answer. The ECC totals
/// are counters there too, but typed as gauges here so their names stay
/// exactly dcgm-exporter's (a counter's samples would gain `_total`).
const FIELDS: [Field; 11] = [
    (
        "DCGM_FI_DEV_SM_CLOCK",
        "SM clock frequency (in MHz).",
        |r| r.sample.sm_clock_mhz.map(f64::from),
    ),
    (
        "DCGM_FI_DEV_MEM_CLOCK",
        "Memory clock frequency (in MHz).",
        |r| r.sample.memory_clock_mhz.map(f64::from),
    ),
    ("DCGM_FI_DEV_GPU_TEMP", "GPU temperature (in C).", |r| {
        r.sample.temperature_celsius.map(f64::from)
    }),
    ("DCGM_FI_DEV_POWER_USAGE", "Power draw (in W).", |r| {
        r.sample.power_milliwatts.map(|mw| f64::from(mw) / 1000.0)
    }),
    ("DCGM_FI_DEV_GPU_UTIL", "GPU utilization (in %).", |r| {
        r.sample.utilization_percent.map(f64::from)
    }),
    (
        "DCGM_FI_DEV_MEM_COPY_UTIL",
        "Memory utilization (in %).",
        |r| r.sample.memory_utilization_percent.map(f64::from),
    ),
    (
        "DCGM_FI_DEV_FB_FREE",
        "Framebuffer memory free (in MiB).",
        |r| r.sample.memory_free_bytes.map(|b| (b as f64 / MIB).floor()),
    ),
    (
        "DCGM_FI_DEV_FB_USED",
        "Framebuffer memory used (in MiB).",
        |r| r.sample.memory_used_bytes.map(|b| (b as f64 / MIB).floor()),
    ),
    (
        "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL",
        "Total number of single-bit volatile ECC errors.",
        |r| r.sample.ecc_single_bit_volatile.map(|n| n as f64),
    ),
    (
        "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL",
        "Total number of double-bit volatile ECC errors.",
        |r| r.sample.ecc_double_bit_volatile.map(|n| n as f64),
    ),
    (
        "DCGM_FI_DEV_XID_ERRORS",
        "Value of the last XID error encountered.",
        |r| Some(r.last_xid.unwrap_or(0) as f64),
    ),
];

/// Reads the GPUs of one node at each scrape.
#[derive(Debug)]
pub struct DcgmCollector {
    monitor: Arc<GpuMonitor>,
    owners: GpuOwners,
    hostname: String,
}

impl DcgmCollector {
    /// A collector over `monitor`'s GPUs on node `hostname`, labelled with
    /// the containers `owners` names.
    pub fn new(monitor: Arc<GpuMonitor>, owners: GpuOwners, hostname: &str) -> Self {
        Self {
            monitor,
            owners,
            hostname: hostname.to_owned(),
        }
    }

    fn labels(&self, gpu: &Gpu) -> Vec<(&'static str, String)> {
        let mut labels = vec![
            ("gpu", gpu.index.to_string()),
            ("UUID", gpu.uuid.clone()),
            ("device", format!("nvidia{}", gpu.minor)),
            ("modelName", gpu.name.clone()),
            ("Hostname", self.hostname.clone()),
        ];
        if let Some(owner) = lock(&self.owners).get(&gpu.uuid) {
            labels.push(("container", owner.container.clone()));
            labels.push(("namespace", owner.namespace.clone()));
            labels.push(("pod", owner.pod.clone()));
        }
        labels
    }
}

impl Collector for DcgmCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let gpus = self.monitor.gpus();
        let readings: Vec<Reading> = self
            .monitor
            .sample()
            .into_iter()
            .zip(gpus)
            .map(|(sample, gpu)| Reading {
                last_xid: self.monitor.last_xid(&gpu.uuid),
                sample,
            })
            .collect();
        let labels: Vec<_> = gpus.iter().map(|g| self.labels(g)).collect();
        for (name, help, value) in FIELDS {
            // A lost GPU has no readings; its XID row stays.
            let rows: Vec<(usize, f64)> = readings
                .iter()
                .enumerate()
                .filter_map(|(i, r)| value(r).map(|v| (i, v)))
                .collect();
            if rows.is_empty() {
                continue;
            }
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for (i, v) in rows {
                ConstGauge::new(v).encode(family.encode_family(&labels[i])?)?;
            }
        }
        Ok(())
    }
}
