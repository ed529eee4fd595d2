//! The long-running services: the polling agent (later: notification agent, collector, API).

pub mod agent;
pub mod broker;
pub mod collector;
pub mod notification;
pub mod reconnect;
pub mod retention;
