//! Authorization: JWTs for Mercure draft-07 and draft-08 (see [`jwt`]).

mod claims;
mod error;
pub(crate) mod jwt;
mod keys;
mod pem;
mod source;
