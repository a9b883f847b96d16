//! The `vivesphere` binary's library half: the target registry, configuration assembly, and
//! the app that serves one target or all of them. Tests use it to spawn the real app.

pub mod app;
pub mod backup;
pub mod botdata;
pub mod demo;
pub mod index_page;
pub mod kong;
pub mod local_cluster;
pub mod registry;
