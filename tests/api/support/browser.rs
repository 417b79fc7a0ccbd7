//! What the dashboard tests need: a browser-like client that keeps its cookies and stops at
//! every redirect, pages read to the end, and the few things a person reads off a page by eye
//! (the CSRF token, a field's value, the secret on the created page, a token's id).

use std::sync::Arc;
use std::time::Duration;

use reqwest::cookie::{CookieStore, Jar};
use reqwest::header::{CONTENT_TYPE, HeaderMap, LOCATION, ORIGIN, SET_COOKIE};
use reqwest::redirect::Policy;
use reqwest::{StatusCode, Url};

use crate::support::api::Token;

/// The session cookie's name over plain HTTP.
pub const SESSION_COOKIE: &str = "keyward_session";

/// The anonymous forms' CSRF cookie's name over plain HTTP.
pub const CSRF_COOKIE: &str = "keyward_csrf";

/// A password every test account signs up with; long enough for the 12-character rule.
pub const PASSWORD: &str = "correct horse battery staple";

// ---------------------------------------------------------------------------------------------
// Pages
// ---------------------------------------------------------------------------------------------

/// A response read to its end, as a browser would hold it.
pub struct Page {
    /// `METHOD path`, for failure messages.
    pub request: String,
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Panics, showing the page, unless the status is `expected`.
    pub fn assert_status(&self, expected: StatusCode) -> &Self {
        assert_eq!(
            self.status, expected,
            "{} answered {} (expected {expected}) with body:\n{}",
            self.request, self.status, self.body
        );
        self
    }

    /// A page for people: the status, and HTML rather than JSON.
    pub fn assert_html_page(&self, expected: StatusCode) -> &Self {
        if let Some(problem) = html_page_problem(self, expected) {
            panic!("{}: {problem}; body:\n{}", self.request, self.body);
        }
        self
    }

    /// A 303 See Other to exactly `to`.
    pub fn assert_redirect(&self, to: &str) -> &Self {
        self.assert_status(StatusCode::SEE_OTHER);
        assert_eq!(
            self.header(LOCATION.as_str()),
            Some(to),
            "{} should redirect to {to}",
            self.request
        );
        self
    }

    /// The body with the HTML escapes undone, for looking for sentences.
    pub fn text(&self) -> String {
        unescape(&self.body)
    }

    /// Panics, showing the page, unless its text contains `needle`.
    pub fn assert_contains(&self, needle: &str) -> &Self {
        assert!(
            self.text().contains(needle),
            "{} ({}) should show {needle:?}; body:\n{}",
            self.request,
            self.status,
            self.body
        );
        self
    }

    /// Where the opening tag of the first element carrying `attribute` (e.g. `name="email"`)
    /// starts and ends.
    fn tag_with(&self, attribute: &str) -> Option<std::ops::Range<usize>> {
        let at = self.body.find(attribute)?;
        let start = self.body[..at].rfind('<')?;
        let end = at + self.body[at..].find('>')?;
        Some(start..end + 1)
    }

    /// The `value` of the first form field named `name`, unescaped.
    pub fn field_value(&self, name: &str) -> Option<String> {
        let tag = &self.body[self.tag_with(&format!("name=\"{name}\""))?];
        let value = tag.split_once("value=\"")?.1;
        Some(unescape(&value[..value.find('"')?]))
    }

    /// The hidden `csrf_token` every form on the page carries.
    pub fn csrf(&self) -> String {
        self.field_value("csrf_token")
            .filter(|token| !token.is_empty())
            .unwrap_or_else(|| {
                panic!(
                    "{} should carry a csrf_token field; body:\n{}",
                    self.request, self.body
                )
            })
    }

    /// The text of the element with `id`, e.g. `<code id="token-secret">`.
    pub fn element_text(&self, id: &str) -> Option<String> {
        self.text_of(&format!("id=\"{id}\""))
    }

    /// The text just inside the first element carrying `attribute`, up to the next tag.
    pub fn text_of(&self, attribute: &str) -> Option<String> {
        let after = self.tag_with(attribute)?.end;
        let end = after + self.body[after..].find('<')?;
        Some(unescape(self.body[after..end].trim()))
    }

    /// The id in the first link to a token's page, `href="/tokens/ID"`.
    pub fn first_token_link(&self) -> Option<i32> {
        self.body
            .match_indices("href=\"/tokens/")
            .find_map(|(at, m)| {
                let rest = &self.body[at + m.len()..];
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                rest[digits.len()..]
                    .starts_with('"')
                    .then(|| digits.parse().ok())
                    .flatten()
            })
    }

