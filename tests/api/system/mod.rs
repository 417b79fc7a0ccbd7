//! Stories about processes rather than routes: what survives a restart and `kill -9`, a
//! full disk and other faults, requests racing each other and the write path, revocation
//! across many tokens and servers, backups, `/readyz` with its store gone, the suite on
//! PostgreSQL, several instances on one store, and what the server logs.

mod backup;
mod concurrency;
mod faults;
mod instances;
mod logs;
mod migration_parity;
mod persistence;
mod postgres;
mod postgres_tls;
mod readyz;
mod revocation_scale;
mod write_path;
