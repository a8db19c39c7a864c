//! A devnet served over HTTP inside the test process, on a wall clock, seen
//! through the off-chain library's Blockfrost client: the same path `ntx`
//! takes against `ntx devnet up`.

use std::sync::Arc;

use ntx_devnet::{ClockMode, Devnet, DevnetConfig};
use ntx_offchain::Network;
use ntx_offchain::chain::{Blockfrost, ChainProvider};
use ntx_offchain::client::{DeploymentInfo, EscrowClient};
use ntx_offchain::protocol::Asset;
use ntx_offchain::wallet::{SigningKey, Wallet};
use tokio_util::sync::CancellationToken;

/// A running devnet and a chain provider pointed at it. Stops when dropped.
pub struct LiveDevnet {
    /// The chain itself (time travel, faucet).
    pub devnet: Devnet,
    /// Its Blockfrost-compatible API root.
    pub url: String,
    /// The provider the client code uses.
    pub chain: Arc<dyn ChainProvider>,
    /// The devnet's NTX.
    pub ntx: Asset,
    cancel: CancellationToken,
}

impl LiveDevnet {
    /// Starts an in-memory devnet with `slot_length_ms` slots, serving on a
    /// free loopback port. Call from inside a multi-threaded tokio runtime.
    pub async fn start(slot_length_ms: u64) -> LiveDevnet {
        let devnet = Devnet::open(DevnetConfig {
            slot_length_ms,
            clock: ClockMode::Wall,
            ..DevnetConfig::default()
        })
        .expect("an in-memory devnet opens");
        let cancel = CancellationToken::new();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let served = devnet.clone();
        let c = cancel.clone();
        tokio::spawn(async move {
            let r = ntx_devnet::serve_devnet(served, 0, c, move |addr, _| {
                let _ = tx.send(addr);
            })
            .await;
            if let Err(e) = r {
                eprintln!("devnet server stopped: {e}");
            }
        });
        let addr = rx.await.expect("the devnet listens");
        let url = format!("http://{addr}/api/v0");
        let chain: Arc<dyn ChainProvider> = Arc::new(
            Blockfrost::for_network(Network::Devnet, Some(url.as_str())).expect("a devnet client"),
        );
        let ntx = Asset {
            policy: *devnet.ntx_policy(),
            name: b"NTX".to_vec(),
        };
        LiveDevnet {
            devnet,
            url,
            chain,
            ntx,
            cancel,
        }
    }

    /// A devnet wallet from a fixed seed, funded with `ada` ADA (in one UTxO)
    /// and `ntx` NTX units; confirmed before this returns.
    pub fn wallet(&self, seed: u8, ada: u64, ntx: u64) -> Wallet {
        let wallet = Wallet::new(
            Network::Devnet,
            SigningKey::from_normal_bytes(&[seed; 32]),
            None,
        );
        if ada > 0 || ntx > 0 {
            self.devnet
                .fund_now(&wallet.address().to_bech32(), ada * 1_000_000, ntx)
                .expect("the faucet pays");
        }
        wallet
    }

    /// Deploys the escrow for the devnet NTX (paid by a fresh funded wallet)
    /// and connects a client to it.
    pub async fn deploy(&self) -> (DeploymentInfo, EscrowClient) {
        let deployer = self.wallet(1, 100, 0);
        let info = EscrowClient::deploy(self.chain.clone(), Network::Devnet, &self.ntx, &deployer)
            .await
            .expect("deploys")
            .info;
        let client = EscrowClient::connect(self.chain.clone(), &info)
            .await
            .expect("connects");
        (info, client)
    }

    /// Moves the clock `slots` forward and puts a block at the new slot, so
    /// that the tip (what providers report) moves too.
    pub fn advance(&self, slots: u64) {
        self.devnet.advance_slots(slots).expect("time moves");
        self.devnet.produce_block().expect("a block");
    }

    /// Lovelace and units of the devnet NTX held by `wallet`.
    pub fn balance(&self, wallet: &Wallet) -> (u64, u64) {
        self.devnet
            .utxos_at(&wallet.address().to_bytes())
            .expect("the devnet answers")
            .iter()
            .map(|(_, cbor)| {
                let out = ntx_offchain::tx::TxOutput::from_cbor(cbor).expect("outputs decode");
                (
                    out.value.lovelace,
                    out.value.quantity_of(&self.ntx.policy, &self.ntx.name),
                )
            })
            .fold((0, 0), |(l, n), (a, b)| (l + a, n + b))
    }
}

impl Drop for LiveDevnet {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}
