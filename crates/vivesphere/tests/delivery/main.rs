//! Delivery: the deploy tool's decisions (a stand-in kubectl plays the cluster) and the
//! release smoke test against a running system (docs/delivery.md).

mod deploy_tool;
#[path = "../api/helpers.rs"]
#[allow(dead_code)]
mod helpers;
#[path = "../manifests/render.rs"]
#[allow(dead_code)]
mod render;
mod smoke;

use std::process::Output;

/// A finished command as a failed assertion shows it.
fn shown(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
