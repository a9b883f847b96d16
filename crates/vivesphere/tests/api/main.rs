//! Black-box tests of the `vivesphere` app: the real app (or the real binary) on a random
//! port, with its own data directory, and with PostgreSQL and NATS when configured.

mod auth_helpers;
mod bot_summaries;
mod botdata_helpers;
mod bots_batch;
mod bots_helpers;
#[path = "../common/bots.rs"]
mod common;
mod console_helpers;
mod helpers;
#[path = "../common/volume.rs"]
mod volume;
mod webhook_receiver;

mod auth_admin;
mod auth_login;
mod auth_mfa;
mod auth_oauth;
mod auth_tokens;

mod botdata;
mod botdata_keys;

mod backup;
mod bot_imports;
mod bots;
mod bots_cluster;
mod bots_execution;
mod budgets;
mod calendar;

mod config;
mod connect;
mod console;
mod console_bot;
mod console_browser;
mod console_calendar;
mod console_people;
mod console_roles;
mod demo;
mod disclosure;
mod disk_full;
mod gateway;
mod hardening;
mod health;
mod imports;
mod logs;
mod logs_actors;
mod media;
mod openapi_examples;
mod outage;
mod postgres_and_nats;
mod process;
mod recurrences;
mod replies;
mod reviews;
mod routes;
mod settings;
mod slots;
mod sweep;
mod threads;
mod usage;
mod webhooks;
mod x_apps;
mod x_limits;
