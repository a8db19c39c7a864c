//! Known-answer tests for the wallet: CIP-1852 derivation against published
//! addresses, cardano-cli key files, bech32, network checks and redaction.
//!
//! Sources of the vectors:
//! - CSL: Emurgo/cardano-serialization-lib `rust/src/tests/address.rs`
//!   (`bip32_{12,15,24}_{base,enterprise}`, `bip32_12_reward`): entropy →
//!   addresses on mainnet and testnet.
//! - CIP-19: cardano-foundation/CIPs `CIP-0019/README.md` "Test Vectors"
//!   (`addr_vk1w0l2…`, `stake_vk1px4j…` → type-00 and type-06 addresses).
//! - pycardano: `test/pycardano/test_key.py` (a cardano-cli `5820…` signing key
//!   with its verification key and key hash; a `5880…` extended key with its
//!   extended verification key, key hash and a signature).
//! - RFC 8032 §7.1, TEST 1 (Ed25519 signature of the empty message).
//! - Trezor's BIP-39 vectors are in the unit tests of `wallet::mnemonic`.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use ntx_offchain::Network;
use ntx_offchain::wallet::{
    AddressError, KeyError, KeyRole, Mnemonic, MnemonicError, PaymentAddress, Signer, SigningKey,
    VerificationKey, Wallet, WalletError, verify,
};

struct Cip1852Vector {
    phrase: Option<&'static str>,
    entropy: &'static str,
    base_mainnet: &'static str,
    base_testnet: &'static str,
    enterprise_mainnet: &'static str,
    enterprise_testnet: &'static str,
}

/// Emurgo/cardano-serialization-lib rust/src/tests/address.rs.
const CSL_VECTORS: [Cip1852Vector; 3] = [
    Cip1852Vector {
        phrase: Some("test walk nut penalty hip pave soap entry language right filter choice"),
        entropy: "df9ed25ed146bf43336a5d7cf7395994",
        base_mainnet: "addr1qx2fxv2umyhttkxyxp8x0dlpdt3k6cwng5pxj3jhsydzer3jcu5d8ps7zex2k2xt3uqxgjqnnj83ws8lhrn648jjxtwqfjkjv7",
        base_testnet: "addr_test1qz2fxv2umyhttkxyxp8x0dlpdt3k6cwng5pxj3jhsydzer3jcu5d8ps7zex2k2xt3uqxgjqnnj83ws8lhrn648jjxtwq2ytjqp",
        enterprise_mainnet: "addr1vx2fxv2umyhttkxyxp8x0dlpdt3k6cwng5pxj3jhsydzers66hrl8",
        enterprise_testnet: "addr_test1vz2fxv2umyhttkxyxp8x0dlpdt3k6cwng5pxj3jhsydzerspjrlsz",
    },
    Cip1852Vector {
        phrase: Some(
            "art forum devote street sure rather head chuckle guard poverty release quote oak craft enemy",
        ),
        entropy: "0ccb74f36b7da1649a8144675522d4d8097c6412",
        base_mainnet: "addr1q9u5vlrf4xkxv2qpwngf6cjhtw542ayty80v8dyr49rf5ewvxwdrt70qlcpeeagscasafhffqsxy36t90ldv06wqrk2qld6xc3",
        base_testnet: "addr_test1qpu5vlrf4xkxv2qpwngf6cjhtw542ayty80v8dyr49rf5ewvxwdrt70qlcpeeagscasafhffqsxy36t90ldv06wqrk2qum8x5w",
        enterprise_mainnet: "addr1v9u5vlrf4xkxv2qpwngf6cjhtw542ayty80v8dyr49rf5eg0kvk0f",
        enterprise_testnet: "addr_test1vpu5vlrf4xkxv2qpwngf6cjhtw542ayty80v8dyr49rf5eg57c2qv",
    },
    Cip1852Vector {
        phrase: None,
        entropy: "4e828f9a67ddcff0e6391ad4f26ddb7579f59ba14b6dd4baf63dcfdb9d2420da",
        base_mainnet: "addr1qyy6nhfyks7wdu3dudslys37v252w2nwhv0fw2nfawemmn8k8ttq8f3gag0h89aepvx3xf69g0l9pf80tqv7cve0l33sdn8p3d",
        base_testnet: "addr_test1qqy6nhfyks7wdu3dudslys37v252w2nwhv0fw2nfawemmn8k8ttq8f3gag0h89aepvx3xf69g0l9pf80tqv7cve0l33sw96paj",
        enterprise_mainnet: "addr1vyy6nhfyks7wdu3dudslys37v252w2nwhv0fw2nfawemmnqs6l44z",
        enterprise_testnet: "addr_test1vqy6nhfyks7wdu3dudslys37v252w2nwhv0fw2nfawemmnqtjtf68",
    },
];

