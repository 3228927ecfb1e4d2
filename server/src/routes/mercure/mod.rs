//! The Mercure hub at `/.well-known/mercure` (draft-07, the protocol of Mercure 0.x):
//! `GET` subscribes ([`subscribe`]), `POST` publishes ([`publish`]). Both share the topics,
//! history and ids of `/events` and `/publish`, and the one access model of
//! [`access`](super::access).

mod publish;
mod subscribe;

pub(in crate::routes) use publish::publish;
pub(in crate::routes) use subscribe::subscribe;