    /// The session cookie this response sets, if it sets one.
    pub fn session_set_cookie(&self) -> Option<SetCookie> {
        self.set_cookie(SESSION_COOKIE)
    }

    /// The cookie called `name` this response sets, if it sets one.
    pub fn set_cookie(&self, name: &str) -> Option<SetCookie> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(SetCookie::parse)
            .find(|c| c.name == name)
    }
}

/// Undoes the escapes askama writes (`&#34;`, `&#60;` and friends), the ampersand last so
/// that an escaped escape stays one.
pub fn unescape(html: &str) -> String {
    const ESCAPES: [(&str, &str); 9] = [
        ("&#34;", "\""),
        ("&quot;", "\""),
        ("&#39;", "'"),
        ("&#x27;", "'"),
        ("&#60;", "<"),
        ("&lt;", "<"),
        ("&#62;", ">"),
        ("&gt;", ">"),
        ("&#38;", "&"),
    ];
    ESCAPES
        .iter()
        .fold(html.to_string(), |text, (escaped, plain)| {
            text.replace(escaped, plain)
        })
}

/// One `Set-Cookie` header: the pair, then its attributes as written.
#[derive(Debug, Clone)]
pub struct SetCookie {
    pub name: String,
    pub value: String,
    /// `(name, value)`; the name lower-cased, as attribute names match without case.
    pub attributes: Vec<(String, Option<String>)>,
}

impl SetCookie {
    pub fn parse(header: &str) -> Self {
        let mut parts = header.split(';').map(str::trim);
        let (name, value) = parts
            .next()
            .and_then(|p| p.split_once('='))
            .unwrap_or((header, ""));
        let attributes = parts
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim().to_string())),
                None => (p.to_ascii_lowercase(), None),
            })
            .collect();
        Self {
            name: name.to_string(),
            value: value.to_string(),
            attributes,
        }
    }

    /// Whether the attribute is present, and its value if it has one.
    pub fn attribute(&self, name: &str) -> Option<Option<&str>> {
        let name = name.to_ascii_lowercase();
        self.attributes
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_deref())
    }
}

// ---------------------------------------------------------------------------------------------
// A browser
// ---------------------------------------------------------------------------------------------

/// A token as the created page showed it.
#[derive(Debug, Clone)]
pub struct CreatedToken {
    pub id: i32,
    pub token: Token,
    pub curl: String,
}

/// What `GET /tokens/new` hands the person: the form's CSRF token and its one-use nonce.
pub struct TokenForm {
    pub csrf: String,
    pub nonce: String,
}

/// A person's browser: one cookie jar, and redirects left for the test to look at.
pub struct Browser {
    client: reqwest::Client,
    jar: Arc<Jar>,
    /// `http://127.0.0.1:PORT`
    pub address: String,
}

impl Browser {
    pub fn new(address: &str) -> Self {
        Self::build(address, "keyward-tests", None, &[])
    }

    /// A browser behind a proxy on the server's own host, which tells the server the
    /// client's address by adding `X-Forwarded-For: CLIENT` to every request.
    pub fn behind_proxy(address: &str, client: &str) -> Self {
        Self::build(
            address,
            "keyward-tests",
            None,
            &[("x-forwarded-for", client)],
        )
    }

    /// A browser that names itself `user_agent`, as Firefox or Chrome would.
    pub fn with_user_agent(address: &str, user_agent: &str) -> Self {
        Self::build(address, user_agent, None, &[])
    }

    /// A browser on another machine: its requests leave from `source`, another loopback
    /// address such as `127.0.0.2`, so the server sees another client address.
    pub fn from_source(address: &str, source: [u8; 4]) -> Self {
        Self::build(
            address,
            "keyward-tests",
            Some(std::net::IpAddr::from(source)),
            &[],
        )
    }