#[test]
fn cip1852_mnemonics_derive_the_published_addresses() {
    for v in &CSL_VECTORS {
        let entropy = hex::decode(v.entropy).unwrap();
        let mnemonic = match v.phrase {
            Some(phrase) => {
                let m = Mnemonic::parse(phrase).unwrap();
                assert_eq!(m.entropy(), &entropy[..], "{phrase}");
                assert_eq!(m.phrase().as_str(), phrase);
                m
            }
            None => Mnemonic::from_entropy(&entropy).unwrap(),
        };
        assert_eq!(mnemonic.word_count(), entropy.len() * 3 / 4);
        // The phrase of the 24-word vector round-trips too.
        let reparsed = Mnemonic::parse(&mnemonic.phrase()).unwrap();
        assert_eq!(reparsed.entropy(), &entropy[..]);

        let mainnet = Wallet::from_mnemonic(Network::Mainnet, &mnemonic, "");
        assert_eq!(mainnet.address().to_bech32(), v.base_mainnet);
        assert_eq!(
            mainnet.enterprise_address().to_bech32(),
            v.enterprise_mainnet
        );
        for testnet in [Network::Preprod, Network::Preview, Network::Devnet] {
            let w = Wallet::from_mnemonic(testnet, &mnemonic, "");
            assert_eq!(w.address().to_bech32(), v.base_testnet);
            assert_eq!(w.enterprise_address().to_bech32(), v.enterprise_testnet);
        }
        // Parsing the published address gives back the wallet's key hashes.
        let parsed = PaymentAddress::parse(v.base_mainnet, Network::Mainnet).unwrap();
        assert_eq!(parsed.payment_key_hash(), Some(mainnet.key_hash()));
        assert_eq!(
            parsed.stake_key_hash(),
            Some(mainnet.stake_key().unwrap().key_hash())
        );
        assert_eq!(parsed, mainnet.address());
    }
}

#[test]
fn cip1852_stake_key_matches_the_published_reward_address() {
    // CSL bip32_12_reward: stake1uyevw2xnsc0pvn9t9r9c7qryfqfeerchgrlm3ea2nefr9hqxdekzz.
    let m = Mnemonic::parse(CSL_VECTORS[0].phrase.unwrap()).unwrap();
    let (hrp, data) =
        bech32::decode("stake1uyevw2xnsc0pvn9t9r9c7qryfqfeerchgrlm3ea2nefr9hqxdekzz").unwrap();
    assert_eq!(hrp.as_str(), "stake");
    assert_eq!(data[0], 0xe1);
    assert_eq!(&data[1..], &m.stake_key("").key_hash()[..]);
}

