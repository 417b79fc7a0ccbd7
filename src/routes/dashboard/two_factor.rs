//! `/account/two-factor`: a person's second factor. They set up an authenticator app (the
//! secret as an `otpauth://` URI and as a QR code drawn here as SVG), confirm it with a
//! code, and get ten recovery codes, shown once. Turning it off and making new recovery
//! codes need sudo mode.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use super::session::{CsrfForm, NoFields, SignedIn};
use super::sudo::{self, SudoForm};
use super::view::{
    Flash, HtmlError, Layout, TimeView, get_only, page_method_not_allowed, post_only, redirect,
    render, render_with_status,
};
use crate::db::{self, two_factor::Confirmed};
use crate::domain::{RecoveryCode, SecretDigest, TotpSecret};
use crate::error::AppError;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(get_only("/account/two-factor", overview))
        .service(
            web::resource("/account/two-factor/setup")
                .route(web::get().to(setup))
                .route(web::post().to(confirm))
                .default_service(web::to(page_method_not_allowed)),
        )
        .service(post_only(
            "/account/two-factor/recovery-codes",
            regenerate_codes,
        ))
        .service(post_only("/account/two-factor/disable", disable));
}

#[derive(Template)]
#[template(path = "account/two_factor.html")]
struct OverviewPage {
    layout: Layout,
    since: Option<TimeView>,
    codes_left: i64,
    /// The single sign-on provider's name, while SSO is on: its sign-ins skip this factor.
    sso_name: Option<String>,
    /// How many passkeys the person has, which serve as a second step too.
    passkeys: i64,
}

async fn overview(
    signed_in: SignedIn,
    state: web::Data<AppState>,
) -> Result<HttpResponse, HtmlError> {
    let user = signed_in.user_id();
    let (status, passkeys) = db::run(&state.pool, move |conn| {
        Ok((
            db::two_factor::status(conn, user)?,
            db::passkeys::count(conn, user)?,
        ))
    })
    .await?;
    render(&OverviewPage {
        layout: signed_in.layout("Two-factor sign-in", "")?,
        since: status.since.map(TimeView::new),
        codes_left: status.codes_left,
        sso_name: state.oidc.as_ref().map(|o| o.name().to_string()),
        passkeys,
    })
}

#[derive(Template)]
#[template(path = "account/two_factor_setup.html")]
struct SetupPage {
    layout: Layout,
    uri: String,
    secret: String,
    /// The QR code, an `<svg>` element drawn here from the URI alone.
    qr_svg: String,
    /// Names the secret shown, so a confirmation can't land on one replaced meanwhile.
    shown: String,
    errors: Vec<String>,
}

/// The QR code of `uri`, as inline SVG (no XML declaration, so it sits in the page).
fn qr_svg(uri: &str) -> Result<String, AppError> {
    let code = qrcode::QrCode::new(uri.as_bytes())
        .map_err(|e| AppError::internal(format!("QR code: {e}")))?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    Ok(match svg.find("<svg") {
        Some(at) => svg[at..].replacen(
            "<svg",
            "<svg role=\"img\" aria-label=\"QR code of the secret\"",
            1,
        ),
        None => svg,
    })
}

fn shown_of(sealed: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(SecretDigest::of(&URL_SAFE_NO_PAD.encode(sealed)).as_bytes())
}

fn setup_page(
    signed_in: &SignedIn,
    secret: &TotpSecret,
    sealed: &[u8],
    errors: Vec<String>,
) -> Result<HttpResponse, HtmlError> {
    let uri = secret.uri(&signed_in.user.email);
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    render_with_status(
        &SetupPage {
            layout: signed_in.layout("Set up an authenticator app", "")?,
            qr_svg: qr_svg(&uri)?,
            uri,
            secret: secret.base32(),
            shown: shown_of(sealed),
            errors,
        },
        status,
    )
}

/// The secret being enrolled, made or read back (one row per person); `None` once on.
async fn enrolment(
    signed_in: &SignedIn,
    state: &AppState,
) -> Result<Option<(TotpSecret, Vec<u8>)>, AppError> {
    let key = state.secret_key()?;
    state
        .write(signed_in.principal(), None, move |tx| {
            db::two_factor::enrolment_secret(tx, &key)
        })
        .await
}

