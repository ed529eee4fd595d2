//! The AMQP topology ceilo's samples travel on, in one place: the `amqp://` publisher
//! declares it (an `amqp://` URL with no query parameters uses exactly this), and the
//! collector consumes from it.
//!
//! | what | name | kind |
//! |---|---|---|
//! | exchange | [`METERING_EXCHANGE`] `ceilo` | durable topic |
//! | queue | [`METERING_QUEUE`] `metering.sample` | durable, dead-letters to [`DEAD_LETTER_EXCHANGE`] |
//! | binding | routing key [`METERING_ROUTING_KEY`] `metering.sample` | exchange → queue |
//! | dead-letter exchange | [`DEAD_LETTER_EXCHANGE`] `ceilo.dlx` | durable fanout |
//! | dead-letter queue | [`DEAD_LETTER_QUEUE`] `metering.sample.dead` | durable |
//!
//! A message is a JSON array of samples in their wire form, each with its
//! `message_signature` (see the `signing` feature), published persistent with
//! `content_type: application/json`.

/// The exchange samples are published to.
pub const METERING_EXCHANGE: &str = "ceilo";
/// The routing key of sample messages.
pub const METERING_ROUTING_KEY: &str = "metering.sample";
/// The queue collectors consume.
pub const METERING_QUEUE: &str = "metering.sample";
/// Where rejected messages go.
pub const DEAD_LETTER_EXCHANGE: &str = "ceilo.dlx";
/// The queue holding rejected messages.
pub const DEAD_LETTER_QUEUE: &str = "metering.sample.dead";
