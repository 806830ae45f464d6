//! One-time download URLs for devices that pull their firmware (Tasmota `OtaUrl` + `Upgrade 1`).
//!
//! An offer is an image for one device behind a random 128-bit token:
//! `http://<gateway>:<port>/firmware/<token>`. The first GET takes the offer (a second one, or one
//! after the offer expired, gets 404), so the URL is worthless once the device has it and a URL
//! seen on the broker cannot be replayed. The token is the only access control, which is why it
//! is long, random, single-use and short-lived: the image itself is signed and not secret, but
//! who may fetch it when is the gateway's business.
//!
//! The URL's base is the gateway's plain HTTP listener on its first served address, or
//! `[listen] image_base_url` when devices reach the gateway by another address (NAT, another
//! VLAN); the UPnP face sets it when it starts.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use tokio::time::Instant;

/// How long an offer stays open by default: long enough for a device to restart its download
/// after a Wi-Fi hiccup, short enough that a leaked URL soon stops working.
pub const DEFAULT_OFFER_TTL: Duration = Duration::from_secs(15 * 60);

/// Most offers open at once (one per device being updated; a campaign's concurrency cap is far
/// lower).
pub const MAX_OPEN_OFFERS: usize = 256;

/// Why an image could not be offered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OfferError {
    /// The HTTP listener is not running yet, so there is no URL to give.
    #[error(
        "the gateway's HTTP listener is not running, so there is no URL to offer the image at; start the UPnP face first or set [listen] image_base_url"
    )]
    NoBaseUrl,
    /// Too many offers are open.
    #[error("{MAX_OPEN_OFFERS} image downloads are already on offer; wait for some to finish")]
    TooMany,
}

#[derive(Debug)]
struct Offer {
    device_id: String,
    bytes: Arc<[u8]>,
    expires: Instant,
}

/// A taken offer: what the HTTP listener serves.
#[derive(Debug, Clone)]
pub struct TakenOffer {
    /// The device the image was offered to.
    pub device_id: String,
    /// The image.
    pub bytes: Arc<[u8]>,
}

/// The open offers of the gateway.
#[derive(Debug)]
pub struct ImageOffers {
    offers: RwLock<HashMap<String, Offer>>,
    base_url: RwLock<Option<String>>,
    ttl: Duration,
}

impl Default for ImageOffers {
    fn default() -> Self {
        Self::new(DEFAULT_OFFER_TTL)
    }
}

impl ImageOffers {
    /// No offers yet; each offer stays open for `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            offers: RwLock::new(HashMap::new()),
            base_url: RwLock::new(None),
            ttl,
        }
    }

    /// Sets the URL base offers are given at (`http://host:port`, no trailing `/`).
    pub fn set_base_url(&self, base: &str) {
        *self
            .base_url
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(base.trim_end_matches('/').to_owned());
    }

    /// The URL base, once set.
    pub fn base_url(&self) -> Option<String> {
        self.base_url
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Offers `bytes` to `device_id`; returns the one-time URL. Any earlier offer to the same
    /// device is withdrawn.
    pub fn offer(&self, device_id: &str, bytes: Arc<[u8]>) -> Result<String, OfferError> {
        let base = self.base_url().ok_or(OfferError::NoBaseUrl)?;
        let now = Instant::now();
        let mut offers = self.offers.write().unwrap_or_else(PoisonError::into_inner);
        offers.retain(|_, o| o.expires > now && o.device_id != device_id);
        if offers.len() >= MAX_OPEN_OFFERS {
            return Err(OfferError::TooMany);
        }
        let token = new_token();
        offers.insert(
            token.clone(),
            Offer {
                device_id: device_id.to_owned(),
                bytes,
                expires: now + self.ttl,
            },
        );
        Ok(format!("{base}/firmware/{token}"))
    }

    /// Takes the offer behind `token`, if it is open: it cannot be taken again.
    pub fn take(&self, token: &str) -> Option<TakenOffer> {
        let mut offers = self.offers.write().unwrap_or_else(PoisonError::into_inner);
        let offer = offers.remove(token)?;
        (offer.expires > Instant::now()).then_some(TakenOffer {
            device_id: offer.device_id,
            bytes: offer.bytes,
        })
    }

    /// Withdraws every open offer to `device_id` (the update finished, failed or was cancelled).
    pub fn withdraw(&self, device_id: &str) {
        self.offers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|_, o| o.device_id != device_id);
    }

    /// Offers open now.
    pub fn open(&self) -> usize {
        let now = Instant::now();
        self.offers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .filter(|o| o.expires > now)
            .count()
    }
}

/// 128 random bits as 32 lowercase hex digits.
fn new_token() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().fold(String::with_capacity(32), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> Arc<[u8]> {
        Arc::from(&b"SIMFW:2.0.0\nbody"[..])
    }

    fn token(url: &str) -> &str {
        url.rsplit('/').next().unwrap()
    }

    #[test]
    fn an_offer_should_be_taken_once() {
        let offers = ImageOffers::default();
        offers.set_base_url("http://192.0.2.1:49152/");
        let url = offers.offer("plug-1", image()).unwrap();
        assert!(url.starts_with("http://192.0.2.1:49152/firmware/"), "{url}");
        assert_eq!(token(&url).len(), 32);
        let taken = offers.take(token(&url)).unwrap();
        assert_eq!(taken.device_id, "plug-1");
        assert_eq!(&*taken.bytes, &*image());
        assert!(offers.take(token(&url)).is_none(), "taken twice");
    }

    #[test]
    fn offers_should_need_a_base_url() {
        let offers = ImageOffers::default();
        assert_eq!(offers.offer("plug-1", image()), Err(OfferError::NoBaseUrl));
    }

    #[test]
    fn a_new_offer_should_withdraw_the_earlier_one_to_the_same_device() {
        let offers = ImageOffers::default();
        offers.set_base_url("http://gw");
        let first = offers.offer("plug-1", image()).unwrap();
        let other = offers.offer("plug-2", image()).unwrap();
        let second = offers.offer("plug-1", image()).unwrap();
        assert_ne!(token(&first), token(&second));
        assert!(offers.take(token(&first)).is_none());
        assert_eq!(offers.open(), 2);
        offers.withdraw("plug-2");
        assert!(offers.take(token(&other)).is_none());
        assert!(offers.take(token(&second)).is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn an_expired_offer_should_not_be_served() {
        let offers = ImageOffers::new(Duration::from_secs(60));
        offers.set_base_url("http://gw");
        let url = offers.offer("plug-1", image()).unwrap();
        tokio::time::advance(Duration::from_secs(61)).await;
        assert!(offers.take(token(&url)).is_none());
        assert_eq!(offers.open(), 0);
    }

    #[test]
    fn open_offers_should_be_bounded() {
        let offers = ImageOffers::default();
        offers.set_base_url("http://gw");
        for i in 0..MAX_OPEN_OFFERS {
            offers.offer(&format!("d{i}"), image()).unwrap();
        }
        assert_eq!(offers.offer("one-more", image()), Err(OfferError::TooMany));
    }
}
