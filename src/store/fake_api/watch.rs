//! Watches: newline-delimited JSON events, as the real server streams them.
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures::{StreamExt, stream};
use http::Response;
use http_body_util::{BodyExt, StreamBody};
use serde_json::{Value, json};
use tokio::sync::broadcast;
use tokio::time::Sleep;

use super::list::{number, selector};
use super::reply::{Body, Failure};
use super::resources::ResourceInfo;
use super::select::Selector;
use super::{Event, FakeApiServer};

type Frame = Result<http_body::Frame<Bytes>, Infallible>;

fn line(kind: &str, object: &Value) -> Frame {
    let v = json!({"type": kind, "object": object});
    Ok(http_body::Frame::data(Bytes::from(format!("{v}\n"))))
}

/// Which events a watch sees, and as what.
#[derive(Clone)]
struct Filter {
    info: ResourceInfo,
    namespace: Option<String>,
    selector: Selector,
}

impl Filter {
    fn matches(&self, obj: &Value) -> bool {
        self.namespace
            .as_deref()
            .is_none_or(|ns| obj["metadata"]["namespace"].as_str() == Some(ns))
            && self.selector.matches(obj)
    }

    /// The event as this watch reports it: an object entering the
    /// selection is ADDED, one leaving it DELETED, as from the real server.
    fn apply(&self, ev: &Event) -> Option<&'static str> {
        if ev.group != self.info.group || ev.plural != self.info.plural {
            return None;
        }
        let now = self.matches(&ev.object);
        match (ev.kind, ev.prev.as_ref().map(|p| self.matches(p)), now) {
            ("MODIFIED", Some(false), true) => Some("ADDED"),
            ("MODIFIED", Some(true), false) => Some("DELETED"),
            (kind, _, true) => Some(kind),
            _ => None,
        }
    }

    /// The bookmark that ends a streaming list's initial events.
    fn initial_events_end(&self, rv: u64) -> Frame {
        let object = json!({"kind": self.info.kind, "apiVersion": self.info.api_version(),
                            "metadata": {"resourceVersion": rv.to_string(),
                                         "annotations": {"k8s.io/initial-events-end": "true"}}});
        line("BOOKMARK", &object)
    }

    fn bookmark(&self, rv: u64) -> Frame {
        let object = json!({"kind": self.info.kind, "apiVersion": self.info.api_version(),
                            "metadata": {"resourceVersion": rv.to_string()}});
        line("BOOKMARK", &object)
    }
}

/// A live watch after its initial events.
struct Follow {
    rx: broadcast::Receiver<Event>,
    kill: tokio::sync::watch::Receiver<u64>,
    deadline: Option<Pin<Box<Sleep>>>,
    filter: Filter,
    /// The newest version this watch has seen (for its final bookmark).
    seen: u64,
    bookmarks: bool,
    done: bool,
}

async fn expire(deadline: &mut Option<Pin<Box<Sleep>>>) {
    match deadline {
        Some(d) => d.as_mut().await,
        None => std::future::pending().await,
    }
}

impl Follow {
    async fn next(mut self) -> Option<(Frame, Self)> {
        loop {
            if self.done {
                return None;
            }
            tokio::select! {
                ev = self.rx.recv() => match ev {
                    Ok(ev) if ev.rv <= self.seen => continue,
                    Ok(ev) => {
                        self.seen = ev.rv;
                        if let Some(kind) = self.filter.apply(&ev) {
                            return Some((line(kind, &ev.object), self));
                        }
                    }
                    // A watcher too slow for the buffer is ended, as the
                    // real server ends it; the client resumes from its
                    // last version (replayed from the history).
                    Err(_) => return None,
                },
                _ = self.kill.changed() => return None,
                _ = expire(&mut self.deadline) => {
                    self.done = true;
                    if self.bookmarks {
                        let last = self.filter.bookmark(self.seen);
                        return Some((last, self));
                    }
                    return None;
                }
            }
        }
    }
}

fn stream_response(
    frames: impl futures::Stream<Item = Frame> + Send + Sync + 'static,
) -> Response<Body> {
    let mut r = Response::new(BodyExt::boxed(StreamBody::new(frames)));
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}

impl FakeApiServer {
    /// A watch of `info` (in `ns`, or everywhere; of `name` only if given).
    pub(super) fn watch(
        &self,
        info: &ResourceInfo,
        ns: Option<&str>,
        name: Option<&str>,
        q: &BTreeMap<String, String>,
    ) -> Result<Response<Body>, Failure> {
        let mut selector = selector(q)?;
        if let Some(name) = name {
            selector = selector.with_name(name);
        }
        let since = number(q, "resourceVersion")?.unwrap_or(0);
        let timeout = number(q, "timeoutSeconds")?;
        let bookmarks = q
            .get("allowWatchBookmarks")
            .is_some_and(|b| b == "true" || b == "1");
        // Streaming lists: the current state, then a bookmark marking its end.
        let initial_events = q.get("sendInitialEvents").is_some_and(|v| v == "true");
        if initial_events
            && (!bookmarks
                || q.get("resourceVersionMatch").map(String::as_str) != Some("NotOlderThan"))
        {
            return Err(Failure::invalid_options(
                "sendInitialEvents requires allowWatchBookmarks=true and \
                 resourceVersionMatch=NotOlderThan",
            ));
        }
        let filter = Filter {
            info: info.clone(),
            namespace: ns.map(str::to_string),
            selector,
        };
        // Subscribed under the lock that writes take: no change is missed
        // or seen twice between the initial events and the live ones.
        let s = self.lock()?;
        if since != 0 && since < s.compacted && !initial_events {
            let gone = Failure::expired(format!(
                "too old resource version: {since} ({})",
                s.compacted
            ));
            return Ok(stream_response(stream::iter([line(
                "ERROR",
                &gone.to_status(),
            )])));
        }
        let initial: Vec<Frame> = if since == 0 || initial_events {
            // From now: the current objects as synthetic ADDED events.
            s.objects
                .iter()
                .filter(|(k, o)| {
                    k.group == info.group && k.plural == info.plural && filter.matches(o)
                })
                .map(|(_, o)| line("ADDED", o))
                .collect()
        } else {
            s.history
                .iter()
                .filter(|e| e.rv > since)
                .filter_map(|e| filter.apply(e).map(|kind| line(kind, &e.object)))
                .collect()
        };
        let seen = s.rv.max(since);
        let follow = Follow {
            rx: s.tx.subscribe(),
            kill: self.kill.subscribe(),
            deadline: timeout.map(|t| Box::pin(tokio::time::sleep(Duration::from_secs(t)))),
            filter: filter.clone(),
            seen,
            bookmarks,
            done: false,
        };
        drop(s);
        let start = match initial_events {
            true => filter.initial_events_end(seen),
            false => filter.bookmark(seen),
        };
        let start = bookmarks.then_some(start);
        let frames = stream::iter(initial.into_iter().chain(start))
            .chain(stream::unfold(follow, Follow::next));
        Ok(stream_response(frames))
    }
}
