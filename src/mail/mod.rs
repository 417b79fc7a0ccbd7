//! Mail: the SMTP relay's settings, the messages' templates, and the outbox's sender.
//! Messages are queued by the store (`db::outbox`) in the transaction of the change that
//! causes them; nothing here is called on a request's path.

pub mod render;
pub mod sender;
mod smtp_url;
pub mod transport;

pub use smtp_url::{Security, SmtpUrl};
pub use transport::{Mailer, SendError};
