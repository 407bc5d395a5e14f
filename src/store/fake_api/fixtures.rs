//! Fixtures: tests store and read objects directly. These go through the
//! same create/update/delete code as requests (validation, versions, watch
//! events) but bypass faults (`forbid`, `set_unavailable`) and the request
//! counter, so a test can arrange the world while the API is "down".
//!
//! A `resource` is named as kubectl names it: `plural.group`
//! (`lvssnapshots.lvsnap.io`, `leases.coordination.k8s.io`), a core plural
//! (`nodes`), or a bare plural that only one group has (`lvssnapshots`).
//! An unknown or ambiguous name panics: it is a mistake in the test.
use serde_json::{Value, json};

use super::reply::Failure;
use super::resources::{self, ResourceInfo};
use super::{FakeApiServer, Key};

impl FakeApiServer {
    fn resolve(&self, resource: &str) -> ResourceInfo {
        let found = self
            .state
            .lock()
            .map_err(|_| "poisoned".to_string())
            .and_then(|s| resources::resolve(&s.resources, resource).cloned());
        match found {
            Ok(info) => info,
            Err(e) => panic!("fake API server: {e}"),
        }
    }

    fn stored(&self, info: &ResourceInfo, ns: Option<&str>, name: &str) -> Option<Value> {
        let s = self.state.lock().ok()?;
        s.objects.get(&Key::new(info, ns, name)).cloned()
    }

    /// A stored cluster-scoped object (None if absent).
    pub fn object(&self, resource: &str, name: &str) -> Option<Value> {
        self.stored(&self.resolve(resource), None, name)
    }

    /// A stored namespaced object (None if absent).
    pub fn object_in(&self, resource: &str, namespace: &str, name: &str) -> Option<Value> {
        self.stored(&self.resolve(resource), Some(namespace), name)
    }

    /// Every stored object of `resource`, by namespace, then name.
    pub fn objects(&self, resource: &str) -> Vec<Value> {
        let info = self.resolve(resource);
        self.state
            .lock()
            .map(|s| {
                s.objects
                    .iter()
                    .filter(|(k, _)| k.group == info.group && k.plural == info.plural)
                    .map(|(_, v)| v.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every events.k8s.io Event posted so far.
    pub fn events(&self) -> Vec<Value> {
        self.objects("events.events.k8s.io")
    }

    /// Stores `obj` as is, with only a new resourceVersion, bypassing
    /// validation and watches (for tests of malformed records). Its
    /// namespace is `metadata.namespace` for a namespaced resource.
    ///
    /// Panics if `obj` is not an object with an object (or no) `metadata`.
    pub fn insert_raw(&self, resource: &str, name: &str, mut obj: Value) {
        let info = self.resolve(resource);
        assert!(
            obj.is_object() && (obj["metadata"].is_object() || obj["metadata"].is_null()),
            "fake API server: insert_raw needs a JSON object with object metadata"
        );
        let ns = info.namespaced.then(|| {
            obj["metadata"]["namespace"]
                .as_str()
                .unwrap_or("")
                .to_string()
        });
        if let Ok(mut s) = self.state.lock() {
            let rv = s.bump();
            obj["metadata"]["resourceVersion"] = json!(rv.to_string());
            s.objects.insert(Key::new(&info, ns.as_deref(), name), obj);
        }
    }

    /// Stores `obj` (its `apiVersion` and `kind` name the resource) as a
    /// create would, or, if it exists, as an unconditional update would;
    /// then its `status`, if any, as a write of `/status` would. Answers
    /// the stored object.
    pub fn put_object(&self, obj: Value) -> Result<Value, Failure> {
        let info = {
            let s = self.lock()?;
            let (api_version, kind) = (
                obj["apiVersion"].as_str().unwrap_or(""),
                obj["kind"].as_str().unwrap_or(""),
            );
            resources::find_kind(&s.resources, api_version, kind)
                .cloned()
                .ok_or_else(|| {
                    Failure::bad_request(format!("no resource of kind {kind} in {api_version}"))
                })?
        };
        let ns = info.namespaced.then(|| {
            obj["metadata"]["namespace"]
                .as_str()
                .unwrap_or("default")
                .to_string()
        });
        let ns = ns.as_deref();
        let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
        let mut body = obj.clone();
        if let Some(m) = body["metadata"].as_object_mut() {
            m.remove("resourceVersion");
        }
        let stored = match self.create(&info, ns, body.clone()) {
            Err(f) if f.reason == "AlreadyExists" => self.update(&info, ns, &name, body, false)?,
            other => other?,
        };
        match obj.get("status") {
            Some(status) if info.status_subresource && !status.is_null() => {
                let mut with_status = stored;
                with_status["status"] = status.clone();
                let name = with_status["metadata"]["name"]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                self.update(&info, ns, &name, with_status, true)
            }
            _ => Ok(stored),
        }
    }

    /// Deletes as a DELETE without preconditions would: an object with
    /// finalizers is only marked (deletionTimestamp) until they are gone.
    pub fn delete_object(
        &self,
        resource: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Value, Failure> {
        let info = self.resolve(resource);
        self.delete(&info, namespace, name, &Default::default())
    }

    /// Creates a core v1 Node with `labels` (and the usual
    /// `kubernetes.io/hostname` label), Ready.
    pub fn create_node(&self, name: &str, labels: &[(&str, &str)]) -> Result<Value, Failure> {
        let mut l: serde_json::Map<String, Value> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        l.entry("kubernetes.io/hostname")
            .or_insert_with(|| json!(name));
        self.put_object(json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": l},
            "spec": {},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]},
        }))
    }

    /// Deletes a core v1 Node.
    pub fn delete_node(&self, name: &str) -> Result<Value, Failure> {
        self.delete_object("nodes", None, name)
    }
}
