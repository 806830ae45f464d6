//! [`ImageServer`]: firmware images offered over HTTP at one-time URLs, on `127.0.0.1:0`, as
//! the gateway's own image endpoint offers them to devices that pull their firmware (Tasmota's
//! `OtaUrl`). Each offer has a random token; its URL answers `200` with the image until one
//! download completed (hyper took the last byte of the body), then `404`, as does any unknown
//! token or path.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Images on offer, by token.
type Offers = Arc<RwLock<HashMap<String, Bytes>>>;

/// A one-time-URL image server on loopback. Stops when dropped.
#[derive(Debug)]
pub struct ImageServer {
    addr: SocketAddr,
    offers: Offers,
    completed: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl ImageServer {
    /// Starts serving on `127.0.0.1` at a free port.
    pub async fn start() -> io::Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let offers = Offers::default();
        let completed = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(accept(
            listener,
            Arc::clone(&offers),
            Arc::clone(&completed),
        ));
        Ok(Self {
            addr,
            offers,
            completed,
            task,
        })
    }

    /// Offers `image` and returns its one-time URL, e.g. `http://127.0.0.1:41234/fw/<token>.bin`.
    pub fn offer(&self, image: impl Into<Bytes>) -> String {
        let token = format!(
            "{:016x}{:016x}",
            rand::random::<u64>(),
            rand::random::<u64>()
        );
        self.offers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(token.clone(), image.into());
        format!("http://{}/fw/{token}.bin", self.addr)
    }

    /// How many downloads completed.
    pub fn completed_downloads(&self) -> u64 {
        self.completed.load(Ordering::SeqCst)
    }

    /// Where it listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for ImageServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept(listener: TcpListener, offers: Offers, completed: Arc<AtomicU64>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let offers = Arc::clone(&offers);
        let completed = Arc::clone(&completed);
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let answer = serve(&request, &offers, &completed);
                async move { Ok::<_, Infallible>(answer) }
            });
            if let Err(e) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %e, "image server connection ended");
            }
        });
    }
}

fn serve<B>(
    request: &Request<B>,
    offers: &Offers,
    completed: &Arc<AtomicU64>,
) -> Response<OneTimeBody> {
    let token = request
        .uri()
        .path()
        .strip_prefix("/fw/")
        .map(|rest| rest.strip_suffix(".bin").unwrap_or(rest).to_owned());
    let image = token.as_ref().and_then(|t| {
        offers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(t)
            .cloned()
    });
    let (Some(token), Some(image), true) = (token, image, request.method() == hyper::Method::GET)
    else {
        let mut response = Response::new(OneTimeBody::empty());
        *response.status_mut() = StatusCode::NOT_FOUND;
        return response;
    };
    let offers = Arc::clone(offers);
    let completed = Arc::clone(completed);
    let body = OneTimeBody {
        data: Some(image),
        on_end: Some(Box::new(move || {
            offers
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&token);
            completed.fetch_add(1, Ordering::SeqCst);
        })),
    };
    let mut response = Response::new(body);
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/octet-stream"),
    );
    response
}

/// A body of one chunk that withdraws its offer once hyper took all of it.
struct OneTimeBody {
    data: Option<Bytes>,
    on_end: Option<Box<dyn FnOnce() + Send + Sync>>,
}

impl OneTimeBody {
    fn empty() -> Self {
        Self {
            data: None,
            on_end: None,
        }
    }
}

impl Body for OneTimeBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        // hyper stops polling once it has the Content-Length's worth, so the offer is
        // withdrawn as the last (only) chunk is handed over.
        let frame = self.data.take().map(|data| Ok(Frame::data(data)));
        if let Some(on_end) = self.on_end.take() {
            on_end();
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.data.as_ref().map_or(0, |d| d.len() as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Empty};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;

    async fn get(url: &str) -> (u16, Bytes) {
        let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
        let response = client.get(url.parse().unwrap()).await.unwrap();
        let status = response.status().as_u16();
        (
            status,
            response.into_body().collect().await.unwrap().to_bytes(),
        )
    }

    #[tokio::test]
    async fn an_offered_image_should_be_served_once_then_gone() {
        let server = ImageServer::start().await.unwrap();
        let url = server.offer(Bytes::from_static(b"SIMFW:2.0\nabc"));
        assert_eq!(
            get(&url).await,
            (200, Bytes::from_static(b"SIMFW:2.0\nabc"))
        );
        assert_eq!(get(&url).await.0, 404);
        assert_eq!(server.completed_downloads(), 1);
    }

    #[tokio::test]
    async fn unknown_tokens_and_paths_should_be_not_found() {
        let server = ImageServer::start().await.unwrap();
        let url = server.offer(Bytes::from_static(b"x"));
        let base = format!("http://{}", server.local_addr());
        assert_eq!(get(&format!("{base}/fw/0123.bin")).await.0, 404);
        assert_eq!(get(&format!("{base}/")).await.0, 404);
        assert_eq!(get(&url).await.0, 200);
        assert_eq!(server.completed_downloads(), 1);
    }
}