    fn build(
        address: &str,
        user_agent: &str,
        source: Option<std::net::IpAddr>,
        headers: &[(&'static str, &str)],
    ) -> Self {
        let jar = Arc::new(Jar::default());
        let mut defaults = reqwest::header::HeaderMap::new();
        for (name, value) in headers {
            defaults.insert(*name, value.parse().expect("a header value"));
        }
        let client = reqwest::Client::builder()
            .no_proxy()
            .default_headers(defaults)
            .local_address(source)
            .cookie_provider(jar.clone())
            .redirect(Policy::none())
            .timeout(Duration::from_secs(30))
            .user_agent(user_agent)
            .build()
            .expect("a reqwest client");
        Self {
            client,
            jar,
            address: address.to_string(),
        }
    }

    /// A browser that presents `session` as its session cookie, as a thief with a copy would.
    pub fn with_session_cookie(address: &str, session: &str) -> Self {
        let browser = Self::new(address);
        browser.jar.add_cookie_str(
            &format!("{SESSION_COOKIE}={session}; Path=/"),
            &browser.base(),
        );
        browser
    }

    fn base(&self) -> Url {
        Url::parse(&self.address).expect("the server address is a URL")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// The session cookie's value in the jar, if any.
    pub fn session_cookie(&self) -> Option<String> {
        let header = self.jar.cookies(&self.base())?;
        let header = header.to_str().ok()?.to_string();
        header.split(';').map(str::trim).find_map(|pair| {
            pair.strip_prefix(SESSION_COOKIE)
                .and_then(|rest| rest.strip_prefix('='))
                .map(str::to_string)
        })
    }

    async fn read(request: String, response: reqwest::Result<reqwest::Response>) -> Page {
        let response =
            response.unwrap_or_else(|e| panic!("{request}: the server should answer: {e}"));
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.text().await.unwrap_or_default();
        Page {
            request,
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Page {
        Self::read(
            format!("GET {path}"),
            self.client.get(self.url(path)).send().await,
        )
        .await
    }

    /// A GET of a whole URL, on another server (an identity provider), with this
    /// browser's cookies.
    pub async fn get_url(&self, url: &str) -> Page {
        Self::read(format!("GET {url}"), self.client.get(url).send().await).await
    }

    /// Submits a urlencoded form to a whole URL, on another server.
    pub async fn post_url(&self, url: &str, fields: &[(&str, &str)]) -> Page {
        let request = self.client.post(url).form(fields);
        Self::read(format!("POST {url}"), request.send().await).await
    }

    /// A GET that says it wants HTML, as a browser's address bar does.
    pub async fn get_html(&self, path: &str) -> Page {
        let request = self
            .client
            .get(self.url(path))
            .header("Accept", "text/html,*/*;q=0.8");
        Self::read(
            format!("GET {path} (Accept: text/html)"),
            request.send().await,
        )
        .await
    }

    /// Submits a urlencoded form, exactly the fields given.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let request = self.client.post(self.url(path)).form(fields);
        Self::read(format!("POST {path}"), request.send().await).await
    }

    /// Submits a form as if from a page served by `origin`.
    pub async fn post_from(&self, origin: &str, path: &str, fields: &[(&str, &str)]) -> Page {
        let request = self
            .client
            .post(self.url(path))
            .header(ORIGIN, origin)
            .form(fields);
        Self::read(
            format!("POST {path} (Origin: {origin})"),
            request.send().await,
        )
        .await
    }

    /// Submits a form with extra request headers, as a proxy in front might add them.
    pub async fn post_with_headers(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        fields: &[(&str, &str)],
    ) -> Page {
        let mut request = self.client.post(self.url(path)).form(fields);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        Self::read(format!("POST {path} {headers:?}"), request.send().await).await
    }

    /// Opens a page that holds a form and returns the form's CSRF token.
    pub async fn csrf_from(&self, path: &str) -> String {
        let page = self.get(path).await;
        page.assert_html_page(StatusCode::OK);
        page.csrf()
    }

    /// Fills in the sign-up form. Returns the answer to the POST.
    pub async fn submit_signup(
        &self,
        account_name: &str,
        email: &str,
        password: &str,
        confirmation: &str,
    ) -> Page {
        let csrf = self.csrf_from("/signup").await;
        self.post(
            "/signup",
            &[
                ("csrf_token", &csrf),
                ("account_name", account_name),
                ("email", email),
                ("password", password),
                ("password_confirmation", confirmation),
            ],
        )
        .await
    }

    /// Signs up with `PASSWORD` and insists on landing signed in.
    pub async fn sign_up(&self, account_name: &str, email: &str) {
        self.submit_signup(account_name, email, PASSWORD, PASSWORD)
            .await
            .assert_redirect("/tokens");
    }

    /// Fills in the sign-in form. Returns the answer to the POST.
    pub async fn log_in(&self, email: &str, password: &str) -> Page {
        let csrf = self.csrf_from("/login").await;
        self.post(
            "/login",
            &[
                ("csrf_token", &csrf),
                ("email", email),
                ("password", password),
            ],
        )
        .await
    }

    /// Presses "Sign out" on the token list.
    pub async fn log_out(&self) -> Page {
        let csrf = self.csrf_from("/tokens").await;
        self.post("/logout", &[("csrf_token", &csrf)]).await
    }

    /// Opens the new-token form.
    pub async fn token_form(&self) -> TokenForm {
        let page = self.get("/tokens/new").await;
        page.assert_html_page(StatusCode::OK);
        let nonce = page
            .field_value("nonce")
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| {
                panic!(
                    "the new-token form should carry a nonce; body:\n{}",
                    page.body
                )
            });
        TokenForm {
            csrf: page.csrf(),
            nonce,
        }
    }

    /// Submits a new-token form: `scopes` are the boxes ticked, `expires` the option chosen.
    pub async fn submit_token(
        &self,
        form: &TokenForm,
        name: &str,
        scopes: &[&str],
        expires: &str,
    ) -> Page {
        let mut fields = vec![
            ("csrf_token", form.csrf.as_str()),
            ("nonce", form.nonce.as_str()),
            ("name", name),
            ("expires_in_days", expires),
        ];
        fields.extend(scopes.iter().map(|scope| (*scope, "1")));
        self.post("/tokens", &fields).await
    }

    /// Creates a read+write token that never expires and reads it off the page that shows it once.
    pub async fn create_token(&self, name: &str) -> CreatedToken {
        let form = self.token_form().await;
        let page = self.submit_token(&form, name, &["read", "write"], "").await;
        read_created_page(&page)
    }

    /// Confirms revocation with `reason`. Returns the answer to the POST.
    pub async fn revoke(&self, id: i32, reason: &str) -> Page {
        let csrf = self
            .csrf_from(&format!("/tokens/{id}/confirm-revoke"))
            .await;
        self.post(
            &format!("/tokens/{id}/revoke"),
            &[("csrf_token", &csrf), ("reason", reason)],
        )
        .await
    }
}

/// The key, secret, curl line and id from the page `POST /tokens` answers with.
pub fn read_created_page(page: &Page) -> CreatedToken {
    page.assert_html_page(StatusCode::OK);
    let read = |id: &str| {
        page.element_text(id)
            .filter(|text| !text.is_empty())
            .unwrap_or_else(|| panic!("the created page should show #{id}; body:\n{}", page.body))
    };
    let id = page.first_token_link().unwrap_or_else(|| {
        panic!(
            "the created page should link to the token's page; body:\n{}",
            page.body
        )
    });
    CreatedToken {
        id,
        token: Token {
            key: read("token-key"),
            secret: read("token-secret"),
        },
        curl: read("curl-line"),
    }
}

/// An email no other test uses, made from a label.
pub fn email_for(label: &str) -> String {
    let local: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '.'
            }
        })
        .collect();
    format!("{local}@example.test")
}

