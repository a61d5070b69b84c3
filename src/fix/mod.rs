//! The FIX 4.4 layer: framing, tokenising, validation, typed views, encoding and the session
//! state machine.
//!
//! Everything under `fix` is pure: bytes and `now` in, bytes and actions out. Nothing here
//! touches a socket, a thread or the clock (the `net` module does), and nothing on the
//! per-message path allocates once buffers are sized at start-up.

pub mod decimal;
pub mod dict;
pub mod echo;
pub mod encode;
pub mod frame;
pub mod message;
pub mod session;
pub mod store;
pub mod tags;
pub mod validate;
pub mod views;

pub use decimal::Decimal;
pub use encode::{EncodeError, Encoder};
pub use frame::{FrameStatus, Framer, SOH};
pub use message::{Decoder, Field, FieldRef, Message, ParseError};
