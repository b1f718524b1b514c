//! The `autoscaling` group's kinds: HorizontalPodAutoscalers, served as v2
//! (the stored form) and v1 (converted with upstream's rules).

pub mod conversion;
pub mod horizontalpodautoscaler;
