//! Who may publish and subscribe, one model for every route: static tokens ([`token`]) and
//! JWTs for Mercure draft-07 and draft-08 ([`jwt`]).

mod claims;
mod error;
pub(crate) mod jwt;
mod keys;
mod pem;
mod source;
mod token;

pub(crate) use token::{authorize_publisher, subscriber_has, TOKEN_COOKIE};
