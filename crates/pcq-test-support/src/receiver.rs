//! A webhook receiver on loopback.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::sync::oneshot;

/// A request a [`Receiver`] got.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: axum::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or_default()
    }
}

struct ReceiverState {
    received: Mutex<Vec<Received>>,
    status: AtomicU16,
    count: tokio::sync::watch::Sender<usize>,
    /// While `true`, answers wait (the request is recorded first).
    held: tokio::sync::watch::Sender<bool>,
}

/// A webhook receiver on loopback that records what it gets and answers with a chosen status;
/// it can be taken down (connections are then refused) and brought back on the same port.
pub struct Receiver {
    pub url: String,
    addr: SocketAddr,
    state: Arc<ReceiverState>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(ReceiverState {
            received: Mutex::new(Vec::new()),
            status: AtomicU16::new(200),
            count: tokio::sync::watch::Sender::new(0),
            held: tokio::sync::watch::Sender::new(false),
        });
        let mut receiver = Receiver {
            url: format!("http://{addr}/hooks/pcq"),
            addr,
            state,
            stop: None,
            task: None,
        };
        receiver.serve(listener);
        receiver
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let state = self.state.clone();
        let app = axum::Router::new().route(
            "/hooks/pcq",
            axum::routing::post(
                move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                    let state = state.clone();
                    async move {
                        let count = {
                            let mut received = state.received.lock().unwrap();
                            received.push(Received {
                                headers,
                                body: body.to_vec(),
                            });
                            received.len()
                        };
                        state.count.send_replace(count);
                        let _ = state.held.subscribe().wait_for(|held| !*held).await;
                        let status = state.status.load(Ordering::SeqCst);
                        (
                            axum::http::StatusCode::from_u16(status).unwrap(),
                            "receiver says hi",
                        )
                    }
                },
            ),
        );
        let (stop, stopped) = oneshot::channel::<()>();
        self.stop = Some(stop);
        self.task = Some(tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        }));
    }

    /// Answer every request with `status` from now on.
    pub fn respond_with(&self, status: u16) {
        self.state.status.store(status, Ordering::SeqCst);
    }

    /// Hold answers (a slow receiver) until [`Receiver::release`].
    pub fn hold(&self) {
        self.state.held.send_replace(true);
    }

    /// Answer held and later requests.
    pub fn release(&self) {
        self.state.held.send_replace(false);
    }

    /// Waits until `n` requests have arrived (at most `limit`, then fails): for work done in the
    /// background, without sleeping.
    pub async fn wait_for(&self, n: usize, limit: std::time::Duration) {
        let mut count = self.state.count.subscribe();
        tokio::time::timeout(limit, count.wait_for(|c| *c >= n))
            .await
            .unwrap_or_else(|_| panic!("no {n} deliveries within {limit:?}"))
            .expect("receiver running");
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    /// Takes the receiver down: connections are refused until [`Receiver::up`].
    pub async fn down(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// Brings the receiver back on the same port.
    pub async fn up(&mut self) {
        let listener = tokio::net::TcpListener::bind(self.addr).await.unwrap();
        self.serve(listener);
    }
}
