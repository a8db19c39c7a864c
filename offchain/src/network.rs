//! The Cardano networks `ntx` runs on.

use std::fmt;
use std::str::FromStr;

/// A Cardano network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Network {
    /// Cardano mainnet.
    Mainnet,
    /// The pre-production testnet.
    Preprod,
    /// The preview testnet.
    Preview,
    /// This project's embedded devnet (or any local testnet with its magic).
    Devnet,
}

/// The devnet's network magic (`devnet/README.md`).
pub const DEVNET_MAGIC: u32 = 42;

impl Network {
    /// Every network, in the order help texts list them.
    pub const ALL: [Network; 4] = [
        Network::Mainnet,
        Network::Preprod,
        Network::Preview,
        Network::Devnet,
    ];

    /// The network id in addresses and transaction bodies.
    pub fn id(self) -> u8 {
        match self {
            Network::Mainnet => 1,
            Network::Preprod | Network::Preview | Network::Devnet => 0,
        }
    }

    /// The network magic of its node-to-node and node-to-client protocols.
    pub fn magic(self) -> u32 {
        match self {
            Network::Mainnet => 764_824_073,
            Network::Preprod => 1,
            Network::Preview => 2,
            Network::Devnet => DEVNET_MAGIC,
        }
    }

    /// The address network tag.
    pub fn address_network(self) -> pallas_addresses::Network {
        match self {
            Network::Mainnet => pallas_addresses::Network::Mainnet,
            _ => pallas_addresses::Network::Testnet,
        }
    }

    /// The name used on the command line and in config files.
    pub fn name(self) -> &'static str {
        match self {
            Network::Mainnet => "mainnet",
            Network::Preprod => "preprod",
            Network::Preview => "preview",
            Network::Devnet => "devnet",
        }
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A network name that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown network `{0}`: use one of mainnet, preprod, preview, devnet")]
pub struct UnknownNetwork(pub String);

impl FromStr for Network {
    type Err = UnknownNetwork;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Network::ALL
            .into_iter()
            .find(|n| n.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownNetwork(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_say_what_to_use() {
        for n in Network::ALL {
            assert_eq!(n.name().parse::<Network>(), Ok(n));
        }
        let err = "mainet".parse::<Network>().expect_err("typo");
        assert!(
            err.to_string()
                .contains("mainnet, preprod, preview, devnet")
        );
    }
}
