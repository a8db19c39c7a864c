//! Model loading (candle-examples recipe, local files only) and the in-memory cache.
//!
//! Every file is hashed and compared with the hash the job spec names *before* any of
//! it is parsed. Models are cached by the hashes of their files, so repeated jobs on
//! the same model neither re-hash nor reload it.

use std::any::Any;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::error::InferenceError;
use crate::hash::Hash32;
use crate::task::TaskTag;

/// One file of a model and the blake2b-256 the job spec names for it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ModelFile {
    /// File name inside the model directory (e.g. `model.safetensors`).
    pub name: &'static str,
    /// The blake2b-256 the job spec names.
    pub expected: Hash32,
}

/// Hashes every file and compares with the expected hash, before anything is loaded.
/// Returns the paths in the order given.
pub fn verify_files(dir: &Path, files: &[ModelFile]) -> Result<Vec<PathBuf>, InferenceError> {
    files
        .iter()
        .map(|file| {
            let path = dir.join(file.name);
            let actual =
                Hash32::of_file(&path).map_err(|source| InferenceError::ModelFileUnreadable {
                    path: path.clone(),
                    source,
                })?;
            if actual != file.expected {
                return Err(InferenceError::ModelHashMismatch {
                    path,
                    expected: file.expected,
                    actual,
                });
            }
            Ok(path)
        })
        .collect()
}

/// Cache key: the task and the hashes of all its model files (content, not paths).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct CacheKey {
    pub(crate) task: TaskTag,
    pub(crate) files: Vec<Hash32>,
}

type Entry = (CacheKey, Arc<dyn Any + Send + Sync>);

/// A small cache of loaded models, least recently used evicted first.
pub(crate) struct ModelCache {
    capacity: usize,
    entries: Mutex<VecDeque<Entry>>,
}

impl ModelCache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            entries: Mutex::new(VecDeque::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Entry>> {
        // A panic while holding the lock cannot leave the deque inconsistent.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The cached model for `key`, moved to the front.
    pub(crate) fn get<M: Send + Sync + 'static>(&self, key: &CacheKey) -> Option<Arc<M>> {
        let mut entries = self.lock();
        let pos = entries.iter().position(|(k, _)| k == key)?;
        let entry = entries.remove(pos)?;
        let model = Arc::clone(&entry.1).downcast::<M>().ok();
        entries.push_front(entry);
        model
    }

    /// Inserts (or replaces) `key`, evicting the least recently used beyond capacity.
    pub(crate) fn insert<M: Send + Sync + 'static>(&self, key: CacheKey, model: Arc<M>) {
        let mut entries = self.lock();
        entries.retain(|(k, _)| k != &key);
        entries.push_front((key, model));
        entries.truncate(self.capacity);
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn key(b: u8) -> CacheKey {
        CacheKey {
            task: TaskTag::Embed,
            files: vec![Hash32([b; 32])],
        }
    }

    #[test]
    fn cache_evicts_least_recently_used() {
        let cache = ModelCache::new(2);
        cache.insert(key(1), Arc::new(1u32));
        cache.insert(key(2), Arc::new(2u32));
        assert_eq!(*cache.get::<u32>(&key(1)).unwrap(), 1); // 1 is now most recent
        cache.insert(key(3), Arc::new(3u32));
        assert!(cache.get::<u32>(&key(2)).is_none());
        assert_eq!(*cache.get::<u32>(&key(1)).unwrap(), 1);
        assert_eq!(*cache.get::<u32>(&key(3)).unwrap(), 3);
        assert_eq!(cache.len(), 2);
        // A wrong type is a miss, not a panic.
        assert!(cache.get::<String>(&key(3)).is_none());
    }

    #[test]
    fn verify_files_names_file_and_both_hashes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.json"), b"{}").unwrap();
        let good = ModelFile {
            name: "a.json",
            expected: Hash32::of(b"{}"),
        };
        assert_eq!(
            verify_files(dir.path(), std::slice::from_ref(&good))
                .unwrap()
                .len(),
            1
        );
        let wrong = ModelFile {
            name: "a.json",
            expected: Hash32([7; 32]),
        };
        let err = verify_files(dir.path(), &[good, wrong]).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("a.json"), "{text}");
        assert!(text.contains(&Hash32([7; 32]).to_hex()), "{text}");
        assert!(text.contains(&Hash32::of(b"{}").to_hex()), "{text}");
        let missing = ModelFile {
            name: "missing.json",
            expected: Hash32([7; 32]),
        };
        let err = verify_files(dir.path(), &[missing]).unwrap_err();
        assert!(matches!(err, InferenceError::ModelFileUnreadable { .. }));
        assert!(err.to_string().contains("missing.json"));
    }
}
