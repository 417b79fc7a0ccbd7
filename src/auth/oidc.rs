//! The OpenID Connect client: discovery, the authorisation request (code flow, PKCE S256,
//! `state`, `nonce`) and the code's exchange for a verified ID token. The `openidconnect`
//! crate does the protocol; this file bounds its HTTP (10 s, 128 KiB a response, no
//! redirects) and keeps the provider's metadata, found again when it is an hour old or
//! was not found at start.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreAuthPrompt, CoreAuthenticationFlow, CoreClient, CoreProviderMetadata,
};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, HttpRequest, HttpResponse, IssuerUrl,
    Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    TokenResponse, reqwest,
};

use crate::config::OidcSettings;

/// No provider call may take longer: a stalled provider is cut off.
const TIMEOUT: Duration = Duration::from_secs(10);
/// A response larger than this is refused unread: discovery documents, key sets and token
/// responses are a few KiB.
const MAX_RESPONSE: usize = 128 * 1024;
/// An ID token larger than this is refused.
pub const MAX_ID_TOKEN: usize = 64 * 1024;
/// Metadata (and the provider's signing keys in it) older than this is fetched again.
const METADATA_TTL: Duration = Duration::from_secs(3600);

/// Why a provider call failed, in words fit for a log line: never a token, code or secret.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("the provider did not answer: {0}")]
    Unreachable(String),
    #[error("the provider refused: {0}")]
    Refused(String),
    /// The provider answered, but with what Keyward can't use: an operator's matter.
    #[error("the provider's answer can't be used: {0}")]
    Unusable(String),
    #[error("the ID token is not valid: {0}")]
    InvalidToken(String),
    #[error("the ID token is larger than 64 KiB")]
    TooLarge,
}

/// What starting a sign-in leaves to remember until the provider sends the person back.
pub struct Started {
    pub url: String,
    pub state: String,
    pub pkce_verifier: String,
    pub nonce: String,
}

/// Who the provider says signed in, from a verified ID token.
#[derive(Debug, Clone)]
pub struct Identity {
    pub issuer: String,
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    /// When the ID token expires (Unix seconds).
    pub expires_at: i64,
    /// When the person last proved it was them at the provider (Unix seconds), if said.
    pub auth_time: Option<i64>,
}

/// The client as discovery makes it: an authorisation URL, and maybe token and UserInfo URLs.
type ProviderClient = CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

pub struct Oidc {
    settings: OidcSettings,
    http: reqwest::Client,
    metadata: Mutex<Option<(CoreProviderMetadata, Instant)>>,
}

