//! Where the engine reads the registry from: a snapshot and a change signal.

use std::sync::{Arc, RwLock};

use tokio::sync::watch;

use super::directory::{EngineDirectory, StaticDirectory};

/// A registry the engine can read and watch.
pub trait DirectorySource: Send + Sync + 'static {
    /// The current snapshot.
    fn current(&self) -> Arc<dyn EngineDirectory>;
    /// Ticks whenever the registry changed.
    fn changes(&self) -> watch::Receiver<u64>;
}

/// A registry held in memory and replaced by hand: tests, and servers without a registry.
pub struct StaticSource {
    dir: RwLock<Arc<StaticDirectory>>,
    version: watch::Sender<u64>,
}

impl StaticSource {
    pub fn new(dir: StaticDirectory) -> Arc<Self> {
        Arc::new(Self {
            dir: RwLock::new(Arc::new(dir)),
            version: watch::Sender::new(0),
        })
    }

    /// Replaces the registry and tells the engine.
    pub fn set(&self, dir: StaticDirectory) {
        match self.dir.write() {
            Ok(mut d) => *d = Arc::new(dir),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(dir),
        }
        self.version.send_modify(|v| *v += 1);
    }

    pub fn snapshot(&self) -> Arc<StaticDirectory> {
        match self.dir.read() {
            Ok(d) => Arc::clone(&d),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }
}

impl DirectorySource for StaticSource {
    fn current(&self) -> Arc<dyn EngineDirectory> {
        self.snapshot()
    }

    fn changes(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }
}