#[test]
fn cip19_verification_keys_give_the_published_addresses() {
    let payment = VerificationKey::from_bech32(
        "addr_vk1w0l2sr2zgfm26ztc6nl9xy8ghsk5sh6ldwemlpmp9xylzy4dtf7st80zhd",
    )
    .unwrap();
    let stake = VerificationKey::from_bech32(
        "stake_vk1px4j0r2fk7ux5p23shz8f3y5y2qam7s954rgf3lg5merqcj6aetsft99wu",
    )
    .unwrap();
    let cases = [
        (
            Network::Mainnet,
            "addr1qx2fxv2umyhttkxyxp8x0dlpdt3k6cwng5pxj3jhsydzer3n0d3vllmyqwsx5wktcd8cc3sq835lu7drv2xwl2wywfgse35a3x",
            "addr1vx2fxv2umyhttkxyxp8x0dlpdt3k6cwng5pxj3jhsydzers66hrl8",
        ),
        (
            Network::Preprod,
            "addr_test1qz2fxv2umyhttkxyxp8x0dlpdt3k6cwng5pxj3jhsydzer3n0d3vllmyqwsx5wktcd8cc3sq835lu7drv2xwl2wywfgs68faae",
            "addr_test1vz2fxv2umyhttkxyxp8x0dlpdt3k6cwng5pxj3jhsydzerspjrlsz",
        ),
    ];
    for (network, base, enterprise) in cases {
        assert_eq!(
            PaymentAddress::base(network, payment.hash(), stake.hash()).to_bech32(),
            base
        );
        assert_eq!(
            PaymentAddress::enterprise(network, payment.hash()).to_bech32(),
            enterprise
        );
    }
    // The CIP-19 payment key is the 12-word CSL mnemonic's m/1852'/1815'/0'/0/0.
    let m = Mnemonic::parse(CSL_VECTORS[0].phrase.unwrap()).unwrap();
    assert_eq!(m.payment_key("").verification_key(), payment);
    assert_eq!(
        payment.to_bech32(KeyRole::Payment),
        "addr_vk1w0l2sr2zgfm26ztc6nl9xy8ghsk5sh6ldwemlpmp9xylzy4dtf7st80zhd"
    );
    assert_eq!(
        stake.to_bech32(KeyRole::Stake),
        "stake_vk1px4j0r2fk7ux5p23shz8f3y5y2qam7s954rgf3lg5merqcj6aetsft99wu"
    );
}

/// pycardano test/pycardano/test_key.py (the key bytes; cardano-cli's type).
const CLI_SKEY: &str = r#"{
    "type": "PaymentSigningKeyShelley_ed25519",
    "description": "Payment Signing Key",
    "cborHex": "5820093be5cd3987d0c9fd8854ef908f7746b69e2d73320db6dc0f780d81585b84c2"
}"#;
const CLI_SECRET_HEX: &str = "093be5cd3987d0c9fd8854ef908f7746b69e2d73320db6dc0f780d81585b84c2";
const CLI_VKEY_HEX: &str = "8be8339e9f3addfa6810d59e2f072f85e64d4c024c087e0d24f8317c6544f62f";
const CLI_KEY_HASH: &str = "d413c1745d306023e49589e658a7b7a4b4dda165ff5c97d8c8b979bf";

const EXTENDED_SKEY: &str = r#"{
    "type": "PaymentExtendedSigningKeyShelley_ed25519_bip32",
    "description": "Payment Signing Key",
    "cborHex": "5880e8428867ab9cc9304379a3ce0c238a592bd6d2349d2ebaf8a6ed2c6d2974a15ad59c74b6d8fa3edd032c6261a73998b7deafe983b6eeaff8b6fb3fab06bdf8019b693a62bce7a3cad1b9c02d22125767201c65db27484bb67d3cee7df7288d62c099ac0ce4a215355b149fd3114a2a7ef0438f01f8872c4487a61b469e26aae4"
}"#;
const EXTENDED_VKEY: &str = r#"{
    "type": "PaymentExtendedVerificationKeyShelley_ed25519_bip32",
    "description": "Payment Verification Key",
    "cborHex": "58409b693a62bce7a3cad1b9c02d22125767201c65db27484bb67d3cee7df7288d62c099ac0ce4a215355b149fd3114a2a7ef0438f01f8872c4487a61b469e26aae4"
}"#;

#[test]
fn cardano_cli_skey_gives_the_published_vkey_and_key_hash() {
    let key = SigningKey::from_text_envelope(CLI_SKEY, KeyRole::Payment).unwrap();
    assert!(!key.is_extended());
    assert_eq!(hex::encode(key.verification_key().to_bytes()), CLI_VKEY_HEX);
    assert_eq!(hex::encode(key.key_hash()), CLI_KEY_HASH);
    assert_eq!(hex::encode(key.verification_key().hash()), CLI_KEY_HASH);
    let vkey = VerificationKey::from_text_envelope(
        &key.to_vkey_envelope(KeyRole::Payment),
        KeyRole::Payment,
    )
    .unwrap();
    assert_eq!(hex::encode(vkey.to_bytes()), CLI_VKEY_HEX);
    // The envelope we write is byte for byte cardano-cli's layout.
    assert_eq!(
        key.to_text_envelope(KeyRole::Payment).unwrap().as_str(),
        format!("{CLI_SKEY}\n")
    );
}

