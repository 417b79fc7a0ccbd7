//! `/signup`: a person creates an account, becomes its owner and lands signed in; bad input
//! comes back with what to fix, keeping what was typed except the passwords.

use reqwest::StatusCode;
use reqwest::header::RETRY_AFTER;

use crate::support::api::spawn_app;
use crate::support::browser::{
    Browser, CaseFailures, PASSWORD, email_for, refused_form_problems, signed_up,
};

#[tokio::test]
async fn signing_up_creates_the_account_and_signs_its_owner_in() {
    let app = spawn_app().await;
    let browser = Browser::new(&app.address);

    let form = browser.get("/signup").await;
    form.assert_html_page(StatusCode::OK);
    for field in [
        "account_name",
        "email",
        "password",
        "password_confirmation",
        "csrf_token",
    ] {
        assert!(
            form.body.contains(&format!("name=\"{field}\"")),
            "the sign-up form should have a {field} field; body:\n{}",
            form.body
        );
    }

    let email = email_for("Acme Rockets owner");
    browser
        .submit_signup("Acme Rockets", &email, PASSWORD, PASSWORD)
        .await
        .assert_redirect("/tokens");

    let tokens = browser.get("/tokens").await;
    tokens
        .assert_html_page(StatusCode::OK)
        .assert_contains("Acme Rockets")
        .assert_contains(&email);
}

/// What the person typed into the sign-up form.
struct Typed<'a> {
    account_name: &'a str,
    email: &'a str,
    password: &'a str,
    confirmation: &'a str,
}

#[tokio::test]
async fn bad_sign_up_input_is_refused_with_what_to_fix_keeping_the_name_and_email_but_no_password()
{
    let app = spawn_app().await;
    let taken = email_for("Already Here");
    signed_up(&app.address, "Already Here").await;
    let taken_other_case = taken.to_uppercase();

    // Each password is unique to its case, so the page echoing one can't hide behind another.
    let cases = [
        (
            "blank account name",
            Typed {
                account_name: "   ",
                email: "blank.name@example.test",
                password: "Gq4Wn8Tz2Lp6Rx",
                confirmation: "Gq4Wn8Tz2Lp6Rx",
            },
            "The account name can't be blank.",
        ),
        (
            "bad email",
            Typed {
                account_name: "Bad Email Inc",
                email: "not-an-email",
                password: "Hv5Kc9Jm3Qs7Yd",
                confirmation: "Hv5Kc9Jm3Qs7Yd",
            },
            "\"not-an-email\" is not an email address.",
        ),
        (
            "short password",
            Typed {
                account_name: "Short Pw Inc",
                email: "short.pw@example.test",
                password: "Zq7Wv3Bn",
                confirmation: "Zq7Wv3Bn",
            },
            "The password must have at least 12 characters.",
        ),
        (
            "mismatched confirmation",
            Typed {
                account_name: "Mismatch Inc",
                email: "mismatch@example.test",
                password: "Kp4Rt8Lm2Nx9Vb",
                confirmation: "Ud6Fe1Sg5Hw3Jo",
            },
            "The two passwords don't match.",
        ),
        (
            "duplicate email",
            Typed {
                account_name: "Copycat Inc",
                email: &taken,
                password: "Mc2Xv7Bn4Lk9Pj",
                confirmation: "Mc2Xv7Bn4Lk9Pj",
            },
            "already has a Keyward sign-in",
        ),
        (
            "duplicate email in other case",
            Typed {
                account_name: "Copycat Two",
                email: &taken_other_case,
                password: "Rf8Tg3Yh6Uj1Ik",
                confirmation: "Rf8Tg3Yh6Uj1Ik",
            },
            "already has a Keyward sign-in",
        ),
    ];

    let mut failures = CaseFailures::default();
    for (label, typed, message) in cases {
        // A browser of its own, so no case signs in another's session.
        let browser = Browser::new(&app.address);
        let page = browser
            .submit_signup(
                typed.account_name,
                typed.email,
                typed.password,
                typed.confirmation,
            )
            .await;
        let mut problems = refused_form_problems(
            &page,
            message,
            &[("account_name", typed.account_name), ("email", typed.email)],
        );
        for secret in [typed.password, typed.confirmation] {
            if page.body.contains(secret) {
                problems.push(format!("the page echoes the password {secret:?}"));
            }
        }
        let after = browser.get("/tokens").await;
        if after.status != StatusCode::SEE_OTHER {
            problems.push(format!(
                "the refused sign-up left the browser signed in (GET /tokens: {})",
                after.status
            ));
        }
        failures.record(label, problems, &page);
    }
    failures.assert_none("bad sign-ups not refused as contracted");
}

