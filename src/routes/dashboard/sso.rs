//! Single sign-on through an OpenID Connect provider: `/auth/oidc` starts a sign-in (or, for
//! sudo mode, a fresh proof), `/auth/oidc/callback` finishes it, and `/auth/oidc/welcome`
//! shows a person in no account yet their open invitations (`/auth/oidc/join` takes one
//! up) or lets them name an account of their own. All 404 while SSO is off.
//!
//! A flow's state lives in the store (`db::oidc`), used once, bound to the browser that
//! started it by a cookie of its own. Every way a callback can go wrong is a page with a
//! sentence and a 4xx, and leaves no session.

use actix_web::cookie::{Cookie, SameSite, time::Duration};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::session::{CsrfForm, SignedIn, landing, public_layout, sign_in_via_sso};
use super::sudo::{self, SudoForm};
use super::view::{
    Flash, HtmlError, Layout, get_only, page_method_not_allowed, post_only, redirect, render,
    render_with_status,
};
use crate::auth::client_addr;
use crate::auth::oidc::{Identity, Oidc, OidcError};
use crate::db::{self, oidc::Vouched, tx::Principal};
use crate::domain::{AccountName, SecretDigest, SignupMode, UserId, random_base62};
use crate::error::AppError;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(get_only("/auth/oidc", start))
        .service(get_only("/auth/oidc/callback", callback))
        .service(
            web::resource("/auth/oidc/welcome")
                .route(web::get().to(welcome))
                .route(web::post().to(name_account))
                .default_service(web::to(page_method_not_allowed)),
        )
        .service(post_only("/auth/oidc/join", join))
        .service(post_only("/account/sso-policy", set_policy));
}

/// A fresh proof at the provider counts for sudo mode only if this recent.
const REAUTH_FRESH_SECS: i64 = 300;

/// The cookie that binds a flow to the browser that started it. Lax, not Strict: the
/// provider sends the person back with a top-level cross-site GET.
fn cookie_name(https: bool) -> &'static str {
    if https {
        "__Host-keyward_oidc"
    } else {
        "keyward_oidc"
    }
}

fn browser_cookie(https: bool, value: String) -> Cookie<'static> {
    Cookie::build(cookie_name(https), value)
        .path("/")
        .http_only(true)
        .secure(https)
        .same_site(SameSite::Lax)
        .max_age(Duration::minutes(db::oidc::FLOW_MINUTES))
        .finish()
}

