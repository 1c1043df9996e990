//! The protobuf codec of the generated `ledger.api.v1` code: tonic's prost codec, except that
//! a message that does not decode is answered INVALID_ARGUMENT instead of INTERNAL.
//!
//! `tonic_prost::ProstCodec` maps every `prost::DecodeError` to INTERNAL (following the gRPC
//! status-code table), so a client sending garbage made the ledger report a server fault.
//! `build.rs` names [`LedgerCodec`] as the `codec_path` of the generated service and client.
//! The generated client uses it too: there a response that does not decode also reads
//! INVALID_ARGUMENT, with a message saying which message type did not decode.

use std::marker::PhantomData;

use prost::Message;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic::Status;
use tonic_prost::ProstEncoder;

/// The codec: prost encoding, decoding errors as INVALID_ARGUMENT.
#[derive(Debug, Clone)]
pub struct LedgerCodec<T, U> {
    _types: PhantomData<(T, U)>,
}

impl<T, U> Default for LedgerCodec<T, U> {
    fn default() -> Self {
        Self {
            _types: PhantomData,
        }
    }
}

impl<T, U> Codec for LedgerCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = LedgerDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::default()
    }

    fn decoder(&mut self) -> Self::Decoder {
        LedgerDecoder { _type: PhantomData }
    }
}

/// Decodes a `U`; bytes that are not one are the sender's mistake.
#[derive(Debug, Clone)]
pub struct LedgerDecoder<U> {
    _type: PhantomData<U>,
}

impl<U: Message + Default> Decoder for LedgerDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        U::decode(buf).map(Some).map_err(|e| {
            let message = std::any::type_name::<U>().rsplit("::").next().unwrap_or("");
            Status::invalid_argument(format!("the message does not decode as {message}: {e}"))
        })
    }

    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::default()
    }
}
