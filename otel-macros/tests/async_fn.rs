//! Async functions: the span covers the whole call across `.await`, follows the task into
//! `otel_core::context::spawn`, ends on cancellation and panics, and `async-trait` methods are
//! traced as futures.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use opentelemetry::Context;
use opentelemetry::trace::Status;
use opentelemetry_semantic_conventions::attribute::{CODE_FUNCTION_NAME, ERROR_TYPE};
use otel_core::context::FutureExt as _;
use otel_core::macro_support::with_instrumentation;
use otel_core::testing::{TestTelemetry, assert_attr, assert_child_of};
use otel_core::traced;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Runs `fut` on a multi-thread runtime in a context routed to a fresh `TestTelemetry`.
fn run<F: Future<Output = ()> + Send + 'static>(fut: impl FnOnce() -> F) -> TestTelemetry {
    let tt = TestTelemetry::new();
    let cx = with_instrumentation(&Context::current(), &tt.instrumentation("test"));
    runtime().block_on(fut().with_context(cx));
    tt
}

#[traced]
async fn fetch(id: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(20)).await;
    lookup(id).await
}

#[traced]
async fn lookup(id: u64) -> u64 {
    tokio::task::yield_now().await;
    id + 1
}

#[test]
fn span_covers_the_call_across_await_and_parents_later_calls() {
    let tt = run(|| async {
        assert_eq!(fetch(1).await, 2);
    });
    let fetch = tt.span("fetch");
    let lookup = tt.span("lookup");
    assert_child_of(&lookup, &fetch);
    let took = fetch.end_time.duration_since(fetch.start_time).unwrap();
    assert!(took >= Duration::from_millis(20), "{took:?}");
    assert_attr(&fetch, "id", 1);
    assert_attr(&fetch, CODE_FUNCTION_NAME, "async_fn::fetch");
}

#[traced]
async fn fan_out(ids: Vec<u64>) -> u64 {
    let mut handles = Vec::new();
    for id in ids {
        // The core helper carries the current context (this call's span) into the task.
        handles.push(otel_core::context::spawn(lookup(id)));
    }
    let mut sum = 0;
    for h in handles {
        sum += h.await.unwrap();
    }
    sum
}

#[test]
fn spawned_work_stays_in_the_calls_trace() {
    let tt = run(|| async {
        assert_eq!(fan_out(vec![1, 2, 3]).await, 9);
    });
    let parent = tt.span("fan_out");
    let children = tt.spans_named("lookup");
    assert_eq!(children.len(), 3);
    for c in &children {
        assert_child_of(c, &parent);
    }
}

#[test]
fn traced_futures_are_send_and_can_be_spawned() {
    let tt = run(|| async {
        let h = otel_core::context::spawn(fetch(5));
        assert_eq!(h.await.unwrap(), 6);
    });
    assert_attr(&tt.span("fetch"), "id", 5);
}

#[traced]
async fn slow() {
    tokio::time::sleep(Duration::from_secs(10)).await;
}

#[test]
fn a_dropped_future_ends_its_span_as_cancelled() {
    let tt = run(|| async {
        let r = tokio::time::timeout(Duration::from_millis(10), slow()).await;
        assert!(r.is_err());
    });
    let span = tt.span("slow");
    assert_attr(&span, ERROR_TYPE, "cancelled");
    assert!(matches!(span.status, Status::Error { .. }));
}

#[traced]
async fn explode() {
    tokio::task::yield_now().await;
    panic!("boom");
}

#[test]
fn a_panic_in_an_async_fn_ends_its_span_with_an_error() {
    let tt = run(|| async {
        let r = otel_core::context::spawn(explode()).await;
        assert!(r.unwrap_err().is_panic());
    });
    let span = tt.span("explode");
    assert_attr(&span, ERROR_TYPE, "panic");
    assert_eq!(span.status, Status::error("the function panicked"));
}

#[traced(err, ret)]
async fn divide(a: i32, b: i32) -> Result<i32, String> {
    tokio::task::yield_now().await;
    if b == 0 {
        return Err("division by zero".into());
    }
    Ok(a / b)
}

struct Account {
    balance: i64,
}

impl Account {
    #[traced(skip(self), fields(balance = self.balance))]
    async fn withdraw(&mut self, amount: i64) -> i64 {
        tokio::task::yield_now().await;
        self.balance -= amount;
        self.balance
    }
}

#[test]
fn err_ret_and_methods_in_async_fns() {
    let tt = run(|| async {
        assert_eq!(divide(6, 3).await, Ok(2));
        assert!(divide(1, 0).await.is_err());
        let mut acc = Account { balance: 10 };
        assert_eq!(acc.withdraw(4).await, 6);
    });
    let spans = tt.spans_named("divide");
    assert_attr(&spans[0], otel_core::macro_support::RETURN, 2);
    assert_eq!(spans[1].status, Status::error("division by zero"));
    let w = tt.span("withdraw");
    assert_attr(&w, "balance", 10);
    assert_attr(&w, "amount", 4);
    assert_attr(&w, CODE_FUNCTION_NAME, "async_fn::Account::withdraw");
}

