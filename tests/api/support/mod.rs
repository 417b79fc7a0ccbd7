//! What the stories stand on, split by role: each test's own store (`store`), the API
//! client with the server in process (`api`), the real binary as a process (`process`), a
//! PostgreSQL cluster of a test's own (`pg_cluster`), the browser-like dashboard client
//! (`browser`), the second factor as a person sets it up and types it (`two_factor`), what
//! the accounts-and-admins stories share (`admin`), a real SMTP server (`smtp`, which leans
//! on nothing here, so the browser story can include it too), and what the mail stories
//! share (`mail`), a real OpenID Provider for single sign-on (`oidc`), and one that forges
//! its ID tokens (`forged_provider`). Each leans only on
//! the ones listed before it.

pub mod store;

pub mod api;

pub mod process;

pub mod pg_cluster;

pub mod browser;

pub mod two_factor;

pub mod admin;

pub mod smtp;

pub mod mail;

pub mod oidc;

pub mod forged_provider;
