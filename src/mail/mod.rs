//! Email: the outbox that sends everything ([`outbox`], over [`smtp`]), the invitation's
//! editable templates ([`templates`]) and the admin notifications ([`notifications`]).

pub mod notifications;
pub mod outbox;
pub mod smtp;
pub mod templates;
