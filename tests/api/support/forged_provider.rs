//! An OpenID Provider that forges its ID tokens one way, for the checks no certified
//! provider can be asked to fail: a token for another audience, from another issuer,
//! signed by another key, or already expired. It answers discovery, its key set, the
//! authorisation request (straight back to the client with a code) and the token request
//! (or pads that answer past what Keyward reads);
//! with `Forgery::None` its tokens are good, which shows the forgeries are what is refused.

use std::net::TcpListener;
use std::process::Command;
use std::sync::{Arc, Mutex};

use actix_web::{App, HttpResponse, HttpServer, web};
use chrono::{Duration, Utc};
use openidconnect::core::{
    CoreIdToken, CoreIdTokenClaims, CoreJsonWebKeySet, CoreJwsSigningAlgorithm,
    CoreRsaPrivateSigningKey,
};
use openidconnect::{
    Audience, EmptyAdditionalClaims, EndUserEmail, IssuerUrl, JsonWebKeyId, Nonce,
    PrivateSigningKey, StandardClaims, SubjectIdentifier,
};
use serde::Deserialize;
use serde_json::json;

/// How the provider's ID tokens are wrong.
#[derive(Clone, Copy, Debug)]
pub enum Forgery {
    None,
    /// Issued to another client.
    Audience,
    /// Naming an issuer other than the one Keyward discovered.
    Issuer,
    /// Signed by a key that is not in the provider's key set, under the same key id.
    Signature,
    /// Expired a minute ago.
    Expired,
    /// A good ID token in a token answer padded past the 128 KiB Keyward reads.
    HugeAnswer,
}

pub const CLIENT_ID: &str = "keyward";

pub struct ForgedProvider {
    pub issuer: String,
    server: actix_web::dev::ServerHandle,
}

struct Shared {
    issuer: String,
    forgery: Forgery,
    published: CoreRsaPrivateSigningKey,
    other: CoreRsaPrivateSigningKey,
    /// The nonce of the last authorisation request, which the next ID token carries.
    nonce: Mutex<String>,
}

impl ForgedProvider {
    pub async fn start(forgery: Forgery) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
        let issuer = format!("http://{}", listener.local_addr().expect("an address"));
        let shared = Arc::new(Shared {
            issuer: issuer.clone(),
            forgery,
            published: rsa_key(),
            other: rsa_key(),
            nonce: Mutex::new(String::new()),
        });
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::from(shared.clone()))
                .route(
                    "/.well-known/openid-configuration",
                    web::get().to(discovery),
                )
                .route("/jwks", web::get().to(jwks))
                .route("/authorize", web::get().to(authorize))
                .route("/token", web::post().to(token))
        })
        .workers(1)
        .listen(listener)
        .expect("the provider listens")
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            issuer,
            server: handle,
        }
    }
}

impl Drop for ForgedProvider {
    fn drop(&mut self) {
        drop(self.server.stop(false));
    }
}

/// A fresh 2048-bit RSA key in PKCS#1 PEM, from the `openssl` command (.ci/run installs
/// it), under the key id `k1`.
fn rsa_key() -> CoreRsaPrivateSigningKey {
    let out = Command::new("openssl")
        .args(["genrsa", "-traditional", "2048"])
        .output()
        .expect("openssl genrsa runs");
    assert!(out.status.success(), "openssl genrsa failed");
    let pem = String::from_utf8(out.stdout).expect("a PEM key");
    CoreRsaPrivateSigningKey::from_pem(&pem, Some(JsonWebKeyId::new("k1".into())))
        .expect("openssl's key reads")
}

async fn discovery(shared: web::Data<Shared>) -> HttpResponse {
    let issuer = &shared.issuer;
    HttpResponse::Ok().json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    }))
}

async fn jwks(shared: web::Data<Shared>) -> HttpResponse {
    HttpResponse::Ok().json(CoreJsonWebKeySet::new(vec![
        shared.published.as_verification_key(),
    ]))
}

#[derive(Deserialize)]
struct Authorize {
    redirect_uri: String,
    state: String,
    nonce: String,
}

/// Signs the person in at once and sends them back with a code.
async fn authorize(shared: web::Data<Shared>, query: web::Query<Authorize>) -> HttpResponse {
    *shared.nonce.lock().expect("the nonce lock") = query.nonce.clone();
    let back = format!(
        "{}?code=forged-provider-code&state={}",
        query.redirect_uri, query.state
    );
    HttpResponse::Found()
        .insert_header(("location", back))
        .finish()
}

async fn token(shared: web::Data<Shared>) -> HttpResponse {
    let now = Utc::now();
    // A good token, but for the one thing forged.
    let forgery = shared.forgery;
    let issuer = match forgery {
        Forgery::Issuer => "http://127.0.0.1:9/elsewhere".to_string(),
        _ => shared.issuer.clone(),
    };
    let audience = match forgery {
        Forgery::Audience => "another-client",
        _ => CLIENT_ID,
    };
    let expires = match forgery {
        Forgery::Expired => now - Duration::minutes(1),
        _ => now + Duration::hours(1),
    };
    let key = match forgery {
        Forgery::Signature => &shared.other,
        _ => &shared.published,
    };
    let nonce = shared.nonce.lock().expect("the nonce lock").clone();
    let person = StandardClaims::new(SubjectIdentifier::new("forged-subject".into()))
        .set_email(Some(EndUserEmail::new("forged@corp.example".into())))
        .set_email_verified(Some(true));
    let claims = CoreIdTokenClaims::new(
        IssuerUrl::new(issuer).expect("an issuer URL"),
        vec![Audience::new(audience.into())],
        expires,
        now - Duration::minutes(2),
        person,
        EmptyAdditionalClaims {},
    )
    .set_nonce(Some(Nonce::new(nonce)));
    let id_token = CoreIdToken::new(
        claims,
        key,
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        None,
        None,
    )
    .expect("the ID token signs");
    let padding = match forgery {
        Forgery::HugeAnswer => "x".repeat(200 * 1024),
        _ => String::new(),
    };
    HttpResponse::Ok().json(json!({
        "access_token": "forged-provider-access-token",
        "token_type": "Bearer",
        "expires_in": 3600,
        "id_token": id_token.to_string(),
        "padding": padding,
    }))
}
