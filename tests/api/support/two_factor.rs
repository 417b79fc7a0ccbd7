//! What the two-factor stories share: a TOTP code computed here, from the secret the setup
//! page shows (with `totp-rs`, as an authenticator app would), enrolment as a person does
//! it, and the sign-in's second step.

use std::time::{SystemTime, UNIX_EPOCH};

use reqwest::StatusCode;
use totp_rs::{Algorithm, Secret, TOTP};

use crate::support::browser::{Browser, PASSWORD, Page};

/// The code an authenticator app shows for `secret` (base32), `offset` 30-second steps
/// from now: 0 is the code on the screen, 1 the next one.
pub fn code_for(secret: &str, offset: i64) -> String {
    let bytes = Secret::Encoded(secret.to_string())
        .to_bytes()
        .expect("the page shows a base32 secret");
    let totp = TOTP::new(Algorithm::SHA1, 6, 1, 30, bytes).expect("a secret of 128 bits or more");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64;
    totp.generate(u64::try_from(now + offset * 30).expect("after 1970"))
}

/// A code that is well formed and, for any secret, not the right one now: the right codes
/// of the steps around now are avoided.
pub fn wrong_code_for(secret: &str) -> String {
    let right: Vec<String> = (-2..=2).map(|o| code_for(secret, o)).collect();
    (0..10)
        .map(|d| format!("{d}{d}{d}{d}{d}{d}"))
        .find(|c| !right.contains(c))
        .expect("at most five of ten are taken")
}

/// The recovery codes a page shows, each in its own `<code>` inside `#recovery-codes`.
pub fn recovery_codes(page: &Page) -> Vec<String> {
    let Some((_, list)) = page.body.split_once("id=\"recovery-codes\"") else {
        return Vec::new();
    };
    let list = list.split("</ul>").next().unwrap_or_default();
    list.split("<code>")
        .skip(1)
        .filter_map(|rest| rest.split_once("</code>").map(|(code, _)| code.to_string()))
        .collect()
}

/// The setup page, read as a person reads it.
pub struct SetupPage {
    pub page: Page,
    pub secret: String,
    pub uri: String,
    pub shown: String,
}

pub async fn open_setup(browser: &Browser) -> SetupPage {
    let page = browser.get("/account/two-factor/setup").await;
    page.assert_html_page(StatusCode::OK);
    SetupPage {
        secret: page
            .element_text("totp-secret")
            .expect("the secret shown as text"),
        uri: page
            .element_text("totp-uri")
            .expect("the otpauth URI shown as text"),
        shown: page
            .field_value("shown")
            .expect("the form names the secret shown"),
        page,
    }
}

/// Sends `code` to confirm the setup page's secret.
pub async fn confirm(browser: &Browser, setup: &SetupPage, code: &str) -> Page {
    browser
        .post(
            "/account/two-factor/setup",
            &[
                ("csrf_token", &setup.page.csrf()),
                ("shown", &setup.shown),
                ("code", code),
            ],
        )
        .await
}

/// A person's second factor, as they saved it.
pub struct Enrolled {
    pub secret: String,
    pub recovery_codes: Vec<String>,
}

/// Sets up an authenticator app with the code on the screen now; insists it worked.
pub async fn enrol(browser: &Browser) -> Enrolled {
    let setup = open_setup(browser).await;
    let done = confirm(browser, &setup, &code_for(&setup.secret, 0)).await;
    done.assert_html_page(StatusCode::OK);
    let codes = recovery_codes(&done);
    assert_eq!(codes.len(), 10, "ten recovery codes; body:\n{}", done.body);
    Enrolled {
        secret: setup.secret,
        recovery_codes: codes,
    }
}

/// Sends `code` at the sign-in's second step.
pub async fn second_step(browser: &Browser, code: &str) -> Page {
    let csrf = browser.csrf_from("/login/two-factor").await;
    browser
        .post(
            "/login/two-factor",
            &[("csrf_token", &csrf), ("code", code)],
        )
        .await
}

/// A new browser that signs in as `email` with its password, and is asked for a code.
pub async fn at_second_step(address: &str, email: &str) -> Browser {
    let browser = Browser::new(address);
    browser
        .log_in(email, PASSWORD)
        .await
        .assert_redirect("/login/two-factor");
    browser
}
