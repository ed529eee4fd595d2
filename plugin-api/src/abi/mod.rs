//! The stable ABI between the host and plugin libraries.
//!
//! Plugin authors do not use this module: [`export_plugins!`](crate::export_plugins)
//! writes the glue. It is public for the host's loader, and so that every released ABI
//! version stays available.
//!
//! Each released ABI minor is frozen in its own module (`v1_0`, `v1_1`, …): its root
//! module, descriptors and vtables never change again, because abi_stable checks the
//! layout of every type that crosses and refuses a library whose prefix types have
//! fewer fields than the host's. A newer minor adds entry points by defining new
//! vtable types (prefix types whose first fields are the older version's) and reuses
//! the unchanged ones. The host reads the version a library declares, loads it with that
//! version's root module type, and adapts it. See the crate README, "Versioning".

mod guard;
pub mod v1_0;
mod v1_0_sample;
pub mod v1_1;
pub mod v1_2;
pub mod v1_3;

pub use guard::guard;

/// The ABI that [`export_plugins!`](crate::export_plugins) builds plugins for.
pub use v1_3 as current;

use std::fmt;

/// A plugin ABI version (`major.minor`), independent of the crate's version.
///
/// ```
/// use ceilo_plugin_api::abi::{AbiVersion, CURRENT};
/// assert_eq!(CURRENT.to_string(), "1.3");
/// assert_eq!(AbiVersion::parse("1.0.0"), Some(AbiVersion::new(1, 0)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AbiVersion {
    /// Changes only when old plugins can no longer be loaded.
    pub major: u32,
    /// Grows when entry points are added.
    pub minor: u32,
}

impl AbiVersion {
    /// `major.minor`.
    pub const fn new(major: u32, minor: u32) -> Self {
        AbiVersion { major, minor }
    }
    /// Parses `major.minor[.patch]`.
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.trim().split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        Some(AbiVersion { major, minor })
    }
}

impl fmt::Display for AbiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The oldest ABI a host built from this crate loads.
pub const OLDEST: AbiVersion = v1_0::VERSION;
/// The newest ABI a host built from this crate loads, and the one new plugins get.
pub const CURRENT: AbiVersion = v1_3::VERSION;

/// The name of the symbol a plugin library exports (abi_stable's root module loader).
/// Fixed for abi_stable 0.11; a test checks it against abi_stable's own constant.
pub const ROOT_MODULE_SYMBOL: &str = "_1as_0lib_1header_0root_bmodule_bloader";

#[cfg(test)]
mod tests {
    #[test]
    fn export_symbol_matches_abi_stable() {
        assert_eq!(
            super::ROOT_MODULE_SYMBOL,
            abi_stable::library::ROOT_MODULE_LOADER_NAME
        );
    }
}
