//! Indexes by target: for one kind, which objects are about the Deployment `namespace/name` (the
//! policies that target it, the HPAs and ScaledObjects that scale it, its pods). Kept from the same
//! watch events as the kind's cache, so a look-up costs the matches, not the cache's size.
//!
//! An index names objects; their contents are read from the cache. The two are updated one event
//! apart, so a reader checks what it finds (the object may be gone, or be about another target by
//! now) and the index never has to be exact, only never miss an object the cache holds for long.
//! The pods' index is their cache: it keeps what is read of each pod, and no store holds them.

use std::collections::HashMap;
use std::sync::RwLock;

use kube::ResourceExt;
use kube::runtime::watcher;

/// `namespace/name` of a Deployment.
pub fn target_key(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

/// Objects of one kind by the target they are about, each with what `value_of` keeps of it (nothing,
/// `()`, where the kind's cache holds the object; the pods' index is their cache).
pub struct TargetIndex<K, V = ()> {
    target_of: fn(&K) -> Option<String>,
    value_of: fn(&K) -> V,
    inner: RwLock<Inner<V>>,
}

struct Inner<V> {
    /// target key → the objects about it (in the target's namespace), by name, sorted. A list, not
    /// a tree: most targets have one or a few, and a tree's first node is a few hundred bytes.
    by_target: HashMap<String, Vec<(String, V)>>,
    /// `namespace/name` of an object → its target key.
    target: HashMap<String, String>,
    /// While a watch (re)lists: the index being built, swapped in when the list is complete.
    listing: Option<Box<Inner<V>>>,
}

impl<V> Default for Inner<V> {
    fn default() -> Self {
        Inner { by_target: HashMap::new(), target: HashMap::new(), listing: None }
    }
}

impl<V> Inner<V> {
    fn insert(&mut self, object: String, name: String, key: Option<String>, value: V) -> Option<String> {
        let old = self.remove(&object, &name);
        if let Some(key) = key {
            let objects = self.by_target.entry(key.clone()).or_default();
            let at = objects.partition_point(|(n, _)| *n < name);
            objects.insert(at, (name, value));
            self.target.insert(object, key);
        }
        old
    }

    fn remove(&mut self, object: &str, name: &str) -> Option<String> {
        let old = self.target.remove(object)?;
        if let Some(objects) = self.by_target.get_mut(&old) {
            objects.retain(|(n, _)| n != name);
            if objects.is_empty() {
                self.by_target.remove(&old);
            }
        }
        Some(old)
    }
}

/// The targets an event touched: the object's target before and after it (both, when it moved).
pub type Touched = Vec<String>;

impl<K: kube::Resource> TargetIndex<K> {
    pub fn new(target_of: fn(&K) -> Option<String>) -> Self {
        TargetIndex::keeping(target_of, |_| ())
    }
}

impl<K: kube::Resource, V: Clone> TargetIndex<K, V> {
    /// An index that keeps `value_of` each object.
    pub fn keeping(target_of: fn(&K) -> Option<String>, value_of: fn(&K) -> V) -> Self {
        TargetIndex { target_of, value_of, inner: RwLock::new(Inner::default()) }
    }

    /// The names of the objects about `key` (`namespace/name`).
    pub fn get(&self, key: &str) -> Vec<String> {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        inner.by_target.get(key).map(|objects| objects.iter().map(|(name, _)| name.clone()).collect()).unwrap_or_default()
    }

    /// What was kept of the objects about `key`, by name.
    pub fn values(&self, key: &str) -> Vec<V> {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        inner.by_target.get(key).map(|objects| objects.iter().map(|(_, value)| value.clone()).collect()).unwrap_or_default()
    }

    /// Follows one watch event; returns the targets whose set of objects changed.
    pub fn apply(&self, event: &watcher::Event<K>) -> Touched {
        let id = |object: &K| (format!("{}/{}", object.namespace().unwrap_or_default(), object.name_any()), object.name_any());
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        let mut touched = Vec::new();
        match event {
            watcher::Event::Apply(object) => {
                let (object_id, name) = id(object);
                let key = (self.target_of)(object);
                let old = inner.insert(object_id, name, key.clone(), (self.value_of)(object));
                if old != key {
                    touched.extend(old);
                    touched.extend(key);
                }
            }
            watcher::Event::Delete(object) => {
                let (object_id, name) = id(object);
                touched.extend(inner.remove(&object_id, &name));
            }
            watcher::Event::Init => inner.listing = Some(Box::default()),
            watcher::Event::InitApply(object) => {
                let (object_id, name) = id(object);
                let key = (self.target_of)(object);
                let value = (self.value_of)(object);
                inner.listing.get_or_insert_with(Box::default).insert(object_id, name, key, value);
            }
            watcher::Event::InitDone => {
                if let Some(listed) = inner.listing.take() {
                    // What appeared, disappeared or moved during the gap the relist covers.
                    for (object, key) in &inner.target {
                        if listed.target.get(object) != Some(key) {
                            touched.push(key.clone());
                        }
                    }
                    for (object, key) in &listed.target {
                        if inner.target.get(object) != Some(key) {
                            touched.push(key.clone());
                        }
                    }
                    let Inner { by_target, target, .. } = *listed;
                    inner.by_target = by_target;
                    inner.target = target;
                }
            }
        }
        touched.sort();
        touched.dedup();
        touched
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;

    fn object(name: &str, target: &str) -> ConfigMap {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "shop", "labels": {"target": target}}
        }))
        .expect("a config map")
    }

    fn index() -> TargetIndex<ConfigMap> {
        TargetIndex::new(|o: &ConfigMap| {
            let target = o.labels().get("target")?;
            Some(target_key(&o.namespace().unwrap_or_default(), target))
        })
    }

    #[test]
    fn an_index_by_target_follows_applies_moves_and_deletes() {
        let index = index();
        assert_eq!(index.apply(&watcher::Event::Apply(object("a", "web"))), vec!["shop/web"]);
        assert_eq!(index.apply(&watcher::Event::Apply(object("b", "web"))), vec!["shop/web"]);
        assert_eq!(index.get("shop/web"), vec!["a", "b"]);
        assert!(index.apply(&watcher::Event::Apply(object("a", "web"))).is_empty(), "an update in place touches nothing");
        assert_eq!(index.apply(&watcher::Event::Apply(object("a", "api"))), vec!["shop/api", "shop/web"]);
        assert_eq!(index.get("shop/web"), vec!["b"]);
        assert_eq!(index.get("shop/api"), vec!["a"]);
        assert_eq!(index.apply(&watcher::Event::Delete(object("b", "web"))), vec!["shop/web"]);
        assert!(index.get("shop/web").is_empty());
        assert!(index.get("other/web").is_empty());
    }

    #[test]
    fn an_index_that_keeps_values_serves_the_latest_of_each_object_by_name() {
        let index = TargetIndex::keeping(
            |o: &ConfigMap| Some(target_key(&o.namespace().unwrap_or_default(), o.labels().get("target")?)),
            |o: &ConfigMap| o.labels().get("version").cloned().unwrap_or_default(),
        );
        let versioned = |name: &str, version: &str| {
            let mut object = object(name, "web");
            object.labels_mut().insert("version".into(), version.into());
            object
        };
        index.apply(&watcher::Event::Apply(versioned("b", "1")));
        index.apply(&watcher::Event::Apply(versioned("a", "1")));
        assert!(index.apply(&watcher::Event::Apply(versioned("b", "2"))).is_empty(), "a change in place moves nothing");
        assert_eq!(index.values("shop/web"), vec!["1", "2"]);
        index.apply(&watcher::Event::Delete(versioned("a", "1")));
        assert_eq!(index.values("shop/web"), vec!["2"]);
    }

    #[test]
    fn a_relist_replaces_the_index_and_names_what_changed_while_the_watch_was_away() {
        let index = index();
        index.apply(&watcher::Event::Apply(object("a", "web")));
        index.apply(&watcher::Event::Apply(object("b", "api")));
        index.apply(&watcher::Event::Init);
        index.apply(&watcher::Event::InitApply(object("a", "web")));
        index.apply(&watcher::Event::InitApply(object("c", "db")));
        assert_eq!(index.get("shop/api"), vec!["b"], "the old index serves until the list is complete");
        assert_eq!(index.apply(&watcher::Event::InitDone), vec!["shop/api", "shop/db"]);
        assert!(index.get("shop/api").is_empty());
        assert_eq!(index.get("shop/db"), vec!["c"]);
        assert_eq!(index.get("shop/web"), vec!["a"]);
    }
}
