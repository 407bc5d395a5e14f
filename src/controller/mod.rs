//! The controller domain: validation, placement, quota and records. Knows no
//! proto and no kube.
pub mod params;
