//! A participant's webhook endpoints: where the leader POSTs the participant's events, signed
//! by the delivering node.

use crate::codec::{DecodeError, Reader, Writer};
use crate::context::{ApplyError, OperationContext, Outcome};
use crate::limits::{WEBHOOK_ENDPOINTS_MAX, WEBHOOK_URL_SIZE_MAX};
use crate::model::ParticipantId;
use crate::ops::interface::{LedgerOperation, Rule};
use crate::overlay::Overlay;
use crate::result::ResultCode;
use crate::state::prefix;
use serde::{Deserialize, Serialize};

/// Registers (or, with an empty URL, removes) one of the signer's webhook endpoints: the
/// leader POSTs the signer's events there, signed by the delivering node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetWebhook {
    /// Endpoint number, 0 to 3.
    pub endpoint: u16,
    /// http:// or https:// URL; empty removes the endpoint.
    pub url: String,
}

/// Key of a participant's webhook endpoint.
pub fn webhook_key(participant: ParticipantId, endpoint: u16) -> Vec<u8> {
    let mut key = Vec::with_capacity(11);
    key.push(prefix::WEBHOOK);
    key.extend_from_slice(&participant.to_be_bytes());
    key.extend_from_slice(&endpoint.to_be_bytes());
    key
}

/// Whether a webhook URL is acceptable: http:// or https://, a host, printable ASCII without
/// spaces, within the size bound.
pub fn webhook_url_valid(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    url.len() <= WEBHOOK_URL_SIZE_MAX
        && rest.is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'))
        && url.bytes().all(|byte| byte.is_ascii_graphic())
}

impl LedgerOperation for SetWebhook {
    type View = Self;

    fn encode_fields(&self, writer: &mut Writer) {
        writer.u16(self.endpoint);
        writer.string(&self.url);
    }

    fn decode_fields(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            endpoint: reader.u16("set_webhook.endpoint")?,
            url: reader.string("set_webhook.url", WEBHOOK_URL_SIZE_MAX)?,
        })
    }

    fn to_view(&self) -> Self::View {
        self.clone()
    }

    fn from_view(view: &Self::View) -> Result<Self, String> {
        Ok(view.clone())
    }
}

impl Rule for SetWebhook {
    /// The signer registers, replaces or (with an empty URL) removes one of its endpoints.
    fn apply(
        &self,
        overlay: &mut Overlay<'_>,
        context: &OperationContext<'_>,
    ) -> Result<Outcome, ApplyError> {
        if self.endpoint >= WEBHOOK_ENDPOINTS_MAX
            || !(self.url.is_empty() || webhook_url_valid(&self.url))
        {
            return Ok(Outcome::Rejected(ResultCode::InvalidWebhook));
        }
        let key = webhook_key(context.signer.id, self.endpoint);
        // The value: the registering block's height (deliveries start after it), then the URL.
        let value = (!self.url.is_empty()).then(|| {
            let mut value = context.block.height.to_be_bytes().to_vec();
            value.extend_from_slice(self.url.as_bytes());
            value
        });
        overlay.put(key, value);
        Ok(Outcome::Applied)
    }
}