#[tokio::test]
async fn an_account_name_hiding_a_direction_override_is_refused_with_a_sentence_naming_it() {
    let app = spawn_app().await;
    let browser = Browser::new(&app.address);
    // Shown in a right-to-left override, "Acme \u{202E}tsetorp" would read "Acme protest".
    let name = "Acme \u{202E}tsetorp";

    let page = browser
        .submit_signup(name, "override@example.test", PASSWORD, PASSWORD)
        .await;

    let problems = refused_form_problems(
        &page,
        "The account name can't contain invisible formatting characters such as zero-width \
         spaces or direction overrides (it has U+202E).",
        &[("account_name", name), ("email", "override@example.test")],
    );
    let mut failures = CaseFailures::default();
    failures.record("right-to-left override", problems, &page);
    failures.assert_none("a name with a format character was not refused as contracted");
    browser.get("/tokens").await.assert_redirect("/login");
}

#[tokio::test]
async fn an_email_outside_the_html_grammar_is_refused_with_a_sentence_saying_which_part() {
    let app = spawn_app().await;
    let browser = Browser::new(&app.address);
    let email = "ada@exa_mple.com";

    let page = browser
        .submit_signup("Underscore Inc", email, PASSWORD, PASSWORD)
        .await;

    let problems = refused_form_problems(
        &page,
        "\"ada@exa_mple.com\" is not an email address. After the @ comes a domain such as \
         example.com: letters, digits and dashes, in parts joined by single dots.",
        &[("account_name", "Underscore Inc"), ("email", email)],
    );
    let mut failures = CaseFailures::default();
    failures.record("underscore in the domain", problems, &page);
    failures.assert_none("an email outside the grammar was not refused as contracted");
    browser.get("/tokens").await.assert_redirect("/login");
}

/// Sign-ups one address may make in an hour; the next is refused.
const SIGN_UPS_PER_ADDRESS: usize = 20;

#[tokio::test]
async fn a_sign_up_for_a_taken_email_costs_one_hash_and_says_no_more_whatever_the_password() {
    let app = spawn_app().await;
    let taken = email_for("Quiet Owner");
    let owner = Browser::new(&app.address);
    owner.sign_up("Hidden Venture", &taken).await;
    let hashes = || app.state.passwords.stats().completed;

    // A free email costs one argon2 hash...
    let before = hashes();
    Browser::new(&app.address)
        .sign_up("Fresh Start", &email_for("Fresh Start"))
        .await;
    assert_eq!(hashes() - before, 1, "a new sign-up runs one hash");

    // ...and so does a taken one, whether the password typed is the owner's or not.
    let mut pages = Vec::new();
    for password in [PASSWORD, "Wq3Er7Ty1Ui5Op"] {
        let prober = Browser::new(&app.address);
        let before = hashes();
        let page = prober
            .submit_signup("Copycat Inc", &taken, password, password)
            .await;
        assert_eq!(
            hashes() - before,
            1,
            "a taken email costs the same one hash as a free one"
        );
        page.assert_html_page(StatusCode::UNPROCESSABLE_ENTITY)
            .assert_contains("already has a Keyward sign-in");
        prober.get("/tokens").await.assert_redirect("/login");
        pages.push(page.body.replace(&page.csrf(), "CSRF"));
    }
    assert_eq!(
        pages[0], pages[1],
        "the answer must not depend on whether the password typed is the owner's"
    );
    for secret in ["Hidden Venture", "hidden-venture"] {
        assert!(
            !pages[0].contains(secret),
            "the answer names nothing of the existing user's ({secret:?}):\n{}",
            pages[0]
        );
    }

    // The sign-in is untouched: the owner's password still works, and no other does.
    Browser::new(&app.address)
        .log_in(&taken, "Wq3Er7Ty1Ui5Op")
        .await
        .assert_html_page(StatusCode::UNAUTHORIZED);
    let back = Browser::new(&app.address);
    back.log_in(&taken, PASSWORD)
        .await
        .assert_redirect("/tokens");
    back.get("/tokens")
        .await
        .assert_html_page(StatusCode::OK)
        .assert_contains("Hidden Venture");
}

