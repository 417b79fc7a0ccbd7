//! The guard as actix middleware, in front of every API route but the health checks:
//! `.wrap(RequireToken::<AppState>::new())`, where the app's data holds a `web::Data` of
//! the state.
//!
//! Written out as a `Transform` rather than with `middleware::from_fn`, because the guard
//! runs on every API call and `from_fn` costs each call a boxed future for the service
//! behind it, and two reference counts. Here the service's future sits inside the guard's
//! own, so a call with a cached token allocates nothing in the guard but the caller's
//! entry in the request's extensions. Only a key this instance hasn't read yet boxes its
//! one database read.

use std::future::{Future, Ready, ready};
use std::marker::PhantomData;
use std::net::IpAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{self, Context, Poll};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::header::AUTHORIZATION;
use actix_web::{Error, HttpMessage, ResponseError, web};
use chrono::NaiveDateTime;
use pin_project_lite::pin_project;

use super::cache::CachedToken;
use super::clock::CallTime;
use super::guard::{self, ApiCaller, GuardState, Judged};
use crate::domain::TokenId;
use crate::error::AppError;

/// The middleware's factory; `S` is the server's state.
pub struct RequireToken<S>(PhantomData<fn() -> S>);

impl<S> RequireToken<S> {
    pub fn new() -> Self {
        Self(PhantomData)
    }
}

impl<S> Default for RequireToken<S> {
    fn default() -> Self {
        Self::new()
    }
}

/// The service behind the guard: the route (or the next middleware), and its body type.
pub trait Behind:
    Service<ServiceRequest, Response = ServiceResponse<<Self as Behind>::Body>, Error = Error> + 'static
{
    type Body: MessageBody;
}

impl<T, B: MessageBody> Behind for T
where
    T: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
{
    type Body = B;
}

/// The guard's answer: the route's, or the guard's own refusal.
type Answer<B> = ServiceResponse<EitherBody<B>>;

/// A database read of a key this instance hasn't cached, and the verdict on it.
type Read = Pin<Box<dyn Future<Output = Result<Arc<CachedToken>, AppError>>>>;

impl<S: GuardState, Svc: Behind> Transform<Svc, ServiceRequest> for RequireToken<S> {
    type Response = Answer<Svc::Body>;
    type Error = Error;
    type Transform = RequireTokenService<S, Svc>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: Svc) -> Self::Future {
        ready(Ok(RequireTokenService {
            service: Rc::new(service),
            state: PhantomData,
        }))
    }
}

pub struct RequireTokenService<S, Svc> {
    /// Shared only with a call that waits for its database read, and then calls it.
    service: Rc<Svc>,
    state: PhantomData<fn() -> S>,
}

/// What the guard decided before anything was awaited.
enum Decided {
    /// From memory: the token, or the refusal.
    Now(Result<Arc<CachedToken>, AppError>),
    /// The key may exist but isn't cached: read it, off this call.
    Later(Read),
}

/// The guard's decision for `req`, and the client's address as the guard judged it.
fn decide<S: GuardState>(req: &ServiceRequest, now: CallTime) -> (Decided, Option<IpAddr>) {
    let Some(state) = req.app_data::<web::Data<S>>() else {
        let missing = AppError::internal("application state is missing");
        return (Decided::Now(Err(missing)), None);
    };
    let ip = state.client_ip(req.request());
    let header = req.headers().get(AUTHORIZATION).map(|v| v.as_bytes());
    let revoking = guard::revokes_itself(req.request());
    let decided = match guard::in_memory(state.get_ref(), header, now) {
        Judged::Done(verdict) => {
            Decided::Now(guard::settle(state.get_ref(), verdict, ip, now, revoking))
        }
        Judged::Unread(unread) => {
            let state = state.clone();
            Decided::Later(Box::pin(async move {
                let verdict = unread.read(state.get_ref(), now).await;
                guard::settle(state.get_ref(), verdict, ip, now, revoking)
            }))
        }
    };
    (decided, ip)
}

impl<S: GuardState, Svc: Behind> Service<ServiceRequest> for RequireTokenService<S, Svc> {
    type Response = Answer<Svc::Body>;
    type Error = Error;
    type Future = Guarded<S, Svc>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let now = CallTime::now();
        match decide::<S>(&req, now) {
            (Decided::Now(Ok(token)), ip) => Guarded::call(&self.service, req, token, ip, now),
            (Decided::Now(Err(error)), _) => Guarded::refuse(req, error),
            (Decided::Later(read), ip) => Guarded::Reading {
                read,
                req: Some(req),
                service: Rc::clone(&self.service),
                ip,
                now,
            },
        }
    }
}

pin_project! {
    /// A guarded call: waiting for its key to be read, or for the service to answer, or
    /// refused.
    #[project = GuardedProj]
    pub enum Guarded<S, Svc>
    where
        Svc: Service<ServiceRequest>,
    {
        Reading {
            read: Read,
            req: Option<ServiceRequest>,
            service: Rc<Svc>,
            ip: Option<IpAddr>,
            now: CallTime,
        },
        Calling {
            #[pin]
            answer: Svc::Future,
            token: TokenId,
            expires_at: Option<NaiveDateTime>,
            ip: Option<IpAddr>,
            now: CallTime,
            state: PhantomData<fn() -> S>,
        },
        Refused {
            response: Option<ServiceResponse>,
        },
    }
}

impl<S, Svc> Guarded<S, Svc>
where
    Svc: Service<ServiceRequest>,
{
    /// Hands the request, with its caller, to the service behind the guard.
    fn call(
        service: &Svc,
        req: ServiceRequest,
        token: Arc<CachedToken>,
        ip: Option<IpAddr>,
        now: CallTime,
    ) -> Self {
        let (id, expires_at) = (token.id, token.expires_at);
        req.extensions_mut().insert(ApiCaller::new(token, ip));
        Guarded::Calling {
            answer: service.call(req),
            token: id,
            expires_at,
            ip,
            now,
            state: PhantomData,
        }
    }

    fn refuse(req: ServiceRequest, error: AppError) -> Self {
        Guarded::Refused {
            response: Some(req.into_response(error.error_response())),
        }
    }
}

impl<S: GuardState, Svc: Behind> Future for Guarded<S, Svc> {
    type Output = Result<Answer<Svc::Body>, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            match self.as_mut().project() {
                GuardedProj::Reading {
                    read,
                    req,
                    service,
                    ip,
                    now,
                } => {
                    let admitted = task::ready!(read.as_mut().poll(cx));
                    let req = req
                        .take()
                        .expect("a guarded call is not polled once answered");
                    let next = match admitted {
                        Ok(token) => Guarded::call(&**service, req, token, *ip, *now),
                        Err(error) => Guarded::refuse(req, error),
                    };
                    self.set(next);
                }
                GuardedProj::Calling {
                    answer,
                    token,
                    expires_at,
                    ip,
                    now,
                    ..
                } => {
                    let mut response = task::ready!(answer.poll(cx))?;
                    guard::answered::<S, Svc::Body>(&mut response, *token, *expires_at, *now, *ip);
                    return Poll::Ready(Ok(response.map_into_left_body()));
                }
                GuardedProj::Refused { response } => {
                    let response = response
                        .take()
                        .expect("a guarded call is not polled once answered");
                    return Poll::Ready(Ok(response.map_into_right_body()));
                }
            }
        }
    }
}