fn oidc(state: &AppState) -> Result<&Oidc, AppError> {
    state.oidc.as_deref().ok_or(AppError::NotFound)
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage {
    layout: Layout,
    heading: String,
    paragraphs: Vec<String>,
    link: Option<(String, String)>,
}

/// A page saying why a single sign-on did not sign anyone in, with the way back.
fn refusal(
    req: &HttpRequest,
    status: StatusCode,
    sentence: impl Into<String>,
) -> Result<HttpResponse, HtmlError> {
    render_with_status(
        &MessagePage {
            layout: public_layout("Single sign-on did not work", req)?,
            heading: "You are not signed in".into(),
            paragraphs: vec![sentence.into()],
            link: Some(("/login".into(), "Back to sign-in".into())),
        },
        status,
    )
}

/// What the provider's failure means to the person. A provider that doesn't answer is a
/// 424 page, not a 5xx: Keyward itself is fine, and password sign-in still works.
fn provider_failure(
    req: &HttpRequest,
    name: &str,
    err: &OidcError,
) -> Result<HttpResponse, HtmlError> {
    tracing::warn!(error = %err, "single sign-on failed");
    match err {
        OidcError::Unreachable(_) => refusal(
            req,
            StatusCode::FAILED_DEPENDENCY,
            format!(
                "{name} did not answer. Try again in a few minutes, or sign in with your Keyward password."
            ),
        ),
        OidcError::Refused(_) => refusal(
            req,
            StatusCode::BAD_REQUEST,
            format!(
                "{name} refused this sign-in: its code was used already or has expired. Start again."
            ),
        ),
        OidcError::Unusable(_) => refusal(
            req,
            StatusCode::FAILED_DEPENDENCY,
            format!(
                "{name} answered with something Keyward can't use, so nobody was signed in. Tell your Keyward operator: the server's log says what. Meanwhile you can sign in with your Keyward password."
            ),
        ),
        OidcError::TooLarge => refusal(
            req,
            StatusCode::BAD_REQUEST,
            format!(
                "{name} sent an ID token larger than Keyward accepts (64 KiB), so nobody was signed in. Ask its administrator to send fewer claims."
            ),
        ),
        OidcError::InvalidToken(_) => refusal(
            req,
            StatusCode::BAD_REQUEST,
            format!(
                "{name}'s answer could not be trusted (its ID token did not check out), so nobody was signed in. Start again."
            ),
        ),
    }
}

#[derive(Deserialize)]
struct StartQuery {
    /// Sudo mode: prove it is you again, then go back to `next`.
    reauth: Option<String>,
    /// The signed-in person connects their identity at the provider.
    connect: Option<String>,
    next: Option<String>,
}

/// A local path to go back to; anything else (another host, `//host`) is the account page.
fn local_path(next: Option<&str>) -> String {
    next.filter(|n| n.starts_with('/') && !n.starts_with("//") && !n.contains('\\'))
        .unwrap_or("/account/sessions")
        .to_string()
}

async fn start(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<StartQuery>,
    signed_in: Option<SignedIn>,
) -> Result<HttpResponse, HtmlError> {
    oidc(&state)?;
    let reauth = query.reauth.is_some();
    let purpose = if reauth {
        db::oidc::REAUTH
    } else if query.connect.is_some() {
        db::oidc::CONNECT
    } else {
        db::oidc::SIGN_IN
    };
    // Sudo mode and connecting are for the signed-in person, and only theirs.
    let user: Option<UserId> = match (purpose == db::oidc::SIGN_IN, &signed_in) {
        (false, Some(signed_in)) => Some(signed_in.user_id()),
        (false, None) => return Err(AppError::SignInRequired.into()),
        (true, _) => None,
    };
    let return_to = if reauth {
        local_path(query.next.as_deref())
    } else if purpose == db::oidc::CONNECT {
        CONNECT_PAGE.to_string()
    } else {
        String::new()
    };
    begin(&req, &state, purpose, user, return_to).await
}

/// Starts a flow at the provider for `purpose` (and `user`, for all but a plain sign-in):
/// stored by its state's digest, bound to this browser's cookie, and the browser sent on.
pub(super) async fn begin(
    req: &HttpRequest,
    state: &AppState,
    purpose: &'static str,
    user: Option<UserId>,
    return_to: String,
) -> Result<HttpResponse, HtmlError> {
    let oidc = oidc(state)?;
    // Every flow is a row and a call to the provider: each start counts, from any page.
    state.oidc_starts.check(client_addr::of(req))?;
    // Sudo mode wants a fresh sign-in; connecting asks which identity, rather than taking
    // whoever is signed in at the provider in this browser.
    let fresh = purpose == db::oidc::REAUTH || purpose == db::oidc::CONNECT;
    let started = match oidc.start(fresh).await {
        Ok(started) => started,
        Err(err) => return provider_failure(req, oidc.name(), &err),
    };
    let https = state.config.is_https();
    // One cookie for every flow this browser has open: two tabs don't undo each other.
    let browser = req
        .cookie(cookie_name(https))
        .map(|c| c.value().to_string())
        .filter(|v| v.len() == 43)
        .unwrap_or_else(|| random_base62(43));
    let state_digest = SecretDigest::of(&started.state);
    let browser_digest = SecretDigest::of(&browser);
    let (verifier, nonce) = (started.pkce_verifier, started.nonce);
    db::run(&state.pool, move |conn| {
        db::oidc::start_flow(
            conn,
            &db::oidc::NewFlow {
                state_digest: state_digest.as_bytes(),
                browser_digest: browser_digest.as_bytes(),
                pkce_verifier: &verifier,
                nonce: &nonce,
                purpose,
                user,
                return_to: &return_to,
            },
        )
    })
    .await?;
    let mut response = redirect(&started.url);
    response
        .add_cookie(&browser_cookie(https, browser))
        .map_err(|e| AppError::internal(format!("cookie: {e}")))?;
    Ok(response)
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

async fn callback(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<CallbackQuery>,
    signed_in: Option<SignedIn>,
) -> Result<HttpResponse, HtmlError> {
    let oidc = oidc(&state)?;
    let name = oidc.name().to_string();
    let query = query.into_inner();
    let Some(flow_state) = query.state.filter(|s| !s.is_empty()) else {
        return refusal(
            &req,
            StatusCode::BAD_REQUEST,
            "This sign-in link is incomplete: it carries no state. Start again from the sign-in page.",
        );
    };
    let state_digest = SecretDigest::of(&flow_state);
    let browser_digest = req
        .cookie(cookie_name(state.config.is_https()))
        .map(|c| SecretDigest::of(c.value()));
    let flow = db::run(&state.pool, move |conn| {
        db::oidc::take_flow(
            conn,
            state_digest.as_bytes(),
            browser_digest.as_ref().map(|d| d.as_bytes()),
        )
    })
    .await?;
    let Some(flow) = flow else {
        return refusal(
            &req,
            StatusCode::BAD_REQUEST,
            "This sign-in is unknown, was used already, has expired (after 10 minutes), or was started in another browser. Start again from the sign-in page.",
        );
    };
    if let Some(error) = query.error {
        // The provider's own word, e.g. access_denied for a person it no longer lets in.
        let shown: String = error
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect();
        return refusal(
            &req,
            StatusCode::FORBIDDEN,
            format!(
                "{name} did not let you in ({shown}). If you think it should, ask your provider's administrator."
            ),
        );
    }
    let Some(code) = query.code.filter(|c| !c.is_empty()) else {
        return refusal(
            &req,
            StatusCode::BAD_REQUEST,
            "This sign-in link is incomplete: it carries no code. Start again from the sign-in page.",
        );
    };
    let identity = match oidc.finish(code, flow.pkce_verifier, flow.nonce).await {
        Ok(identity) => identity,
        Err(err) => return provider_failure(&req, &name, &err),
    };
    if flow.purpose == db::oidc::REAUTH {
        return reauthenticated(&state, signed_in, flow.user_id, flow.return_to, identity).await;
    }
    if flow.purpose == db::oidc::CONNECT {
        return connected(&req, &state, signed_in, flow.user_id, &name, identity).await;
    }
    let ip = client_addr::text_of(&req);
    let expires_at = identity.expires_at;
    let outcome = state
        .write(Principal::Visitor { ip }, None, move |tx| {
            db::oidc::sign_in(tx, &vouched(&identity))
        })
        .await?;
    match outcome {
        db::oidc::SignedIn::Refused(sentence) => refusal(&req, StatusCode::FORBIDDEN, sentence),
        db::oidc::SignedIn::User { user, account, .. } => {
            sign_in_via_sso(&req, user.user_id(), account, expires_at)?;
            // Someone in no account yet sees their open invitations, or names an account of
            // their own; the welcome page sends them on when it has neither to offer.
            Ok(redirect(if account.is_none() && !user.operator {
                "/auth/oidc/welcome"
            } else {
                landing(user.operator, account)
            }))
        }
    }
}

/// Where connecting the provider starts and ends: the person's email page.
const CONNECT_PAGE: &str = "/account/email";

/// Connecting the provider, for the person who started it in this browser: signed in (from
/// their email page), or just past their password when their account requires SSO, in which
/// case a connected identity signs them in.
async fn connected(
    req: &HttpRequest,
    state: &AppState,
    signed_in: Option<SignedIn>,
    flow_user: Option<i32>,
    name: &str,
    identity: Identity,
) -> Result<HttpResponse, HtmlError> {
    let Some(user) = flow_user.map(UserId) else {
        return Err(AppError::NotFound.into());
    };
    match signed_in {
        Some(signed_in) if signed_in.user_id() == user => {
            let outcome = state
                .write(signed_in.principal(), None, move |tx| {
                    db::oidc::connect(tx, user, &vouched(&identity))
                })
                .await?;
            signed_in.flash(match outcome {
                db::oidc::Connected::Linked => Flash::success(format!(
                    "{name} is connected: you can sign in through it from now on, and your address is proven."
                )),
                db::oidc::Connected::AlreadyLinked => {
                    Flash::success(format!("{name} was connected to your sign-in already."))
                }
                db::oidc::Connected::Refused(sentence) => Flash::error(sentence),
            });
            Ok(redirect(CONNECT_PAGE))
        }
        Some(_) => refusal(
            req,
            StatusCode::FORBIDDEN,
            "This browser is signed in as someone other than the person who started connecting, so nothing changed. Sign out, sign in as yourself, and connect again from your email page.",
        ),
        None => {
            let ip = client_addr::text_of(req);
            let expires_at = identity.expires_at;
            let outcome = state
                .write(Principal::Visitor { ip }, None, move |tx| {
                    let vouched = vouched(&identity);
                    match db::oidc::connect(tx, user, &vouched)? {
                        db::oidc::Connected::Refused(sentence) => {
                            Ok(db::oidc::SignedIn::Refused(sentence))
                        }
                        _ => db::oidc::sign_in(tx, &vouched),
                    }
                })
                .await?;
            match outcome {
                // Their account requires the provider and refuses their password: say who
                // can help, since there is no other way in for them here.
                db::oidc::SignedIn::Refused(sentence) => refusal(
                    req,
                    StatusCode::FORBIDDEN,
                    format!(
                        "{sentence} If you can't change that at your provider, ask an owner of your account or your Keyward operator."
                    ),
                ),
                db::oidc::SignedIn::User { user, account, .. } => {
                    sign_in_via_sso(req, user.user_id(), account, expires_at)?;
                    Ok(redirect(landing(user.operator, account)))
                }
            }
        }
    }
}

/// What the provider vouched for, as the store takes it.
fn vouched(identity: &Identity) -> Vouched<'_> {
    Vouched {
        issuer: &identity.issuer,
        subject: &identity.subject,
        email: identity.email.as_deref(),
        email_verified: identity.email_verified,
    }
}

/// Sudo mode through the provider: the same person, signed in there within 5 minutes.
async fn reauthenticated(
    state: &AppState,
    signed_in: Option<SignedIn>,
    flow_user: Option<i32>,
    return_to: String,
    identity: Identity,
) -> Result<HttpResponse, HtmlError> {
    let Some(signed_in) = signed_in.filter(|s| Some(s.user_id().0) == flow_user) else {
        return Err(AppError::SignInRequired.into());
    };
    let (issuer, subject) = (identity.issuer.clone(), identity.subject.clone());
    let linked = db::run(&state.pool, move |conn| {
        db::oidc::linked_user(conn, &issuer, &subject)
    })
    .await?;
    let now = db::now().and_utc().timestamp();
    let fresh = identity
        .auth_time
        .is_some_and(|at| now - at <= REAUTH_FRESH_SECS);
    if linked.map(|u| u.id) != flow_user || !fresh {
        signed_in.flash(Flash::error(
            "That sign-in at your provider was not yours, or not a fresh one, so nothing changed. Confirm with your password instead.",
        ));
        return Ok(redirect(&return_to));
    }
    signed_in.session.mark_checked()?;
    signed_in.flash(Flash::success(
        "Confirmed. Make the change again now: sensitive changes are open for a while.",
    ));
    Ok(redirect(&return_to))
}

#[derive(Template)]
#[template(path = "sso_welcome.html")]
struct WelcomePage {
    layout: Layout,
    email: String,
    /// Open invitations sent to the person's verified address: id, account, role.
    invitations: Vec<(i32, String, String)>,
    /// Whether they may make an account of their own (sign-up is open).
    signup_open: bool,
    account_name: String,
    errors: Vec<String>,
}

/// The open invitations sent to the signed-in person's address, if it is verified.
async fn invitations_of(
    state: &AppState,
    signed_in: &SignedIn,
) -> Result<Vec<(i32, String, String)>, AppError> {
    if !signed_in.user.address_proven() {
        return Ok(Vec::new());
    }
    let email = signed_in.user.email.clone();
    let open = db::run(&state.pool, move |conn| {
        db::invitations::open_for_email(conn, &email)
    })
    .await?;
    Ok(open
        .into_iter()
        .map(|(invitation, account)| (invitation.id, account, invitation.role.to_string()))
        .collect())
}

/// Someone signed in through the provider who belongs to no account yet: their open
/// invitations, and (sign-up open) a form to name an account of their own, which is
/// sign-up without a password. With neither, the token list says what to do.
async fn welcome_page(
    signed_in: &SignedIn,
    state: &AppState,
    account_name: String,
    errors: Vec<String>,
) -> Result<Option<WelcomePage>, AppError> {
    if !signed_in.memberships.is_empty() {
        return Ok(None);
    }
    let invitations = invitations_of(state, signed_in).await?;
    let signup_open = state.config.signup == SignupMode::Open;
    if invitations.is_empty() && !signup_open {
        return Ok(None);
    }
    Ok(Some(WelcomePage {
        email: signed_in.user.email.clone(),
        invitations,
        signup_open,
        account_name,
        errors,
        layout: signed_in.layout("Welcome", "")?,
    }))
}

async fn welcome(
    signed_in: SignedIn,
    state: web::Data<AppState>,
) -> Result<HttpResponse, HtmlError> {
    oidc(&state)?;
    match welcome_page(&signed_in, &state, String::new(), Vec::new()).await? {
        Some(page) => render(&page),
        None => Ok(redirect("/tokens")),
    }
}

#[derive(Deserialize)]
struct NameForm {
    #[serde(default)]
    account_name: String,
}

async fn name_account(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<NameForm>,
) -> Result<HttpResponse, HtmlError> {
    oidc(&state)?;
    if !signed_in.memberships.is_empty() || state.config.signup != SignupMode::Open {
        return Ok(redirect("/tokens"));
    }
    let name = match AccountName::parse(&form.account_name) {
        Ok(name) => name,
        Err(e) => {
            let page = welcome_page(&signed_in, &state, form.account_name, vec![e]).await?;
            return match page {
                Some(page) => render_with_status(&page, StatusCode::UNPROCESSABLE_ENTITY),
                None => Ok(redirect("/tokens")),
            };
        }
    };
    let made = state
        .write(signed_in.principal(), None, move |tx| {
            db::accounts::create_for_signed_in(tx, &name)
        })
        .await?;
    let Some(account) = made else {
        return Ok(redirect("/tokens"));
    };
    signed_in.session.set_account(account.account_id())?;
    signed_in.flash(Flash::success(format!(
        "Welcome to Keyward. {} is ready: create its first API token.",
        account.name
    )));
    Ok(redirect("/tokens"))
}

#[derive(Deserialize)]
struct JoinForm {
    invitation: i32,
}

/// Takes up an open invitation sent to the signed-in person's verified address.
async fn join(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<JoinForm>,
) -> Result<HttpResponse, HtmlError> {
    oidc(&state)?;
    let joined = state
        .write(signed_in.principal(), None, move |tx| {
            db::invitations::accept_as_signed_in(tx, form.invitation)
        })
        .await?;
    signed_in.session.set_account(joined.account)?;
    signed_in.flash(Flash::success(format!(
        "Welcome to {}.",
        joined.account_name
    )));
    Ok(redirect("/tokens"))
}

#[derive(Deserialize)]
struct PolicyForm {
    #[serde(default)]
    require_sso: Option<String>,
    #[serde(default)]
    claimed_domain: String,
}

/// A domain as owners type it: `example.com`, `@example.com`; empty is none.
fn parse_domain(raw: &str) -> Result<Option<String>, AppError> {
    let domain = raw.trim().trim_start_matches('@').to_ascii_lowercase();
    if domain.is_empty() {
        return Ok(None);
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if domain.len() > 253 || !domain.contains('.') || !domain.split('.').all(label_ok) {
        return Err(AppError::invalid(format!(
            "\"{}\" is not an email domain such as example.com.",
            raw.trim()
        )));
    }
    Ok(Some(domain))
}

/// Owners set whether members must sign in through the provider, and the domain whose
/// people join at their first SSO sign-in: account settings, so sudo mode first.
async fn set_policy(
    req: HttpRequest,
    signed_in: SignedIn,
    state: web::Data<AppState>,
    form: SudoForm<PolicyForm>,
) -> Result<HttpResponse, HtmlError> {
    oidc(&state)?;
    let require_sso = form.form.require_sso.as_deref() == Some("on");
    let domain = parse_domain(&form.form.claimed_domain)?;
    signed_in.require(crate::policy::Action::SetTwoFactorPolicy)?;
    if let Some(check) = sudo::check(&req, &signed_in, &state, &form).await? {
        return Ok(check);
    }
    state
        .write(
            signed_in.principal(),
            Some(signed_in.account_id()?),
            move |tx| db::accounts::set_sso_policy(tx, require_sso, domain.as_deref()),
        )
        .await?;
    signed_in.flash(Flash::success("The single sign-on policy is saved."));
    Ok(redirect("/members"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claimed_domain_is_a_plain_domain_and_nothing_else() {
        assert_eq!(parse_domain("").unwrap(), None);
        assert_eq!(
            parse_domain(" @Example.COM ").unwrap(),
            Some("example.com".into())
        );
        for bad in [
            "example",
            "exa mple.com",
            "-x.com",
            "x..com",
            "a@b.com",
            "x.com/evil",
        ] {
            assert!(parse_domain(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sudo_goes_back_only_to_a_local_page() {
        assert_eq!(local_path(Some("/members")), "/members");
        for bad in ["https://evil.example", "//evil.example", "/\\evil.example"] {
            assert_eq!(local_path(Some(bad)), "/account/sessions", "{bad}");
        }
        assert_eq!(local_path(None), "/account/sessions");
    }
}