#[test]
fn extended_skey_gives_the_published_vkey_hash_and_signature() {
    let key = SigningKey::from_text_envelope(EXTENDED_SKEY, KeyRole::Payment).unwrap();
    assert!(key.is_extended());
    let vkey = VerificationKey::from_text_envelope(EXTENDED_VKEY, KeyRole::Payment).unwrap();
    assert_eq!(key.verification_key(), vkey);
    assert_eq!(
        hex::encode(key.key_hash()),
        "c15a362df1b521e2f664cc66db77aad41311dc5ba0998c29862c2a93"
    );
    let message =
        hex::decode("1bf8beed1677524b44903f09a7bb596ffb9d48e368b19293ca834df19ddbb566").unwrap();
    assert_eq!(
        hex::encode(key.sign(&message)),
        "f09d56ad9163f42bd4b37b1eeb4d2325e8b6c7e85919ff0e2770ba0e438fc065\
         d057a3bc929fb474d1d056345bec39392973e0d4446d7b8e197aae5bd6e3400a"
    );
    // Writing it back gives the same cborHex, and the matching extended vkey.
    let written = key.to_text_envelope(KeyRole::Payment).unwrap();
    assert!(written.contains(&EXTENDED_SKEY[EXTENDED_SKEY.find("5880").unwrap()..][..260]));
    let vkey_env = key.to_vkey_envelope(KeyRole::Payment);
    assert!(vkey_env.contains("PaymentExtendedVerificationKeyShelley_ed25519_bip32"));
    assert!(vkey_env.contains(&EXTENDED_VKEY[EXTENDED_VKEY.find("5840").unwrap()..][..132]));
}

#[test]
fn rfc8032_test_1_signature() {
    let secret: [u8; 32] =
        hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
            .unwrap()
            .try_into()
            .unwrap();
    let key = SigningKey::from_normal_bytes(&secret);
    assert_eq!(
        hex::encode(key.public_key()),
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    );
    let sig = key.sign(b"");
    assert_eq!(
        hex::encode(sig),
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
    );
    assert!(verify(&key.public_key(), b"", &sig));
    assert!(!verify(&key.public_key(), b"x", &sig));
}

#[test]
fn derived_keys_sign_verifiably_and_round_trip_through_files() {
    let dir = tempfile::tempdir().unwrap();
    let m = Mnemonic::parse(CSL_VECTORS[1].phrase.unwrap()).unwrap();
    for (key, role) in [
        (m.payment_key(""), KeyRole::Payment),
        (m.stake_key(""), KeyRole::Stake),
    ] {
        let id = [7u8; 32];
        assert!(verify(&key.public_key(), &id, &key.sign(&id)));
        let skey = dir.path().join(format!("{role}.skey"));
        let vkey = dir.path().join(format!("{role}.vkey"));
        key.write_key_pair(&skey, &vkey, role).unwrap();
        let back = SigningKey::read_skey(&skey, role).unwrap();
        assert_eq!(back.verification_key(), key.verification_key());
        assert_eq!(back.sign(&id), key.sign(&id));
        assert_eq!(
            VerificationKey::read_vkey(&vkey, role).unwrap(),
            key.verification_key()
        );
        // bech32 of the extended key round-trips (without its chain code).
        let b = SigningKey::from_bech32(&key.to_bech32()).unwrap();
        assert!(key.to_bech32().starts_with("ed25519e_sk1"));
        assert_eq!(b.verification_key(), key.verification_key());
        assert_eq!(b.sign(&id), key.sign(&id));
    }
    // Stake and payment files are told apart.
    let err = SigningKey::read_skey(&dir.path().join("stake.skey"), KeyRole::Payment).unwrap_err();
    assert!(
        err.to_string()
            .contains("this is a stake key; pass the payment .skey"),
        "{err}"
    );
}

