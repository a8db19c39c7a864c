//! Helpers shared by the off-chain crate's integration tests.
#![allow(dead_code)]

use ntx_devnet::{Devnet, DevnetConfig};
use ntx_offchain::Network;
use ntx_offchain::chain::Blockfrost;
use tokio_util::sync::CancellationToken;

/// A devnet served over HTTP on loopback and a Blockfrost provider pointed at
/// it; the server stops when this is dropped.
pub struct Net {
    /// The devnet itself, for funding, blocks and reading the store directly.
    pub devnet: Devnet,
    /// The provider under test, talking HTTP to `devnet`.
    pub provider: Blockfrost,
    stop: CancellationToken,
}

impl Drop for Net {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Opens a fresh devnet, serves it on a free port and waits until it listens.
pub async fn start() -> Net {
    let devnet = Devnet::open(DevnetConfig::default()).expect("devnet opens");
    let stop = CancellationToken::new();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(ntx_devnet::serve_devnet(
        devnet.clone(),
        0,
        stop.clone(),
        move |addr, _| {
            let _ = tx.send(addr);
        },
    ));
    let addr = rx.await.expect("devnet serves");
    let provider =
        Blockfrost::new(Network::Devnet, &format!("http://{addr}/api/v0"), None).expect("provider");
    Net {
        devnet,
        provider,
        stop,
    }
}

/// A proptest configuration of `cases` per property, unless the environment's
/// `PROPTEST_CASES` asks for another number (for the longer fuzzing runs).
pub fn config(cases: u32) -> proptest::prelude::ProptestConfig {
    let mut config = proptest::prelude::ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = cases;
    }
    config
}
