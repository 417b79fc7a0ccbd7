//! The request-latency histogram (`keyward_http_request_duration_seconds`): each worker counts
//! into cells only it writes, and the scrape adds the workers up and writes the lines itself.
//!
//! Why not a `metrics::Histogram`: the exporter's histogram is one store every worker appends
//! to, so its cache lines travel between cores on every request, and finding the handle
//! needed `HttpRequest::match_pattern()`, which builds a `String` each time. Here a request
//! costs a lookup in its worker's own route table (no allocation once the route has been seen),
//! and two uncontended atomic additions on that worker's own cache line. The hot path never
//! takes a lock: a worker locks its list of series only the first time it sees a route,
//! method and status class together, and the scrape locks it to read.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use actix_web::dev::{
    Path, Service, ServiceRequest, ServiceResponse, Transform, Url, forward_ready,
};
use actix_web::http::{Method, StatusCode};
use actix_web::{Error, HttpRequest};
use crossbeam_utils::CachePadded;
use metrics_exporter_prometheus::formatting::{
    sanitize_label_value, write_help_line, write_type_line,
};
use pin_project_lite::pin_project;

use super::REQUEST_DURATION;

/// Seconds: from 0.5 ms (a cached guard decision plus a small handler) to 10 s (a
/// request that waited out the pool's checkout timeout).
pub(super) const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

const HELP: &str = "Time to answer a request, by route pattern, method and status class.";

/// A request no route matched: one label, whatever path was asked for.
pub const UNMATCHED: &str = "unmatched";

/// Route shapes a worker remembers. The app's routes are a bounded set, so this is never
/// reached by real traffic; it bounds the table should some request shape escape that
/// reasoning (a rejected guard, a future actix), and past it a request is labelled
/// the slow way, still correctly.
const MAX_SHAPES: usize = 1024;

/// The methods a label may name; any other (extension methods are unbounded) is "other".
const METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other",
];
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

fn method_index(method: &Method) -> usize {
    match *method {
        Method::GET => 0,
        Method::HEAD => 1,
        Method::POST => 2,
        Method::PUT => 3,
        Method::PATCH => 4,
        Method::DELETE => 5,
        Method::OPTIONS => 6,
        _ => 7,
    }
}

fn class_index(status: StatusCode) -> usize {
    match status.as_u16() {
        100..=199 => 0,
        200..=299 => 1,
        300..=399 => 2,
        400..=499 => 3,
        _ => 4,
    }
}

/// Every worker's cells, for the scrape. One per server.
#[derive(Default)]
pub(super) struct Latency {
    workers: Mutex<Vec<Arc<WorkerSeries>>>,
}

/// The series one worker has counted into. Only that worker adds to the list.
#[derive(Default)]
struct WorkerSeries(Mutex<Vec<Arc<Series>>>);

/// One route, method and status class, as one worker counts it.
struct Series {
    route: Arc<str>,
    method: &'static str,
    status: &'static str,
    /// On a cache line of its own: another worker's series must not share it.
    cells: CachePadded<Cells>,
}

/// Per bucket (not cumulative: the scrape adds them up), the last one past every bound.
#[derive(Default)]
struct Cells {
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

impl Cells {
    fn record(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        // `le`: a sample on a bound counts in that bound's bucket.
        let bucket = LATENCY_BUCKETS.partition_point(|&bound| bound < seconds);
        // Only this worker writes these, so the line stays in its core's cache; Relaxed,
        // because the scrape needs each figure, not an order between them.
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }
}

/// The merged figures of one series across workers.
#[derive(Default)]
struct Totals {
    buckets: [u64; LATENCY_BUCKETS.len() + 1],
    sum_nanos: u64,
}

impl Latency {
    /// A worker's own table, registered (when `counted`) so the scrape finds it. Called
    /// once per worker.
    pub(super) fn worker(&self, counted: bool) -> WorkerRoutes {
        let series = Arc::new(WorkerSeries::default());
        if counted {
            self.workers
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(series.clone());
        }
        WorkerRoutes {
            series,
            table: RefCell::default(),
        }
    }

