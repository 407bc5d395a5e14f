//! Reading `/metrics` with a real parser (the `prometheus-parse` crate) and
//! over real HTTP (a plain HTTP/1.0 GET on a TCP socket).
#![allow(dead_code)]

use std::io::{Read, Write};

/// A parsed exposition.
pub struct Scrape(pub prometheus_parse::Scrape);

impl Scrape {
    /// Parses `text`; panics (with the text) when it is not the format.
    pub fn parse(text: &str) -> Scrape {
        let lines = text.lines().map(|l| Ok(l.to_string()));
        Scrape(prometheus_parse::Scrape::parse(lines).unwrap_or_else(|e| {
            panic!("/metrics does not parse: {e}\n{text}");
        }))
    }

    /// The value of the one sample of `metric` whose labels include `labels`.
    pub fn value(&self, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let found: Vec<f64> = self
            .0
            .samples
            .iter()
            .filter(|s| s.metric == metric)
            .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .filter_map(|s| match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => Some(v),
                _ => None,
            })
            .collect();
        assert!(
            found.len() <= 1,
            "{metric} {labels:?} matches {} samples",
            found.len()
        );
        found.first().copied()
    }

    /// Every sample of `metric`: (labels as pairs, value).
    pub fn all(&self, metric: &str) -> Vec<(Vec<(String, String)>, f64)> {
        let mut out: Vec<(Vec<(String, String)>, f64)> = self
            .0
            .samples
            .iter()
            .filter(|s| s.metric == metric)
            .filter_map(|s| {
                let v = match s.value {
                    prometheus_parse::Value::Counter(v)
                    | prometheus_parse::Value::Gauge(v)
                    | prometheus_parse::Value::Untyped(v) => v,
                    _ => return None,
                };
                let mut l: Vec<(String, String)> = s
                    .labels
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                l.sort();
                Some((l, v))
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// The metric names (families) present.
    pub fn names(&self) -> std::collections::BTreeSet<String> {
        self.0.samples.iter().map(|s| s.metric.clone()).collect()
    }
}

/// `GET path` on `addr`: (status code, body).
pub fn get(addr: &str, path: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("{addr}: {e}"));
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").expect("send");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read");
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, body.to_string())
}

/// The address a process logged as serving /metrics (`addr=…`).
pub fn served_addr(log: &crate::common::Log) -> String {
    log.wait_for("serving /metrics", 1, std::time::Duration::from_secs(30));
    let line = log
        .lines()
        .into_iter()
        .find(|l| l.contains("serving /metrics"))
        .expect("line");
    line.split("addr=")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .expect("addr= in the log line")
        .to_string()
}
