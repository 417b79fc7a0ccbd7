//! The cookie that carries a sign-in from its right password to its second step; the
//! store keeps only its digest (`db::two_factor`), so the waiting step can't be carried to
//! another browser, nor named from a copy of the database.

use super::step_cookie::StepCookie;

pub const COOKIE: StepCookie = StepCookie::new("__Host-keyward_sign_in", "keyward_sign_in");