    /// The histogram's lines, every worker added up, sorted by route, method and status.
    pub(super) fn render(&self, out: &mut String) {
        let mut merged: BTreeMap<(Arc<str>, &'static str, &'static str), Totals> = BTreeMap::new();
        let workers = self
            .workers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for worker in workers {
            let series = worker
                .0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            for one in series {
                let totals = merged
                    .entry((one.route.clone(), one.method, one.status))
                    .or_default();
                for (total, cell) in totals.buckets.iter_mut().zip(&one.cells.buckets) {
                    *total += cell.load(Ordering::Relaxed);
                }
                totals.sum_nanos += one.cells.sum_nanos.load(Ordering::Relaxed);
            }
        }

        write_help_line(out, REQUEST_DURATION, None, None, HELP);
        write_type_line(out, REQUEST_DURATION, None, None, "histogram");
        for ((route, method, status), totals) in merged {
            let labels = format!(
                "route=\"{}\",method=\"{method}\",status=\"{status}\"",
                sanitize_label_value(&route)
            );
            // `_count` is the `+Inf` bucket by construction: both are this one running sum of
            // the figures read above, so a scrape racing a request can't disagree with itself.
            let mut count = 0;
            for (bound, n) in LATENCY_BUCKETS.iter().zip(&totals.buckets) {
                count += n;
                let _ = writeln!(
                    out,
                    "{REQUEST_DURATION}_bucket{{{labels},le=\"{bound}\"}} {count}"
                );
            }
            count += totals.buckets[LATENCY_BUCKETS.len()];
            let _ = writeln!(
                out,
                "{REQUEST_DURATION}_bucket{{{labels},le=\"+Inf\"}} {count}"
            );
            let sum = totals.sum_nanos as f64 / 1e9;
            let _ = writeln!(out, "{REQUEST_DURATION}_sum{{{labels}}} {sum}");
            let _ = writeln!(out, "{REQUEST_DURATION}_count{{{labels}}} {count}");
        }
        out.push('\n');
    }
}

/// One worker's routes and series. Per worker (actix workers are single-threaded, and the
/// `Rc` keeps it on its thread), so the table needs no lock.
pub(super) struct WorkerRoutes {
    series: Arc<WorkerSeries>,
    table: RefCell<RouteTable>,
}

#[derive(Default)]
struct RouteTable {
    /// A request's shape (see `shape`) to its index in `routes`.
    by_shape: HashMap<Box<[u8]>, usize>,
    /// A route's label to its index in `routes`.
    by_label: HashMap<Arc<str>, usize>,
    routes: Vec<Route>,
    /// Reused for every request's shape, so building it allocates only while growing.
    scratch: Vec<u8>,
}

/// One route label and this worker's series for it, by method and status class.
struct Route {
    label: Arc<str>,
    series: [[Option<Arc<Series>>; CLASSES.len()]; METHODS.len()],
}

impl WorkerRoutes {
    pub(super) fn observe(&self, req: &HttpRequest, status: StatusCode, took: Duration) {
        let method = method_index(req.method());
        let class = class_index(status);
        let mut table = self.table.borrow_mut();
        let route = table.route_of(req, method);
        let Route { label, series } = &mut table.routes[route];
        let series = series[method][class].get_or_insert_with(|| {
            // The first time this worker sees this route, method and class together: the
            // only time the hot path touches the list the scrape reads.
            let made = Arc::new(Series {
                route: label.clone(),
                method: METHODS[method],
                status: CLASSES[class],
                cells: CachePadded::default(),
            });
            self.series
                .0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(made.clone());
            made
        });
        series.cells.record(took);
    }
}

impl RouteTable {
    /// The index of the request's route label: from the shape when it has been seen, else
    /// from `match_pattern()`, remembered under the shape.
    fn route_of(&mut self, req: &HttpRequest, method: usize) -> usize {
        let mut scratch = std::mem::take(&mut self.scratch);
        let shaped = shape(req.match_info(), method, &mut scratch);
        let found = if shaped {
            self.by_shape.get(scratch.as_slice()).copied()
        } else {
            None
        };
        let route = found.unwrap_or_else(|| {
            // The pattern (`/clusters/{slug}`), never the path: a path names a tenant's data
            // and has no bound.
            let pattern = req.match_pattern();
            let matched = pattern.is_some();
            let route = self.route_labelled(pattern.as_deref().unwrap_or(UNMATCHED));
            // Only matched requests: an unmatched path is any path at all.
            if shaped && matched && self.by_shape.len() < MAX_SHAPES {
                self.by_shape.insert(scratch.as_slice().into(), route);
            }
            route
        });
        self.scratch = scratch;
        route
    }