#[test]
fn new_keys_are_written_0600_and_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let skey = dir.path().join("payment.skey");
    let vkey = dir.path().join("payment.vkey");
    let key = SigningKey::generate().unwrap();
    assert_ne!(
        key.verification_key(),
        SigningKey::generate().unwrap().verification_key()
    );
    key.write_key_pair(&skey, &vkey, KeyRole::Payment).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&skey).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }
    let text = std::fs::read_to_string(&skey).unwrap();
    assert!(text.contains("\"type\": \"PaymentSigningKeyShelley_ed25519\""));
    let back = SigningKey::read_skey(&skey, KeyRole::Payment).unwrap();
    assert_eq!(back.verification_key(), key.verification_key());

    let again = SigningKey::generate().unwrap();
    let err = again
        .write_key_pair(&skey, &dir.path().join("other.vkey"), KeyRole::Payment)
        .unwrap_err();
    assert!(matches!(err, KeyError::Exists { .. }), "{err}");
    assert!(err.to_string().contains("never overwritten"));
    // Nothing was half-written: the old key is intact and no other.vkey exists.
    assert_eq!(std::fs::read_to_string(&skey).unwrap(), text);
    assert!(!dir.path().join("other.vkey").exists());
}

#[test]
fn bech32_signing_keys_round_trip() {
    let key = SigningKey::from_text_envelope(CLI_SKEY, KeyRole::Payment).unwrap();
    let b = key.to_bech32();
    assert!(b.starts_with("ed25519_sk1"), "prefix");
    let back = SigningKey::from_bech32(&b).unwrap();
    assert_eq!(back.verification_key(), key.verification_key());
    // addr_sk (cardano-cli's bech32 output for payment keys) decodes too.
    let secret = hex::decode(CLI_SECRET_HEX).unwrap();
    let addr_sk =
        bech32::encode::<bech32::Bech32>(bech32::Hrp::parse("addr_sk").unwrap(), &secret).unwrap();
    assert_eq!(
        SigningKey::from_bech32(&addr_sk)
            .unwrap()
            .verification_key(),
        key.verification_key()
    );
}

#[test]
fn bad_keys_get_clear_errors_without_secrets() {
    // A .vkey where an .skey is expected.
    let vkey_env = SigningKey::from_text_envelope(CLI_SKEY, KeyRole::Payment)
        .unwrap()
        .to_vkey_envelope(KeyRole::Payment);
    let err = SigningKey::from_text_envelope(&vkey_env, KeyRole::Payment).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("has type PaymentVerificationKeyShelley_ed25519"),
        "{msg}"
    );
    assert!(msg.contains("expected a payment signing key"), "{msg}");
    assert!(msg.contains("pass the .skey, not the .vkey"), "{msg}");
    // An .skey where a .vkey is expected.
    let err = VerificationKey::from_text_envelope(CLI_SKEY, KeyRole::Payment).unwrap_err();
    assert!(
        err.to_string().contains("pass the .vkey, not the .skey"),
        "{err}"
    );
    assert!(!err.to_string().contains(CLI_SECRET_HEX));
    // Truncated cborHex: the length is named, the content is not.
    let truncated = CLI_SKEY.replace("84c2\"", "\"");
    let err = SigningKey::from_text_envelope(&truncated, KeyRole::Payment).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("says 32 bytes"), "{msg}");
    assert!(!msg.contains("093be5cd"), "{msg}");
    // Not JSON.
    let err = SigningKey::from_text_envelope("hello", KeyRole::Payment).unwrap_err();
    assert!(
        err.to_string().contains("not a cardano-cli key file"),
        "{err}"
    );
    // A cborHex that is not a string: serde's message would quote it; ours does not.
    let err = SigningKey::from_text_envelope(
        &format!(
            r#"{{"type": "PaymentSigningKeyShelley_ed25519", "cborHex": ["{CLI_SECRET_HEX}"]}}"#
        ),
        KeyRole::Payment,
    )
    .unwrap_err();
    assert!(!err.to_string().contains(CLI_SECRET_HEX), "{err}");
    // A missing file names the file.
    let err =
        SigningKey::read_skey(Path::new("/nonexistent/foo.skey"), KeyRole::Payment).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/foo.skey"), "{err}");
    // Extended key whose stored public key does not match.
    let tampered = EXTENDED_SKEY.replace("9b693a62", "9b693a63");
    let err = SigningKey::from_text_envelope(&tampered, KeyRole::Payment).unwrap_err();
    assert!(err.to_string().contains("does not match"), "{err}");
    // Bech32: a typo is refused, the key is not echoed.
    let b = SigningKey::from_text_envelope(CLI_SKEY, KeyRole::Payment)
        .unwrap()
        .to_bech32();
    let mut typo = b.to_string();
    let last = typo.pop().unwrap();
    typo.push(if last == 'q' { 'p' } else { 'q' });
    let err = SigningKey::from_bech32(&typo).unwrap_err();
    assert!(matches!(err, KeyError::Bech32 { .. }), "{err}");
    assert!(!err.to_string().contains(&typo[12..]), "{err}");
    let err = SigningKey::from_bech32(
        "addr_vk1w0l2sr2zgfm26ztc6nl9xy8ghsk5sh6ldwemlpmp9xylzy4dtf7st80zhd",
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("`addr_vk1` is not supported"),
        "{err}"
    );
}

