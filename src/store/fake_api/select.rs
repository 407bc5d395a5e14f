//! Label selectors (equality and set-based, as `labels.Parse`) and field
//! selectors (`metadata.name`, `metadata.namespace`, as for CRDs).
use serde_json::Value;

use super::reply::Failure;
use super::validate::{valid_label_key, valid_label_value};

#[derive(Debug, Clone, PartialEq)]
enum Req {
    Exists(String),
    NotExists(String),
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Gt(String, i64),
    Lt(String, i64),
}

/// A parsed selector: every requirement must hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Selector {
    labels: Vec<Req>,
    /// (field, wanted, equal?)
    fields: Vec<(String, String, bool)>,
}

fn bad(selector: &str, why: &str) -> Failure {
    Failure::bad_request(format!(
        "unable to parse requirement: {why} (in selector {selector:?})"
    ))
}

/// Splits at commas outside parentheses.
fn terms(s: &str) -> Vec<&str> {
    let (mut out, mut depth, mut start) = (Vec::new(), 0i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn key(selector: &str, k: &str) -> Result<String, Failure> {
    let k = k.trim();
    if valid_label_key(k) {
        Ok(k.to_string())
    } else {
        Err(bad(selector, &format!("invalid label key {k:?}")))
    }
}

fn value(selector: &str, v: &str) -> Result<String, Failure> {
    let v = v.trim();
    if valid_label_value(v) {
        Ok(v.to_string())
    } else {
        Err(bad(selector, &format!("invalid label value {v:?}")))
    }
}

fn set_term(selector: &str, term: &str) -> Result<Option<Req>, Failure> {
    let Some((k, rest)) = term.split_once(char::is_whitespace) else {
        return Ok(None);
    };
    let rest = rest.trim_start();
    let (negate, list) = if let Some(l) = rest.strip_prefix("notin") {
        (true, l)
    } else if let Some(l) = rest.strip_prefix("in") {
        (false, l)
    } else {
        return Ok(None);
    };
    let list = list.trim();
    let Some(inner) = list.strip_prefix('(').and_then(|l| l.strip_suffix(')')) else {
        return Err(bad(selector, "expected a parenthesised set of values"));
    };
    let values = inner
        .split(',')
        .map(|v| value(selector, v))
        .collect::<Result<Vec<_>, _>>()?;
    let k = key(selector, k)?;
    Ok(Some(if negate {
        Req::NotIn(k, values)
    } else {
        Req::In(k, values)
    }))
}

fn label_term(selector: &str, term: &str) -> Result<Req, Failure> {
    if let Some(k) = term.strip_prefix('!') {
        return Ok(Req::NotExists(key(selector, k)?));
    }
    if let Some(req) = set_term(selector, term)? {
        return Ok(req);
    }
    for op in ["!=", "==", "=", ">", "<"] {
        if let Some((k, v)) = term.split_once(op) {
            let k = key(selector, k)?;
            let number = || {
                v.trim()
                    .parse::<i64>()
                    .map_err(|_| bad(selector, &format!("{v:?} is not an integer")))
            };
            return Ok(match op {
                "!=" => Req::NotEq(k, value(selector, v)?),
                ">" => Req::Gt(k, number()?),
                "<" => Req::Lt(k, number()?),
                _ => Req::Eq(k, value(selector, v)?),
            });
        }
    }
    Ok(Req::Exists(key(selector, term)?))
}

impl Selector {
    /// Parses `labelSelector` and `fieldSelector` (either may be empty);
    /// a malformed one is a 400, as from the real server.
    pub fn parse(labels: &str, fields: &str) -> Result<Self, Failure> {
        let mut s = Selector::default();
        for term in terms(labels).into_iter().map(str::trim) {
            if !term.is_empty() {
                s.labels.push(label_term(labels, term)?);
            }
        }
        for term in fields.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (f, v, eq) = if let Some((f, v)) = term.split_once("!=") {
                (f, v, false)
            } else if let Some((f, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                (f, v, true)
            } else {
                return Err(Failure::bad_request(format!(
                    "invalid selector: '{fields}'; can't understand '{term}'"
                )));
            };
            let f = f.trim();
            if f != "metadata.name" && f != "metadata.namespace" {
                return Err(Failure::bad_request(format!(
                    "field label not supported: {f}"
                )));
            }
            s.fields.push((f.to_string(), v.trim().to_string(), eq));
        }
        Ok(s)
    }

    /// Also requires `metadata.name` to be `name`.
    pub fn with_name(mut self, name: &str) -> Self {
        self.fields
            .push(("metadata.name".into(), name.to_string(), true));
        self
    }

    pub fn matches(&self, obj: &Value) -> bool {
        let meta = &obj["metadata"];
        let label = |k: &str| meta["labels"][k].as_str();
        let labels_ok = self.labels.iter().all(|r| match r {
            Req::Exists(k) => label(k).is_some(),
            Req::NotExists(k) => label(k).is_none(),
            Req::Eq(k, v) => label(k) == Some(v),
            Req::NotEq(k, v) => label(k) != Some(v),
            Req::In(k, vs) => label(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            Req::NotIn(k, vs) => label(k).is_none_or(|l| vs.iter().all(|v| v != l)),
            Req::Gt(k, n) => label(k)
                .and_then(|l| l.parse::<i64>().ok())
                .is_some_and(|l| l > *n),
            Req::Lt(k, n) => label(k)
                .and_then(|l| l.parse::<i64>().ok())
                .is_some_and(|l| l < *n),
        });
        labels_ok
            && self.fields.iter().all(|(f, v, eq)| {
                let have = match f.as_str() {
                    "metadata.name" => meta["name"].as_str(),
                    _ => meta["namespace"].as_str(),
                };
                (have.unwrap_or("") == v) == *eq
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(labels: Value) -> Value {
        json!({"metadata": {"name": "o1", "namespace": "ns1", "labels": labels}})
    }

    fn sel(labels: &str) -> Selector {
        Selector::parse(labels, "").unwrap_or_else(|e| panic!("{labels}: {e}"))
    }

    #[test]
    fn label_selectors_equality_and_sets() {
        let o = obj(json!({"tier": "db", "zone": "a", "n": "7"}));
        for yes in [
            "",
            "tier=db",
            "tier==db",
            "tier!=web",
            "missing!=x",
            "tier",
            "!missing",
            "tier in (db,web)",
            "tier in ( web , db )",
            "zone notin (b,c)",
            "missing notin (a)",
            "tier=db, zone in (a)",
            "n>5",
            "n<8",
            "example.com/x notin (y)",
        ] {
            assert!(sel(yes).matches(&o), "{yes:?} should match");
        }
        for no in [
            "tier=web",
            "tier!=db",
            "!tier",
            "missing",
            "tier in (web)",
            "missing in (a)",
            "zone notin (a,b)",
            "tier=db,zone=b",
            "n>7",
            "tier>1",
        ] {
            assert!(!sel(no).matches(&o), "{no:?} should not match");
        }
    }

    #[test]
    fn malformed_selectors_are_refused() {
        for bad in [
            "tier in db",
            "Bad Key=x",
            "k=bad value!",
            "n>x",
            "tier in (a",
            "=x",
        ] {
            let err = Selector::parse(bad, "").expect_err(bad);
            assert_eq!(
                (err.code, err.reason.as_str()),
                (400, "BadRequest"),
                "{bad}"
            );
        }
        let err = Selector::parse("", "spec.node=x").expect_err("unsupported field");
        assert!(err.message.contains("field label not supported"), "{err}");
        assert!(Selector::parse("", "metadata").is_err());
    }

    #[test]
    fn field_selectors_on_name_and_namespace() {
        let o = obj(json!({}));
        for (f, want) in [
            ("metadata.name=o1", true),
            ("metadata.name==o1", true),
            ("metadata.name!=o1", false),
            ("metadata.namespace=ns1,metadata.name!=o2", true),
            ("metadata.namespace=ns2", false),
        ] {
            let s = Selector::parse("", f).unwrap_or_else(|e| panic!("{f}: {e}"));
            assert_eq!(s.matches(&o), want, "{f}");
        }
    }
}