    fn route_labelled(&mut self, label: &str) -> usize {
        if let Some(&route) = self.by_label.get(label) {
            return route;
        }
        let label: Arc<str> = label.into();
        self.routes.push(Route {
            label: label.clone(),
            series: Default::default(),
        });
        self.by_label.insert(label, self.routes.len() - 1);
        self.routes.len() - 1
    }
}

/// Writes into `out` what decides a routed request's pattern, without allocating once `out`
/// has grown: the method, the path's literal text with each captured value cut out, and
/// each capture's name, by text and by address. actix-router gives every resource
/// definition its own `'static` copy of its capture names, so the address tells apart two
/// definitions that name a capture alike (`/a/{id:\d+}` and `/a/{id}`), whose paths would
/// otherwise look the same here. The method is there because a resource's guard may
/// choose by it. `false` when a capture isn't a slice of the path (a value a middleware
/// added), which can't be shaped: such a request is labelled the slow way.
fn shape(info: &Path<Url>, method: usize, out: &mut Vec<u8>) -> bool {
    out.clear();
    let path = info.as_str();
    let base = path.as_ptr() as usize;
    out.push(method as u8);
    let mut at = 0;
    for (name, value) in info.iter() {
        let start = (value.as_ptr() as usize).wrapping_sub(base);
        let end = start.wrapping_add(value.len());
        if start < at || end < start || end > path.len() {
            return false;
        }
        // 0xFF never occurs in UTF-8, so it can't be confused with the path's text; the
        // name ends with another, and the address has a fixed width: no two shapes write
        // the same bytes.
        out.extend_from_slice(&path.as_bytes()[at..start]);
        out.push(0xFF);
        out.extend_from_slice(name.as_bytes());
        out.push(0xFF);
        out.extend_from_slice(&(name.as_ptr() as usize).to_ne_bytes());
        at = end;
    }
    out.extend_from_slice(&path.as_bytes()[at..]);
    true
}

/// actix middleware timing every request: `.wrap(Condition::new(on, metrics.request_timer()))`.
pub struct RequestTimer(pub(super) Rc<WorkerRoutes>);

impl<S, B> Transform<S, ServiceRequest> for RequestTimer
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Transform = TimedService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(TimedService {
            service,
            routes: self.0.clone(),
        }))
    }
}

pub struct TimedService<S> {
    service: S,
    routes: Rc<WorkerRoutes>,
}

impl<S, B> Service<ServiceRequest> for TimedService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Future = Timed<S::Future>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        Timed {
            started: Instant::now(),
            routes: self.routes.clone(),
            answer: self.service.call(req),
        }
    }
}

pin_project! {
    /// The inner service's answer, timed when it arrives; a future of its own rather than a
    /// boxed `async` block, so a request allocates nothing here.
    pub struct Timed<F> {
        #[pin]
        answer: F,
        started: Instant,
        routes: Rc<WorkerRoutes>,
    }
}

