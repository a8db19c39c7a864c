//! Offers through the client: read the market, publish, replace and withdraw
//! an offer (docs/PROTOCOL.md, "The market").

use super::error::ClientError;
use super::escrow::{EscrowClient, FEE_ALLOWANCE, Prepared};
use crate::builder::select_coins;
use crate::market::{Listing, Offer, SignedOffer, list_offers, offer_address, offer_output};
use crate::tx::{Draft, TxOutput, Utxo, Value};
use crate::wallet::Wallet;

/// Most UTxOs one offer transaction sweeps from the offer address.
pub const MAX_SWEPT: usize = 20;

impl EscrowClient {
    /// The deployment's live offers as of the chain's current time.
    pub async fn market(&self) -> Result<Listing, ClientError> {
        let now = self.slot_time(self.now_slot().await?);
        Ok(list_offers(
            self.chain().as_ref(),
            &self.deployment().script.hash(),
            self.network(),
            now,
        )
        .await?)
    }

    /// Where `wallet`'s key keeps its offer for this deployment (raw address bytes).
    pub fn offer_address_of(&self, wallet: &Wallet) -> Vec<u8> {
        offer_address(
            &wallet.key_hash(),
            &self.deployment().script.hash(),
            self.network(),
        )
        .to_vec()
    }

    /// What sits at `wallet`'s offer address now and is swept by the next publish
    /// or withdrawal: its offers and pure-ADA copies others put there (at most
    /// [`MAX_SWEPT`], so nobody can make the transaction too large), less what
    /// this client is already spending. Token-carrying junk is left alone.
    pub async fn offer_utxos(&self, wallet: &Wallet) -> Result<Vec<Utxo>, ClientError> {
        let mut utxos = self.unspent_at(&self.offer_address_of(wallet)).await?;
        utxos.retain(|u| u.output.value.assets.values().all(|names| names.is_empty()));
        utxos.sort_by_key(|u| std::cmp::Reverse(u.output.value.lovelace));
        utxos.truncate(MAX_SWEPT);
        Ok(utxos)
    }

    /// Publishes `offer`, signed by `wallet`'s key (which must be the key the offer
    /// advertises), as one output at its offer address holding the min-ADA
    /// deposit and the signed datum. Everything already at that address (the
    /// previous offer, copies others put there) is spent in the same transaction,
    /// so its deposits come back and one live offer remains. Fees from `wallet`.
    pub async fn publish_offer(
        &self,
        wallet: &Wallet,
        offer: Offer,
    ) -> Result<Prepared, ClientError> {
        offer
            .validate(self.network(), &self.deployment().script.hash())
            .map_err(|e| ClientError::Invalid(e.to_string()))?;
        let signed =
            SignedOffer::sign(offer, wallet).map_err(|e| ClientError::Invalid(e.to_string()))?;
        let output = offer_output(
            &signed,
            &wallet.key_hash(),
            &self.deployment().script.hash(),
            self.network(),
            &self.deployment().fee_params,
        );
        let old = self.offer_utxos(wallet).await?;
        let returned: u64 = old.iter().map(|u| u.output.value.lovelace).sum();
        let needed = (output.value.lovelace + FEE_ALLOWANCE).saturating_sub(returned);
        let mut inputs = old;
        if needed > 0 {
            let utxos = self.wallet_utxos(wallet).await?;
            inputs.extend(select_coins(&utxos, &Value::lovelace(needed))?);
        }
        self.offer_tx(wallet, inputs, vec![output])
    }

    /// Withdraws `wallet`'s offer: spends everything at its offer address back to
    /// the wallet (the deposits return). [`ClientError::Invalid`] when there is
    /// nothing to withdraw.
    pub async fn withdraw_offer(&self, wallet: &Wallet) -> Result<Prepared, ClientError> {
        let old = self.offer_utxos(wallet).await?;
        if old.is_empty() {
            return Err(ClientError::Invalid(
                "this key has no offer on chain for the deployment: nothing to withdraw".into(),
            ));
        }
        let mut inputs = old;
        let returned: u64 = inputs.iter().map(|u| u.output.value.lovelace).sum();
        if returned < FEE_ALLOWANCE {
            let utxos = self.wallet_utxos(wallet).await?;
            inputs.extend(select_coins(&utxos, &Value::lovelace(FEE_ALLOWANCE))?);
        }
        self.offer_tx(wallet, inputs, Vec::new())
    }

    fn offer_tx(
        &self,
        wallet: &Wallet,
        inputs: Vec<Utxo>,
        outputs: Vec<TxOutput>,
    ) -> Result<Prepared, ClientError> {
        let draft = Draft {
            inputs,
            outputs,
            ..Draft::default()
        };
        let change = wallet.address().to_bytes();
        let finished = self.finish(draft, &change, &[wallet], 0)?;
        Ok(Prepared {
            finished,
            job_ids: Vec::new(),
        })
    }
}