#[tokio::test]
async fn sign_ups_from_one_address_are_limited_and_another_address_is_not() {
    let app = spawn_app().await;
    let taken = email_for("Probed Person");
    Browser::from_source(&app.address, [127, 0, 0, 20])
        .sign_up("Probed Person", &taken)
        .await;

    // Someone at one address probes emails with sign-ups, some free and some taken.
    let prober = [127, 0, 0, 21];
    for i in 0..SIGN_UPS_PER_ADDRESS {
        let browser = Browser::from_source(&app.address, prober);
        let email = if i % 2 == 0 {
            email_for(&format!("probe {i}"))
        } else {
            taken.clone()
        };
        let page = browser
            .submit_signup(&format!("Probe {i}"), &email, PASSWORD, PASSWORD)
            .await;
        assert!(
            [StatusCode::SEE_OTHER, StatusCode::UNPROCESSABLE_ENTITY].contains(&page.status),
            "sign-up {i} should be answered, not limited yet: {}\n{}",
            page.status,
            page.body
        );
    }

    let hashes = app.state.passwords.stats().completed;
    let one_too_many = Browser::from_source(&app.address, prober)
        .submit_signup("Probe Last", &taken, PASSWORD, PASSWORD)
        .await;
    one_too_many
        .assert_html_page(StatusCode::TOO_MANY_REQUESTS)
        .assert_contains("Too many sign-ups from your network. Try again in");
    assert!(
        !one_too_many
            .text()
            .contains("already has a Keyward sign-in"),
        "a limited sign-up says nothing about the email"
    );
    let retry_after: Option<u64> = one_too_many
        .header(RETRY_AFTER.as_str())
        .and_then(|v| v.parse().ok());
    assert!(
        retry_after.is_some_and(|secs| (1..=3600).contains(&secs)),
        "the 429 says when to retry, within the hour: {:?}",
        one_too_many.headers
    );
    assert_eq!(
        app.state.passwords.stats().completed,
        hashes,
        "a refused sign-up costs no hash"
    );

    // Someone else, elsewhere, signs up as usual.
    Browser::from_source(&app.address, [127, 0, 0, 22])
        .sign_up("Elsewhere Inc", &email_for("Elsewhere Inc"))
        .await;
}

/// A server whose operator set `KEYWARD_SIGNUP` to `mode`.
async fn spawn_with_signup(mode: keyward::domain::SignupMode) -> crate::support::api::TestApp {
    crate::support::api::spawn_app_with(|config| config.signup = mode).await
}

#[tokio::test]
async fn when_sign_up_is_not_open_the_form_is_refused_and_the_sign_in_page_hides_the_link() {
    use keyward::domain::SignupMode;
    for (mode, sentence) in [
        (
            SignupMode::InviteOnly,
            "Sign-up on this server is by invitation only.",
        ),
        (SignupMode::Closed, "Sign-up on this server is closed"),
    ] {
        let app = spawn_with_signup(mode).await;
        let browser = Browser::new(&app.address);
        let page = browser.get("/signup").await;
        page.assert_html_page(StatusCode::FORBIDDEN)
            .assert_contains(sentence);
        // A form posted anyway creates nothing.
        let csrf = browser.csrf_from("/login").await;
        let email = email_for("not open");
        let posted = browser
            .post(
                "/signup",
                &[
                    ("csrf_token", &csrf),
                    ("account_name", "Sneaky Co"),
                    ("email", &email),
                    ("password", PASSWORD),
                    ("password_confirmation", PASSWORD),
                ],
            )
            .await;
        assert_eq!(posted.status, StatusCode::FORBIDDEN, "{mode:?}");
        let login = browser.get("/login").await;
        assert!(!login.body.contains("href=\"/signup\""), "{mode:?}");
        assert_ne!(
            browser.log_in(&email, PASSWORD).await.status,
            StatusCode::SEE_OTHER,
            "{mode:?}: no sign-in was made"
        );
    }
    let open = spawn_app().await;
    Browser::new(&open.address)
        .get("/login")
        .await
        .assert_contains("href=\"/signup\"");
}

#[tokio::test]
async fn invite_only_lets_an_invitation_make_a_sign_in_and_closed_does_not() {
    use crate::support::admin::{accept_as_new_user, invitation_link};
    use keyward::domain::SignupMode;

    for (mode, joins) in [(SignupMode::InviteOnly, true), (SignupMode::Closed, false)] {
        let app = spawn_with_signup(mode).await;
        let owner_email = email_for(&format!("owner {mode:?}"));
        crate::support::api::keyward_cli(
            &app.db.path,
            &[
                "account",
                "create",
                "--name",
                "Owned Co",
                "--owner",
                &owner_email,
            ],
            &format!("{PASSWORD}\n"),
        )
        .unwrap_or_else(|e| panic!("account create --owner: {e}"));
        let owner = Browser::new(&app.address);
        owner
            .log_in(&owner_email, PASSWORD)
            .await
            .assert_redirect("/tokens");
        let link = invitation_link(&owner, &email_for("newcomer"), "member").await;
        let answer = accept_as_new_user(&Browser::new(&app.address), &link, PASSWORD).await;
        if joins {
            answer.assert_redirect("/tokens");
        } else {
            answer
                .assert_html_page(StatusCode::FORBIDDEN)
                .assert_contains("an invitation can't create a sign-in");
        }
    }
}