impl<F, B> Future for Timed<F>
where
    F: Future<Output = Result<ServiceResponse<B>, Error>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = std::task::ready!(this.answer.poll(cx))?;
        this.routes.observe(
            response.request(),
            response.status(),
            this.started.elapsed(),
        );
        Poll::Ready(Ok(response))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use actix_web::test::{TestRequest, call_service, init_service};
    use actix_web::{App, HttpResponse, web};

    use super::super::{Metrics, Snapshot};
    use super::*;

    /// The page's lines of this histogram, as `series -> value`.
    fn histogram_lines(metrics: &Metrics) -> (String, HashMap<String, f64>) {
        let page = metrics.render(Snapshot::default()).expect("metrics are on");
        let lines = page
            .lines()
            .filter(|line| line.starts_with(REQUEST_DURATION))
            .filter_map(|line| {
                let (series, value) = line.rsplit_once(' ')?;
                Some((series.to_string(), value.parse().ok()?))
            })
            .collect();
        (page, lines)
    }

    const GET_OK: &str = "route=\"unmatched\",method=\"GET\",status=\"2xx\"";

    #[test]
    fn observations_on_two_worker_threads_add_up_in_the_scrape() {
        let metrics = Metrics::on(false);
        // Each thread is a worker with its own timer, as actix builds one `App` per worker.
        std::thread::scope(|scope| {
            for (fast, slow) in [(3, 0), (5, 2)] {
                let metrics = &metrics;
                scope.spawn(move || {
                    let timer = metrics.request_timer();
                    let request = TestRequest::get().uri("/anything").to_http_request();
                    for _ in 0..fast {
                        timer
                            .0
                            .observe(&request, StatusCode::OK, Duration::from_millis(1));
                    }
                    for _ in 0..slow {
                        // Past the last bound: only in `+Inf`.
                        timer
                            .0
                            .observe(&request, StatusCode::OK, Duration::from_secs(20));
                    }
                });
            }
        });

        let (page, lines) = histogram_lines(&metrics);
        let value = |series: &str| lines.get(series).copied().unwrap_or(f64::NAN);
        assert_eq!(
            value(&format!("{REQUEST_DURATION}_count{{{GET_OK}}}")),
            10.0,
            "{page}"
        );
        assert_eq!(
            value(&format!(
                "{REQUEST_DURATION}_bucket{{{GET_OK},le=\"0.001\"}}"
            )),
            8.0,
            "{page}"
        );
        assert_eq!(
            value(&format!("{REQUEST_DURATION}_bucket{{{GET_OK},le=\"10\"}}")),
            8.0,
            "{page}"
        );
        assert_eq!(
            value(&format!(
                "{REQUEST_DURATION}_bucket{{{GET_OK},le=\"+Inf\"}}"
            )),
            10.0,
            "{page}"
        );
        let sum = value(&format!("{REQUEST_DURATION}_sum{{{GET_OK}}}"));
        assert!((sum - (8.0 * 0.001 + 2.0 * 20.0)).abs() < 1e-9, "{page}");
        // One series on the page, however many workers counted into it.
        assert_eq!(
            page.matches(&format!("{REQUEST_DURATION}_count{{")).count(),
            1,
            "{page}"
        );
    }

    #[test]
    fn the_histogram_is_cumulative_and_its_inf_bucket_is_its_count() {
        let metrics = Metrics::on(false);
        let timer = metrics.request_timer();
        let request = TestRequest::get().uri("/anything").to_http_request();
        // Samples below, on and between the bounds, and past the last one.
        let samples: Vec<Duration> = [
            0.0001, 0.0005, 0.0007, 0.003, 0.003, 0.04, 0.9, 1.0, 7.0, 11.0, 60.0,
        ]
        .into_iter()
        .map(Duration::from_secs_f64)
        .collect();
        for took in &samples {
            timer.0.observe(&request, StatusCode::OK, *took);
        }

        let (page, lines) = histogram_lines(&metrics);
        let head = format!("{REQUEST_DURATION}_bucket{{{GET_OK},le=\"");
        let buckets: Vec<(String, f64)> = page
            .lines()
            .filter_map(|line| line.strip_prefix(head.as_str()))
            .filter_map(|rest| {
                let (le, value) = rest.split_once("\"} ")?;
                Some((le.to_string(), value.parse().ok()?))
            })
            .collect();
        let les: Vec<&str> = buckets.iter().map(|(le, _)| le.as_str()).collect();
        let mut expected_les: Vec<String> = LATENCY_BUCKETS.iter().map(|b| b.to_string()).collect();
        expected_les.push("+Inf".to_string());
        assert_eq!(les, expected_les, "{page}");
        for pair in buckets.windows(2) {
            assert!(pair[1].1 >= pair[0].1, "not cumulative: {pair:?}\n{page}");
        }
        for ((le, count), bound) in buckets.iter().zip(LATENCY_BUCKETS) {
            let at_most = samples.iter().filter(|s| s.as_secs_f64() <= *bound).count();
            assert_eq!(*count, at_most as f64, "le={le}\n{page}");
        }
        let count = lines[&format!("{REQUEST_DURATION}_count{{{GET_OK}}}")];
        assert_eq!(buckets.last().map(|(_, n)| *n), Some(count), "{page}");
        assert_eq!(count, samples.len() as f64, "{page}");
    }

    #[test]
    fn the_page_has_help_and_type_lines_even_before_any_request() {
        let metrics = Metrics::on(false);
        let page = metrics.render(Snapshot::default()).expect("metrics are on");
        assert!(
            page.contains(&format!("# HELP {REQUEST_DURATION} {HELP}\n")),
            "{page}"
        );
        assert!(
            page.contains(&format!("# TYPE {REQUEST_DURATION} histogram\n")),
            "{page}"
        );
    }

    #[actix_web::test]
    async fn each_request_is_labelled_with_the_pattern_match_pattern_gives() {
        let metrics = Arc::new(Metrics::on(false));
        let ok = || async { HttpResponse::Ok().finish() };
        let app = init_service(
            App::new()
                .wrap(metrics.request_timer())
                // Two definitions whose paths look alike once the value is cut out: only
                // the capture names' addresses tell them apart.
                .service(web::resource(r"/a/{id:\d+}").to(ok))
                .service(web::resource("/a/{id}").to(ok))
                .service(
                    web::scope("/s/{tenant}")
                        .service(web::resource("/x").to(ok))
                        .service(web::resource("/{item}").to(ok)),
                )
                .service(web::resource("/plain").to(ok)),
        )
        .await;
        let mut expected: HashMap<String, usize> = HashMap::new();
        for path in [
            "/a/1",
            "/a/b",
            "/a/22",
            "/a/c",
            "/a/1",
            "/s/t1/x",
            "/s/t2/x",
            "/s/t1/y",
            "/s/t2/z",
            "/plain",
            "/plain",
            "/nowhere-4711",
            "/a/1/2",
        ] {
            let request = TestRequest::get().uri(path).to_request();
            let response = call_service(&app, request).await;
            let pattern = response
                .request()
                .match_pattern()
                .unwrap_or_else(|| UNMATCHED.to_string());
            let class = CLASSES[class_index(response.status())];
            *expected.entry(format!("{pattern} {class}")).or_default() += 1;
        }
        assert_eq!(expected.len(), 6, "{expected:?}");

        let page = metrics.render(Snapshot::default()).expect("metrics are on");
        let head = format!("{REQUEST_DURATION}_count{{route=\"");
        let counted: HashMap<String, usize> = page
            .lines()
            .filter_map(|line| line.strip_prefix(head.as_str()))
            .filter_map(|rest| {
                let (route, rest) = rest.split_once("\",method=\"GET\",status=\"")?;
                let (class, count) = rest.split_once("\"} ")?;
                // The exporter's escaping doubles a backslash.
                Some((
                    format!("{} {class}", route.replace(r"\\", r"\")),
                    count.parse().ok()?,
                ))
            })
            .collect();
        assert_eq!(counted, expected, "{page}");
    }
}