#[test]
fn debug_output_redacts_secrets() {
    let key = SigningKey::from_text_envelope(CLI_SKEY, KeyRole::Payment).unwrap();
    let ext = SigningKey::from_text_envelope(EXTENDED_SKEY, KeyRole::Payment).unwrap();
    let m = Mnemonic::parse(CSL_VECTORS[0].phrase.unwrap()).unwrap();
    let wallet = Wallet::from_mnemonic(Network::Devnet, &m, "");
    let root = m.root_key("");
    let shown = format!("{key:?} {ext:?} {m:?} {wallet:?} {wallet:#?} {root:?}");
    assert!(!shown.contains(CLI_SECRET_HEX), "{shown}");
    assert!(!shown.contains("e8428867ab9cc930"), "{shown}");
    assert!(!shown.contains("walk"), "{shown}");
    assert!(!shown.contains("df9ed25e"), "{shown}");
    let secret_of_wallet = wallet.payment_key().to_bech32();
    assert!(!shown.contains(&secret_of_wallet[12..]), "{shown}");
    assert!(shown.contains("redacted"));
    // Public parts are still there to identify the key.
    assert!(shown.contains(CLI_VKEY_HEX));
    assert!(shown.contains(&wallet.address().to_bech32()));
}

#[test]
fn addresses_are_checked_against_the_network() {
    let mainnet = CSL_VECTORS[0].base_mainnet;
    let testnet = CSL_VECTORS[0].base_testnet;
    for n in [Network::Preprod, Network::Preview, Network::Devnet] {
        let err = PaymentAddress::parse(mainnet, n).unwrap_err();
        assert!(matches!(err, AddressError::WrongNetwork { .. }));
        let msg = err.to_string();
        assert!(
            msg.contains(&format!(
                "is a mainnet address but this command runs on {n}: use an addr_test… address or --network mainnet"
            )),
            "{msg}"
        );
        assert!(msg.starts_with("addr1qx2fxv2…"), "{msg}");
        assert_eq!(
            PaymentAddress::parse(testnet, n).unwrap().to_bech32(),
            testnet
        );
    }
    let err = PaymentAddress::parse(testnet, Network::Mainnet).unwrap_err();
    assert!(
        err.to_string().contains(
            "is a testnet address but this command runs on mainnet: use an addr1… address"
        ),
        "{err}"
    );
    let ok = PaymentAddress::parse(mainnet, Network::Mainnet).unwrap();
    assert!(ok.is_mainnet());
    assert_eq!(
        PaymentAddress::from_bytes(&ok.to_bytes(), Network::Mainnet).unwrap(),
        ok
    );
    assert!(PaymentAddress::from_bytes(&ok.to_bytes(), Network::Devnet).is_err());
}

