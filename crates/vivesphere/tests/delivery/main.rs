//! Delivery: the deploy tool's decisions (a stand-in kubectl plays the cluster) and the
//! release smoke test against a running system (docs/delivery.md).

mod deploy_tool;
#[path = "../api/helpers.rs"]
#[allow(dead_code)]
mod helpers;
mod smoke;