impl Oidc {
    pub fn new(settings: OidcSettings) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            // The provider's answers are read as they are: a redirect could lead anywhere.
            .redirect(reqwest::redirect::Policy::none())
            // One connection per call: sign-ins are rare, and a pooled connection would be
            // driven by whichever worker's runtime opened it.
            .pool_max_idle_per_host(0)
            .build()?;
        Ok(Self {
            settings,
            http,
            metadata: Mutex::new(None),
        })
    }

    pub fn name(&self) -> &str {
        &self.settings.name
    }

    pub fn issuer(&self) -> &str {
        &self.settings.issuer
    }

    /// Fetches the provider's metadata now; at start, a failure is only a warning.
    pub async fn discover(&self) -> Result<(), OidcError> {
        self.metadata().await.map(drop)
    }

    async fn metadata(&self) -> Result<CoreProviderMetadata, OidcError> {
        if let Some((metadata, at)) = self.metadata.lock().expect("metadata lock").as_ref()
            && at.elapsed() < METADATA_TTL
        {
            return Ok(metadata.clone());
        }
        let issuer = IssuerUrl::new(self.settings.issuer.clone())
            .map_err(|e| OidcError::Unusable(format!("issuer URL: {e}")))?;
        let http = |request: HttpRequest| bounded(&self.http, request);
        let metadata = CoreProviderMetadata::discover_async(issuer, &http)
            .await
            .map_err(|e| match e {
                // A call that failed says itself whether nothing answered or too much did.
                openidconnect::DiscoveryError::Request(inner) => inner,
                other => OidcError::Unusable(format!("discovery: {other}")),
            })?;
        *self.metadata.lock().expect("metadata lock") = Some((metadata.clone(), Instant::now()));
        Ok(metadata)
    }

    async fn client(&self) -> Result<ProviderClient, OidcError> {
        let metadata = self.metadata().await?;
        let redirect = RedirectUrl::new(self.settings.redirect_uri.clone())
            .map_err(|e| OidcError::Unusable(format!("redirect URI: {e}")))?;
        Ok(CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.settings.client_id.clone()),
            self.settings
                .client_secret
                .as_ref()
                .map(|s| ClientSecret::new(s.expose().to_string())),
        )
        .set_redirect_uri(redirect))
    }

    /// The provider's sign-in page for a new flow. `fresh` asks the person to prove it
    /// is them again (`prompt=login`, `max_age=0`), for sudo mode.
    pub async fn start(&self, fresh: bool) -> Result<Started, OidcError> {
        let client = self.client().await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("email".into()))
            .set_pkce_challenge(challenge);
        if fresh {
            request = request
                .add_prompt(CoreAuthPrompt::Login)
                .set_max_age(Duration::ZERO);
        }
        let (url, state, nonce) = request.url();
        Ok(Started {
            url: url.to_string(),
            state: state.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
            nonce: nonce.secret().clone(),
        })
    }

    /// Exchanges the code (with the flow's PKCE verifier) and verifies the ID token: its
    /// signature, issuer, audience, expiry and nonce.
    pub async fn finish(
        &self,
        code: String,
        pkce_verifier: String,
        nonce: String,
    ) -> Result<Identity, OidcError> {
        let client = self.client().await?;
        let http = |request: HttpRequest| bounded(&self.http, request);
        let response = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| OidcError::Unusable(format!("no token endpoint: {e}")))?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier))
            .request_async(&http)
            .await
            .map_err(|e| match e {
                openidconnect::RequestTokenError::ServerResponse(r) => {
                    OidcError::Refused(format!("the code: {}", r.error()))
                }
                openidconnect::RequestTokenError::Request(inner) => inner,
                // Display only: a body that didn't parse may hold a token.
                other => OidcError::Unusable(format!("the code's exchange: {other}")),
            })?;
        let id_token = response
            .id_token()
            .ok_or_else(|| OidcError::InvalidToken("the provider sent no ID token".into()))?;
        if id_token.to_string().len() > MAX_ID_TOKEN {
            return Err(OidcError::TooLarge);
        }
        let verifier = client.id_token_verifier();
        let claims = id_token
            .claims(&verifier, &Nonce::new(nonce))
            .map_err(|e| OidcError::InvalidToken(e.to_string()))?;
        let mut identity = Identity {
            issuer: claims.issuer().to_string(),
            subject: claims.subject().to_string(),
            email: claims.email().map(|e| e.to_string()),
            email_verified: claims.email_verified().unwrap_or(false),
            expires_at: claims.expiration().timestamp(),
            auth_time: claims.auth_time().map(|t| t.timestamp()),
        };
        if identity.email.is_none() {
            // A conforming provider may keep scope claims for the UserInfo endpoint (Keycloak
            // and Google put them in the ID token; panva's oidc-provider does not). They
            // are asked for with the access token, and must name the same `sub`.
            let (email, verified) = self
                .user_info(&client, response.access_token().clone(), claims.subject())
                .await?;
            identity.email = email;
            identity.email_verified = verified;
        }
        Ok(identity)
    }

    /// The email and whether it is verified, from the provider's UserInfo endpoint.
    async fn user_info(
        &self,
        client: &ProviderClient,
        access_token: openidconnect::AccessToken,
        subject: &openidconnect::SubjectIdentifier,
    ) -> Result<(Option<String>, bool), OidcError> {
        let Ok(request) = client.user_info(access_token, Some(subject.clone())) else {
            // No UserInfo endpoint: the ID token's claims are all there is.
            return Ok((None, false));
        };
        let http = |request: HttpRequest| bounded(&self.http, request);
        let claims: openidconnect::core::CoreUserInfoClaims =
            request.request_async(&http).await.map_err(|e| match e {
                openidconnect::UserInfoError::ClaimsVerification(e) => {
                    OidcError::InvalidToken(format!("user info: {e}"))
                }
                openidconnect::UserInfoError::Request(inner) => inner,
                other => OidcError::Unusable(format!("user info: {other}")),
            })?;
        Ok((
            claims.email().map(|e| e.to_string()),
            claims.email_verified().unwrap_or(false),
        ))
    }
}

/// One provider call with the client's timeout, no redirects, and the response cut off
/// past `MAX_RESPONSE`.
async fn bounded(
    client: &reqwest::Client,
    request: HttpRequest,
) -> Result<HttpResponse, OidcError> {
    let (parts, body) = request.into_parts();
    let mut response = client
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await
        .map_err(|e| OidcError::Unreachable(without_url(e)))?;
    if response
        .content_length()
        .is_some_and(|n| n > MAX_RESPONSE as u64)
    {
        return Err(OidcError::Unusable("a response over 128 KiB".into()));
    }
    let mut builder = openidconnect::http::Response::builder().status(response.status());
    for (name, value) in response.headers() {
        builder = builder.header(name, value);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| OidcError::Unreachable(without_url(e)))?
    {
        if body.len() + chunk.len() > MAX_RESPONSE {
            return Err(OidcError::Unusable("a response over 128 KiB".into()));
        }
        body.extend_from_slice(&chunk);
    }
    builder
        .body(body)
        .map_err(|e| OidcError::Unusable(format!("a response that can't be read: {e}")))
}

/// reqwest's error without its URL, whose query may carry a code.
fn without_url(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "failed"
    };
    format!("{kind}: {}", e.without_url())
}