async fn setup(signed_in: SignedIn, state: web::Data<AppState>) -> Result<HttpResponse, HtmlError> {
    match enrolment(&signed_in, &state).await? {
        Some((secret, sealed)) => setup_page(&signed_in, &secret, &sealed, Vec::new()),
        None => Ok(redirect("/account/two-factor")),
    }
}

#[derive(Deserialize)]
struct ConfirmForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    shown: String,
}

const WRONG_CODE: &str =
    "That code is not right. Type the 6 digits your app shows now for Keyward.";

async fn confirm(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<ConfirmForm>,
) -> Result<HttpResponse, HtmlError> {
    let key = state.secret_key()?;
    let Some((secret, sealed)) = enrolment(&signed_in, &state).await? else {
        return Ok(redirect("/account/two-factor"));
    };
    if form.shown != shown_of(&sealed) {
        signed_in.flash(Flash::error(
            "That secret was replaced by a newer one. Scan this one, then type its code.",
        ));
        return Ok(redirect("/account/two-factor/setup"));
    }
    let unix_now = db::now().and_utc().timestamp();
    let checked = sealed.clone();
    let mail_on = state.mail_on();
    let outcome = state
        .write(signed_in.principal(), None, move |tx| {
            db::two_factor::confirm(tx, &key, &checked, &form.code, unix_now, mail_on)
        })
        .await?;
    match outcome {
        Confirmed::Enabled(codes) => {
            // Setting it up proved the person holds it: as fresh as a password check.
            signed_in.session.mark_checked()?;
            codes_page(
                &signed_in,
                "Two-factor sign-in is on",
                "Each time you sign in, Keyward will ask for a code from your authenticator app after your password.",
                codes,
            )
        }
        Confirmed::WrongCode => setup_page(&signed_in, &secret, &sealed, vec![WRONG_CODE.into()]),
        Confirmed::Stale => Ok(redirect("/account/two-factor")),
    }
}

#[derive(Template)]
#[template(path = "account/recovery_codes.html")]
struct CodesPage {
    layout: Layout,
    heading: String,
    lede: String,
    codes: Vec<String>,
}

fn codes_page(
    signed_in: &SignedIn,
    heading: &str,
    lede: &str,
    codes: Vec<RecoveryCode>,
) -> Result<HttpResponse, HtmlError> {
    render(&CodesPage {
        layout: signed_in.layout(heading, "")?,
        heading: heading.to_string(),
        lede: lede.to_string(),
        codes: codes.iter().map(|c| c.expose().to_string()).collect(),
    })
}

async fn regenerate_codes(
    req: HttpRequest,
    signed_in: SignedIn,
    state: web::Data<AppState>,
    form: SudoForm<NoFields>,
) -> Result<HttpResponse, HtmlError> {
    if let Some(check) = sudo::check(&req, &signed_in, &state, &form).await? {
        return Ok(check);
    }
    let key = state.secret_key()?;
    let mail_on = state.mail_on();
    let codes = state
        .write(signed_in.principal(), None, move |tx| {
            db::two_factor::regenerate_codes(tx, &key, mail_on)
        })
        .await?;
    codes_page(
        &signed_in,
        "New recovery codes",
        "Your old recovery codes no longer work.",
        codes,
    )
}

async fn disable(
    req: HttpRequest,
    signed_in: SignedIn,
    state: web::Data<AppState>,
    form: SudoForm<NoFields>,
) -> Result<HttpResponse, HtmlError> {
    if let Some(check) = sudo::check(&req, &signed_in, &state, &form).await? {
        return Ok(check);
    }
    let mail_on = state.mail_on();
    state
        .write(signed_in.principal(), None, move |tx| {
            db::two_factor::disable(tx, mail_on)
        })
        .await?;
    signed_in.flash(Flash::success(
        "Two-factor sign-in is off. Your password alone signs you in now.",
    ));
    Ok(redirect("/account/two-factor"))
}