#[test]
fn malformed_addresses_get_clear_errors() {
    let good = CSL_VECTORS[0].enterprise_testnet;
    let mut typo = good.to_owned();
    typo.replace_range(20..21, if &good[20..21] == "q" { "p" } else { "q" });
    for bad in [typo.as_str(), "addr_test1", "hello", ""] {
        let err = PaymentAddress::parse(bad, Network::Devnet).unwrap_err();
        assert!(
            matches!(err, AddressError::Malformed { .. }),
            "{bad}: {err}"
        );
        assert!(
            err.to_string()
                .contains("starting with addr1 (mainnet) or addr_test1"),
            "{err}"
        );
    }
    // A stake address where a payment address is expected.
    let err = PaymentAddress::parse(
        "stake_test1uqevw2xnsc0pvn9t9r9c7qryfqfeerchgrlm3ea2nefr9hqp8n5xl",
        Network::Devnet,
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("is a stake (reward) address"),
        "{err}"
    );
    // The right bytes under the wrong prefix.
    let (_, data) = bech32::decode(good).unwrap();
    let wrong_hrp =
        bech32::encode::<bech32::Bech32>(bech32::Hrp::parse("addr").unwrap(), &data).unwrap();
    let err = PaymentAddress::parse(&wrong_hrp, Network::Devnet).unwrap_err();
    assert!(err.to_string().contains("prefix `addr`"), "{err}");
}

#[test]
fn mnemonic_errors_name_the_problem_not_the_words() {
    let phrase = CSL_VECTORS[0].phrase.unwrap();
    let short: String = phrase.split(' ').take(11).collect::<Vec<_>>().join(" ");
    assert_eq!(
        Mnemonic::parse(&short).unwrap_err(),
        MnemonicError::WordCount(11)
    );
    let misspelt = phrase.replace("penalty", "penalti");
    let err = Mnemonic::parse(&misspelt).unwrap_err();
    assert_eq!(err, MnemonicError::UnknownWord { position: 4 });
    assert!(!err.to_string().contains("penalti"));
    let swapped = phrase.replace("test walk", "walk test");
    assert_eq!(
        Mnemonic::parse(&swapped).unwrap_err(),
        MnemonicError::Checksum
    );
    // Case and extra whitespace do not matter.
    let loud = format!("  {}  ", phrase.to_uppercase().replace(' ', "\n "));
    assert_eq!(
        Mnemonic::parse(&loud).unwrap().entropy(),
        Mnemonic::parse(phrase).unwrap().entropy()
    );
}

#[test]
fn a_passphrase_changes_the_keys() {
    let m = Mnemonic::parse(CSL_VECTORS[0].phrase.unwrap()).unwrap();
    assert_ne!(
        m.payment_key("").verification_key(),
        m.payment_key("secret").verification_key()
    );
}

#[test]
fn wallets_load_from_secret_text_and_files() {
    let phrase = CSL_VECTORS[0].phrase.unwrap();
    let w = Wallet::from_secret_text(Network::Devnet, phrase).unwrap();
    assert_eq!(w.address().to_bech32(), CSL_VECTORS[0].base_testnet);
    let w = Wallet::from_secret_text(Network::Mainnet, CLI_SKEY).unwrap();
    assert_eq!(hex::encode(w.key_hash()), CLI_KEY_HASH);
    assert_eq!(w.address(), w.enterprise_address());
    let b = w.payment_key().to_bech32();
    let w2 = Wallet::from_secret_text(Network::Mainnet, &b).unwrap();
    assert_eq!(w2.key_hash(), w.key_hash());
    assert!(matches!(
        Wallet::from_secret_text(Network::Devnet, "nonsense").unwrap_err(),
        WalletError::UnknownSecretFormat
    ));

    let dir = tempfile::tempdir().unwrap();
    let m = Mnemonic::parse(phrase).unwrap();
    let (pay, stake) = (dir.path().join("p.skey"), dir.path().join("s.skey"));
    m.payment_key("")
        .write_key_pair(&pay, &dir.path().join("p.vkey"), KeyRole::Payment)
        .unwrap();
    m.stake_key("")
        .write_key_pair(&stake, &dir.path().join("s.vkey"), KeyRole::Stake)
        .unwrap();
    let from_files = Wallet::from_skey_files(Network::Preprod, &pay, Some(&stake)).unwrap();
    assert_eq!(
        from_files.address().to_bech32(),
        CSL_VECTORS[0].base_testnet
    );
    let enterprise = Wallet::from_skey_files(Network::Preprod, &pay, None).unwrap();
    assert_eq!(
        enterprise.address().to_bech32(),
        CSL_VECTORS[0].enterprise_testnet
    );
    assert_eq!(enterprise.public_key(), m.payment_key("").public_key());
}