/// A browser signed up as the owner of a new account called `account_name`.
pub async fn signed_up(address: &str, account_name: &str) -> Browser {
    let browser = Browser::new(address);
    browser
        .sign_up(account_name, &email_for(account_name))
        .await;
    browser
}

/// What went wrong across the cases of a table-driven test, reported together at the end.
#[derive(Default)]
pub struct CaseFailures(Vec<String>);

impl CaseFailures {
    /// Records a case's problems, with the page it got, unless there were none.
    pub fn record(&mut self, label: &str, problems: Vec<String>, page: &Page) {
        if !problems.is_empty() {
            self.0.push(format!(
                "  {label} ({}): {}\n    body: {}",
                page.request,
                problems.join("; "),
                page.body
            ));
        }
    }

    /// Panics with every recorded case, if any.
    pub fn assert_none(&self, what: &str) {
        assert!(self.0.is_empty(), "{what}:\n{}", self.0.join("\n"));
    }
}

/// Whether the page is an HTML page with `status`; the problem if not.
pub fn html_page_problem(page: &Page, status: StatusCode) -> Option<String> {
    let content_type = page.header(CONTENT_TYPE.as_str()).unwrap_or_default();
    (page.status != status || !content_type.starts_with("text/html")).then(|| {
        format!(
            "{} {content_type:?}, expected {status} text/html",
            page.status
        )
    })
}

/// How a form refused with 422 differs from the contract: the page says `message` and gives
/// back each field in `kept` as it was typed.
pub fn refused_form_problems(page: &Page, message: &str, kept: &[(&str, &str)]) -> Vec<String> {
    let mut problems: Vec<String> = html_page_problem(page, StatusCode::UNPROCESSABLE_ENTITY)
        .into_iter()
        .collect();
    if !page.text().contains(message) {
        problems.push(format!("no {message:?}"));
    }
    for (field, typed) in kept {
        let value = page.field_value(field);
        if value.as_deref() != Some(*typed) {
            problems.push(format!("{field} field is {value:?}, expected {typed:?}"));
        }
    }
    problems
}

/// Every cookie a response sets.
pub fn set_cookies(response: &reqwest::Response) -> Vec<SetCookie> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(SetCookie::parse)
        .collect()
}
