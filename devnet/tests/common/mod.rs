//! Helpers shared by the devnet's integration tests.
#![allow(dead_code, clippy::unwrap_used, missing_docs)]

use ntx_devnet::txbuilder::{Output, TxBuilder};
use ntx_devnet::{Devnet, DevnetConfig, KeyPair, OutRef, OutputView, Value};
use pallas_addresses::{Network, ShelleyAddress, ShelleyDelegationPart, ShelleyPaymentPart};
use pallas_crypto::hash::Hash;

/// Compiles UPLC text to the CBOR-wrapped flat bytes a transaction carries.
pub fn compile(src: &str) -> Vec<u8> {
    let program = uplc::parser::program(src).expect("parses");
    let program: uplc::ast::Program<uplc::ast::DeBruijn> = program.try_into().expect("debruijn");
    program.to_cbor().expect("encodes")
}

pub fn always_succeeds() -> Vec<u8> {
    compile("(program 1.0.0 (lam ctx (con unit ())))")
}

/// A V3 validator that succeeds only when the redeemer is the integer 42, and
/// traces "redeemer is not 42" otherwise.
pub fn redeemer_is_42() -> Vec<u8> {
    compile(
        r#"(program 1.0.0
  (lam ctx
    (force
      [ [ [ (force (builtin ifThenElse))
            [ [ (builtin equalsInteger)
                [ (builtin unIData)
                  [ (force (builtin headList))
                    [ (force (builtin tailList))
                      [ (force (force (builtin sndPair))) [ (builtin unConstrData) ctx ] ] ] ] ] ]
              (con integer 42) ] ]
          (delay (con unit ())) ]
        (delay (force [ [ (force (builtin trace)) (con string "redeemer is not 42") ] (delay (error)) ])) ])))"#,
    )
}

/// Returns True instead of unit: fine for V2, a failure in V3.
pub fn returns_true() -> Vec<u8> {
    compile("(program 1.0.0 (lam ctx (con bool True)))")
}

pub fn v3_hash(script: &[u8]) -> Hash<28> {
    ntx_devnet::script_hash(3, script)
}

pub fn script_address(h: Hash<28>) -> Vec<u8> {
    ShelleyAddress::new(
        Network::Testnet,
        ShelleyPaymentPart::script_hash(h),
        ShelleyDelegationPart::Null,
    )
    .to_vec()
}

/// PlutusData CBOR of an integer.
pub fn int_data(n: i64) -> Vec<u8> {
    let d = pallas_primitives::PlutusData::BigInt(pallas_primitives::BigInt::Int(n.into()));
    pallas_codec::minicbor::to_vec(d).unwrap()
}

pub fn devnet() -> Devnet {
    Devnet::open(DevnetConfig::default()).expect("opens")
}

pub fn addr(k: &KeyPair) -> Vec<u8> {
    k.address().to_vec()
}

pub fn bech32(k: &KeyPair) -> String {
    k.address().to_bech32().unwrap()
}

/// The first unspent output of `key`'s address and its value.
pub fn first_utxo(d: &Devnet, key: &KeyPair) -> (OutRef, Value) {
    let (r, b) = d
        .utxos_at(&addr(key))
        .unwrap()
        .into_iter()
        .next()
        .expect("has a utxo");
    (r, OutputView::decode(&b).unwrap().value)
}

/// A balanced payment of `amount` lovelace from `from`'s `input` to `to`.
pub fn payment(
    d: &Devnet,
    from: &KeyPair,
    input: (OutRef, Value),
    to: &[u8],
    amount: u64,
) -> TxBuilder {
    let p = d.params();
    let mut b = TxBuilder {
        inputs: vec![input.0],
        outputs: vec![
            Output::new(to, Value::lovelace(amount)),
            Output::new(
                &addr(from),
                input.1.checked_sub(&Value::lovelace(amount)).unwrap(),
            ),
        ],
        ..TxBuilder::default()
    };
    b.balance_fee(&p, &[from], 1, 0);
    b
}

pub fn is_ledger_err(e: &ntx_devnet::DevnetError) -> &ntx_devnet::LedgerError {
    match e {
        ntx_devnet::DevnetError::Ledger(l) => l,
        other => panic!("expected a ledger rejection, got {other}"),
    }
}

/// The largest unspent output of `key`'s address.
pub fn richest_utxo(d: &Devnet, key: &KeyPair) -> (OutRef, Value) {
    d.utxos_at(&addr(key))
        .unwrap()
        .into_iter()
        .map(|(r, b)| (r, OutputView::decode(&b).unwrap().value))
        .max_by_key(|(_, v)| v.coin)
        .expect("has a utxo")
}

/// A devnet served over HTTP on a free loopback port, for the tests of its API.
pub struct Served {
    /// Where it listens.
    pub api: std::net::SocketAddr,
    cancel: tokio_util::sync::CancellationToken,
    server: tokio::task::JoinHandle<Result<(), ntx_devnet::DevnetError>>,
}

impl Served {
    /// Serves `d` and waits until it listens.
    pub async fn start(d: &Devnet) -> Served {
        let cancel = tokio_util::sync::CancellationToken::new();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let server = {
            let d = d.clone();
            let c = cancel.clone();
            tokio::spawn(async move {
                ntx_devnet::serve_devnet(d, 0, c, move |a, _| {
                    let _ = tx.send(a);
                })
                .await
            })
        };
        let api = rx.await.unwrap();
        Served {
            api,
            cancel,
            server,
        }
    }

    /// Cancels the server and returns how its task ended.
    pub async fn stop(self) -> Result<Result<(), ntx_devnet::DevnetError>, tokio::task::JoinError> {
        self.cancel.cancel();
        self.server.await
    }
}

/// The default genesis with a third funded account, `carol`, so that three
/// independent payments (alice → bob → carol → alice) can wait at once.
pub fn genesis_with_carol() -> ntx_devnet::GenesisConfig {
    let mut genesis = ntx_devnet::GenesisConfig::default();
    genesis.accounts.push(ntx_devnet::GenesisAccount {
        name: "carol".into(),
        lovelace: 10_000_000_000,
        ntx: 1_000_000_000,
    });
    genesis
}

/// A devnet of `genesis` whose blocks hold one of the transactions `make`
/// builds on it (its block size set just above the largest of them).
pub fn devnet_with_blocks_of_one(
    mut genesis: ntx_devnet::GenesisConfig,
    make: impl Fn(&Devnet) -> Vec<Vec<u8>>,
) -> Devnet {
    let probe = Devnet::open(ntx_devnet::DevnetConfig {
        genesis: genesis.clone(),
        ..ntx_devnet::DevnetConfig::default()
    })
    .unwrap();
    let size = make(&probe).iter().map(Vec::len).max().unwrap();
    genesis
        .protocol_params
        .insert("max_block_size".into(), serde_json::json!(size + 16));
    Devnet::open(ntx_devnet::DevnetConfig {
        genesis,
        ..ntx_devnet::DevnetConfig::default()
    })
    .unwrap()
}
