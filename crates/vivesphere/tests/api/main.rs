//! Black-box tests of the `vivesphere` app: the real app (or the real binary) on a random
//! port, with its own data directory, and with PostgreSQL and NATS when configured.

mod helpers;

mod config;
mod health;
mod postgres_and_nats;
mod process;
mod routes;
