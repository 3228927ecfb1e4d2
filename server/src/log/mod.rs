//! Where the history lives, behind one seam: in memory (the hub's own), on disk
//! (`--data-dir`, [`disk`]) or in Redis (`--redis`, [`redis`]). A backend never holds the
//! app: what it needs of the hub it is handed at each call, as a [`HubAccess`].

pub(crate) mod disk;
pub(crate) mod redis;

use std::io;
use std::sync::Arc;

use ssecast::{Hub, Millis};

use crate::config::ServeArgs;
pub(crate) use disk::{Store, StoreError};
pub(crate) use redis::{Cluster, ClusterError};

/// The hub as a backend sees it, for the length of a call.
pub(crate) trait HubAccess: Send + Sync {
    /// Runs `f` on the hub (with the hub's time now) under its lock, then delivers what it
    /// queued.
    fn with_hub(&self, f: &mut dyn FnMut(&mut Hub, Millis));
    /// Whether the server is stopping (a long-running backend task then returns).
    fn is_shutting_down(&self) -> bool;
}

/// Where the history lives.
#[derive(Debug)]
pub(crate) enum Log {
    /// Only in the hub: lost at exit.
    Memory,
    /// `--data-dir`: an append-only log on disk.
    Disk(Arc<Store>),
    /// `--redis`: Redis Streams shared by every node.
    Redis(Arc<Cluster>),
}

impl Log {
    /// Opens the backend `args` name and builds the hub from it (restored from disk).
    pub(crate) fn open(args: &ServeArgs) -> io::Result<(Hub, Log)> {
        let config = args.hub_config();
        if let Some(url) = &args.redis {
            let cluster = Cluster::new(url, args.history).map_err(io::Error::other)?;
            return Ok((Hub::new(config), Log::Redis(Arc::new(cluster))));
        }
        if let Some(dir) = &args.data_dir {
            let (hub, store) = disk::restore(dir, config)?;
            return Ok((hub, Log::Disk(store)));
        }
        Ok((Hub::new(config), Log::Memory))
    }

    /// Where the history is, for the start-up log.
    pub(crate) fn describe(&self) -> String {
        match self {
            Log::Memory => "memory".into(),
            Log::Disk(store) => format!("{}", store.dir().display()),
            Log::Redis(_) => "redis".into(),
        }
    }
}