/// What `#[async_trait]` turns a trait method into (written out, to test without the crate).
trait Service {
    fn call<'a>(
        &'a self,
        id: u64,
    ) -> Pin<Box<dyn Future<Output = Result<u64, String>> + Send + 'a>>;
}

struct Svc {
    delay: Duration,
}

impl Service for Svc {
    #[traced(err)]
    fn call<'a>(
        &'a self,
        id: u64,
    ) -> Pin<Box<dyn Future<Output = Result<u64, String>> + Send + 'a>> {
        Box::pin(async move {
            let __self = self;
            let id = id;
            let __ret: Result<u64, String> = {
                tokio::time::sleep(__self.delay).await;
                if id == 0 {
                    return Err("no such id".to_owned());
                }
                Ok(lookup(id).await)
            };
            #[allow(unreachable_code)]
            __ret
        })
    }
}

static FIRST_POLL: Mutex<Option<SystemTime>> = Mutex::new(None);

#[test]
fn async_trait_methods_are_traced_as_futures() {
    let tt = run(|| async {
        let svc = Svc {
            delay: Duration::from_millis(15),
        };
        let fut = svc.call(1);
        // Creating the future does not start the span; polling it does.
        tokio::time::sleep(Duration::from_millis(30)).await;
        *FIRST_POLL.lock().unwrap() = Some(SystemTime::now());
        assert_eq!(fut.await, Ok(2));
        assert!(svc.call(0).await.is_err());
    });
    let calls = tt.spans_named("call");
    assert_eq!(calls.len(), 2);
    let took = calls[0]
        .end_time
        .duration_since(calls[0].start_time)
        .unwrap();
    assert!(took >= Duration::from_millis(15), "{took:?}");
    assert!(calls[0].start_time >= FIRST_POLL.lock().unwrap().unwrap());
    assert_child_of(&tt.span("lookup"), &calls[0]);
    assert_attr(&calls[0], "id", 1);
    assert_attr(
        &calls[0],
        CODE_FUNCTION_NAME,
        "<async_fn::Svc as async_fn::Service>::call",
    );
    assert_eq!(calls[1].status, Status::error("no such id"));
}

#[async_trait::async_trait]
trait Repository {
    async fn balance(&self, account: u64) -> Result<i64, String>;
}

struct Postgres;

#[async_trait::async_trait]
impl Repository for Postgres {
    #[traced(kind = client, err, fields(db.system.name = "postgresql"))]
    async fn balance(&self, account: u64) -> Result<i64, String> {
        tokio::time::sleep(Duration::from_millis(5)).await;
        if account == 0 {
            return Err("no such account".into());
        }
        Ok(lookup(account).await as i64 * 10)
    }
}

#[test]
fn methods_of_async_trait_impls_are_traced() {
    let tt = run(|| async {
        let repo: Box<dyn Repository + Send + Sync> = Box::new(Postgres);
        assert_eq!(repo.balance(4).await, Ok(50));
        assert!(repo.balance(0).await.is_err());
    });
    let spans = tt.spans_named("balance");
    assert_eq!(spans.len(), 2);
    assert_eq!(spans[0].span_kind, opentelemetry::trace::SpanKind::Client);
    assert_attr(&spans[0], "account", 4);
    assert_attr(&spans[0], "db.system.name", "postgresql");
    assert_attr(
        &spans[0],
        CODE_FUNCTION_NAME,
        "<async_fn::Postgres as async_fn::Repository>::balance",
    );
    let took = spans[0]
        .end_time
        .duration_since(spans[0].start_time)
        .unwrap();
    assert!(took >= Duration::from_millis(5), "{took:?}");
    assert_child_of(&tt.span("lookup"), &spans[0]);
    assert_eq!(spans[1].status, Status::error("no such account"));
}

/// A `-> impl Future` function whose body ends in `async move { .. }`: the future is traced
/// (its spans are children, its duration covers the await), not the function returning it.
#[traced(err)]
fn load(id: u64) -> impl Future<Output = Result<u64, String>> + Send {
    async move {
        tokio::time::sleep(Duration::from_millis(15)).await;
        if id == 0 {
            return Err("no such id".into());
        }
        Ok(lookup(id).await)
    }
}

#[test]
fn impl_future_functions_are_traced_as_futures() {
    let tt = run(|| async {
        assert_eq!(load(1).await, Ok(2));
        assert!(load(0).await.is_err());
    });
    let loads = tt.spans_named("load");
    assert_eq!(loads.len(), 2);
    let took = loads[0]
        .end_time
        .duration_since(loads[0].start_time)
        .unwrap();
    assert!(took >= Duration::from_millis(15), "{took:?}");
    assert_child_of(&tt.span("lookup"), &loads[0]);
    assert_eq!(loads[1].status, Status::error("no such id"));
}
