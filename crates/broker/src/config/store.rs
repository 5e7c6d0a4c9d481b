//! [`StoreSettings`]: how the redb store runs (the `[store]` section).

use serde::Deserialize;

/// How the embedded redb store runs (the `[store]` section; only with `storage = "redb"`).
///
/// ```
/// use mqgate_broker::BrokerConfig;
/// let config = BrokerConfig::from_toml_str("[store]\ncache_bytes = 33554432\n")?;
/// assert_eq!(config.store.cache_bytes, 32 << 20);
/// assert!(config.store.quick_repair);
/// # Ok::<(), mqgate_broker::BrokerError>(())
/// ```
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSettings {
    /// Memory redb keeps as its page cache, in bytes: the store's share of the broker's
    /// memory, however large the file grows (64 MiB by default). A larger cache saves
    /// reads from the kernel's page cache, not disk writes.
    pub cache_bytes: usize,
    /// Each commit also records redb's allocator state, in two phases, so a start after a
    /// crash opens the file at once instead of walking every page of it (which takes about
    /// as long as reading the whole file). On by default; off saves a little per commit.
    pub quick_repair: bool,
    /// Store files up to this size (1 GiB by default) are checked at start for being mostly
    /// free space and compacted if so; the check reads the whole file, so larger ones start
    /// without it.
    pub compact_check_max_bytes: u64,
    /// Message bodies no queue refers to any more that wait before any is deleted (32 768
    /// by default); past that the oldest are deleted a chunk at a time, so a draining
    /// backlog frees whole pages of the file instead of rewriting one per message. 0
    /// deletes each body with its last reference.
    pub deferred_deletes: usize,
}

impl Default for StoreSettings {
    fn default() -> Self {
        let redb = mqgate_store::RedbOptions::default();
        StoreSettings {
            cache_bytes: redb.cache_bytes,
            quick_repair: redb.quick_repair,
            compact_check_max_bytes: redb.compact_check_max_bytes,
            deferred_deletes: redb.deferred_deletes,
        }
    }
}

impl StoreSettings {
    /// The store crate's options for these settings.
    pub fn redb_options(&self) -> mqgate_store::RedbOptions {
        mqgate_store::RedbOptions {
            cache_bytes: self.cache_bytes,
            quick_repair: self.quick_repair,
            compact_check_max_bytes: self.compact_check_max_bytes,
            deferred_deletes: self.deferred_deletes,
        }
    }
}
