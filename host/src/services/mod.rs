//! The long-running services: the polling agent, the notification agent, the collector
//! (samples and events), the retention sweeper, and the export of polled meters for
//! Prometheus.

pub mod agent;
pub mod broker;
pub mod collector;
pub mod envelope;
pub mod event_collector;
pub mod exporter;
pub mod notification;
pub mod reconnect;
pub mod retention;
