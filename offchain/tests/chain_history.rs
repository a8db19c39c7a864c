//! The provider's history methods (an address's transactions, a
//! transaction's CBOR and place) against the devnet served over HTTP.

mod common;

use common::start;
use ntx_devnet::KeyPair;
use ntx_offchain::chain::{BlockRange, ChainError, ChainProvider};
use pallas_addresses::Address;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_history_is_listed_oldest_first_across_pages() {
    let net = start().await;
    let key = KeyPair::generate("history");
    let bech = key.address().to_bech32().expect("bech32");
    // 105 funding transactions, 35 blocks of three.
    let mut ids = Vec::new();
    for block in 0..35 {
        for _ in 0..3 {
            ids.push(*net.devnet.fund(&bech, 2_000_000, 0).expect("fund"));
        }
        let b = net.devnet.produce_block().expect("block");
        assert_eq!(b.height, block + 1);
    }
    let address = Address::Shelley(key.address());
    let all = net
        .provider
        .address_transactions(&address, BlockRange::ALL)
        .await
        .expect("history");
    assert_eq!(all.len(), 105, "two pages: 100 + 5");
    let mut sorted = all.clone();
    sorted.sort_by_key(|t| (t.block_height, t.tx_index));
    assert_eq!(all, sorted, "oldest first");
    let listed: std::collections::BTreeSet<_> = all.iter().map(|t| t.tx_id).collect();
    assert_eq!(
        listed,
        ids.iter().copied().collect(),
        "exactly the funding transactions"
    );

    // A block range, both ends included.
    let some = net
        .provider
        .address_transactions(
            &address,
            BlockRange {
                from: Some(10),
                to: Some(12),
            },
        )
        .await
        .expect("range");
    assert_eq!(some.len(), 9);
    assert!(some.iter().all(|t| (10..=12).contains(&t.block_height)));
    let stranger = Address::Shelley(KeyPair::generate("nobody").address());
    assert!(
        net.provider
            .address_transactions(&stranger, BlockRange::ALL)
            .await
            .expect("empty")
            .is_empty()
    );

    // Each transaction's CBOR and place.
    let first = all[0];
    let cbor = net.provider.tx_cbor(&first.tx_id).await.expect("cbor");
    let record = net
        .devnet
        .transaction(&first.tx_id)
        .expect("store")
        .expect("confirmed");
    assert_eq!(cbor, record.cbor);
    let info = net.provider.tx_info(&first.tx_id).await.expect("info");
    let block = net
        .devnet
        .block(record.height)
        .expect("store")
        .expect("block");
    assert_eq!(
        (
            info.tx_id,
            info.block_height,
            info.slot,
            info.index,
            info.block_time
        ),
        (
            first.tx_id,
            record.height,
            record.slot,
            record.index,
            block.time
        )
    );
    assert_eq!(info.block_hash, *block.hash);
    assert!(info.valid_contract);
    assert_eq!(info.block_time, first.block_time);

    let unknown = [0xcd; 32];
    assert!(matches!(
        net.provider.tx_cbor(&unknown).await,
        Err(ChainError::NotFound { .. })
    ));
    assert!(matches!(
        net.provider.tx_info(&unknown).await,
        Err(ChainError::NotFound { .. })
    ));
}
